"""Embedding quality on graphs: link prediction and node classification (the Cleora paper's protocols).

Link prediction: hold out a seeded 10% of the edges; embed the rest; a
logistic regression on Hadamard products u ⊙ v learns train edges against
random node pairs; each held-out (u, v) is ranked against u paired with each
of the 10,000 most popular nodes (by training degree); MRR and HR@1/10/100.

Node classification: logistic regression on the embeddings, with a given
split (e.g. Planetoid's public one) or seeded stratified 80/20 splits;
accuracy (single label) or micro/macro F1 (multi-label, one-vs-rest, each
test node given its true number of top-scoring labels as in DeepWalk).

Comparisons of our Cleora with another embedding of the same graph (benchmarks/cleora_quality.py,
pycleora): `linkpred_comparison` (per iteration count, plus our propagation started from the
other library's initial vectors) and `nodeclf_comparison` (iterations chosen on validation).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.multiclass import OneVsRestClassifier

from sketchrec.eval.metrics import hit_rate, linkpred_ranks, mrr
from sketchrec.graph import Cleora, Graph


def split_edges(edges: np.ndarray, test_share: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of an (E, 2) edge array into (train, test)."""
    edges = np.asarray(edges)
    order = np.random.default_rng(seed).permutation(len(edges))
    n_test = int(round(len(edges) * test_share))
    return edges[order[n_test:]], edges[order[:n_test]]


def linkpred_evaluate(vectors: np.ndarray, train_edges: np.ndarray, test_edges: np.ndarray, *,
                      n_candidates: int = 10_000, max_train_pairs: int = 200_000, seed: int = 0,
                      batch_size: int = 512) -> dict[str, float]:
    """Rank each held-out edge among the most popular candidates; vectors row = node id.

    Returns {"MRR", "HR@1", "HR@10", "HR@100", "n_test"}.
    """
    rng = np.random.default_rng(seed)
    n = vectors.shape[0]
    x = np.asarray(vectors, dtype=np.float32)
    pos = train_edges[rng.permutation(len(train_edges))[:max_train_pairs]]
    neg = rng.integers(0, n, size=(len(pos), 2))
    feats = np.vstack([x[pos[:, 0]] * x[pos[:, 1]], x[neg[:, 0]] * x[neg[:, 1]]])
    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    clf = LogisticRegression(max_iter=1000, C=1.0).fit(feats, labels)
    w = clf.coef_.ravel().astype(np.float32)
    degree = np.bincount(train_edges.ravel(), minlength=n)
    cands = np.argsort(-degree, kind="stable")[:n_candidates]
    cand_vecs = x[cands]
    ranks = np.empty(len(test_edges), dtype=np.int64)
    for start in range(0, len(test_edges), batch_size):
        batch = test_edges[start:start + batch_size]
        query = x[batch[:, 0]] * w                       # score(u, c) = (u ⊙ w) · c (+ bias)
        neg_scores = query @ cand_vecs.T
        neg_scores[cands[None, :] == batch[:, 1:2]] = -np.inf  # v itself is not its own negative
        pos_scores = np.einsum("ij,ij->i", query, x[batch[:, 1]])
        ranks[start:start + len(batch)] = linkpred_ranks(pos_scores, neg_scores)
    return {"MRR": float(mrr(ranks).mean()), "HR@1": float(hit_rate(ranks, 1).mean()),
            "HR@10": float(hit_rate(ranks, 10).mean()), "HR@100": float(hit_rate(ranks, 100).mean()),
            "n_test": int(len(ranks))}


def _classifier(multilabel: bool, seed: int):
    base = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    return OneVsRestClassifier(base, n_jobs=1) if multilabel else base


def nodeclf_evaluate(vectors: np.ndarray, labels, train_idx: np.ndarray, test_idx: np.ndarray,
                     seed: int = 0) -> dict[str, float]:
    """Fit on train_idx, score on test_idx. labels: (n,) ints, or (n, L) binary (multi-label)."""
    x = np.asarray(vectors, dtype=np.float32)
    multilabel = sp.issparse(labels) or (np.ndim(labels) == 2)
    y = labels.toarray() if sp.issparse(labels) else np.asarray(labels)
    clf = _classifier(multilabel, seed).fit(x[train_idx], y[train_idx])
    if multilabel:
        # the DeepWalk protocol: each test node gets as many labels as it truly has,
        # the top-scoring ones (a 0.5 threshold predicts almost nothing on rare labels)
        scores = clf.decision_function(x[test_idx])
        k = y[test_idx].sum(axis=1).astype(int)
        order = np.argsort(-scores, axis=1, kind="stable")
        pred = np.zeros_like(y[test_idx])
        rows = np.repeat(np.arange(len(k)), k)
        cols = order[rows, np.arange(len(rows)) - np.repeat(np.cumsum(k) - k, k)]
        pred[rows, cols] = 1
        return {"micro_f1": float(f1_score(y[test_idx], pred, average="micro", zero_division=0)),
                "macro_f1": float(f1_score(y[test_idx], pred, average="macro", zero_division=0))}
    pred = clf.predict(x[test_idx])
    return {"accuracy": float(accuracy_score(y[test_idx], pred)),
            "macro_f1": float(f1_score(y[test_idx], pred, average="macro", zero_division=0))}


def nodeclf_random_splits(vectors: np.ndarray, labels, seeds=(0, 1, 2, 3, 4),
                          test_share: float = 0.2) -> dict[str, tuple[float, float]]:
    """Seeded stratified 80/20 splits (multi-label: plain random); {metric: (mean, std)}."""
    y = labels.toarray() if sp.issparse(labels) else np.asarray(labels)
    known = np.flatnonzero(y.sum(axis=1) > 0) if y.ndim == 2 else np.flatnonzero(y >= 0)
    per_seed = []
    for seed in seeds:
        if y.ndim == 2:
            order = np.random.default_rng(seed).permutation(known)
            cut = int(round(len(order) * (1 - test_share)))
            tr, te = order[:cut], order[cut:]
        else:
            split = StratifiedShuffleSplit(n_splits=1, test_size=test_share, random_state=seed)
            tr, te = next(split.split(known, y[known]))
            tr, te = known[tr], known[te]
        per_seed.append(nodeclf_evaluate(vectors, y, tr, te, seed=seed))
    return {k: (float(np.mean([r[k] for r in per_seed])), float(np.std([r[k] for r in per_seed], ddof=1)))
            for k in per_seed[0]}


def mean_abs_cosine(t0: np.ndarray, rows: int = 500) -> float:
    """Mean |cos| between distinct rows of an initial matrix (independent U(-1,1) rows: ~0.025 at d=1024)."""
    u = t0[:rows] / np.linalg.norm(t0[:rows], axis=1, keepdims=True)
    c = np.abs(u @ u.T)
    return float((c.sum() - rows) / (rows * (rows - 1)))


def cleora_by_iterations(edges: np.ndarray, n: int, dim: int, iterations: list[int],
                   self_loops: float = 0.0) -> dict[int, np.ndarray]:
    """sketchrec Cleora embeddings of an undirected edge list, one matrix per requested iteration count."""
    graph = Graph.from_edges(edges[:, 0], edges[:, 1], n_nodes=n)
    out = {}
    Cleora(dim=dim, iterations=max(iterations), progress=False, self_loops=self_loops,
           callback=lambda i, t: out.__setitem__(i, t.copy()) if i in iterations else None).fit(graph)
    return out


def isolated_nodes_note(edges, n) -> str:
    """How many of the `n` nodes have no edge in `edges`, as a phrase."""
    deg = np.bincount(edges.ravel(), minlength=n)
    return f"{int((deg == 0).sum())} nodes without training edges"


def choose_iterations(vectors_by_it: dict[int, np.ndarray], labels, train_idx, val_idx) -> int:
    """The iteration count whose vectors score best (first metric of `nodeclf_evaluate`) on validation."""
    scores = {it: list(nodeclf_evaluate(v, labels, train_idx, val_idx).values())[0]
              for it, v in vectors_by_it.items()}
    return max(scores, key=scores.get)


def labelled_validation_split(labels, seed: int = 123) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) node indices among the labelled nodes: a seeded permutation, the first 64%
    train and the next 16% validation (validation = 20% of an 80% training part)."""
    y = labels.toarray() if hasattr(labels, "toarray") else np.asarray(labels)
    known = np.flatnonzero(y.sum(axis=1) > 0) if y.ndim == 2 else np.flatnonzero(y >= 0)
    order = np.random.default_rng(seed).permutation(known)
    cut = int(len(order) * 0.64)
    return order[:cut], order[cut:int(len(order) * 0.8)]


def linkpred_comparison(ours: dict[int, np.ndarray], peer: dict[int, np.ndarray], train: np.ndarray,
                        test: np.ndarray, iterations, metrics=("MRR", "HR@1", "HR@10", "HR@100")) -> list[list]:
    """Table rows, one per iteration count: `linkpred_evaluate` (seed 0) of our and the peer's vectors,
    each metric as "ours", "peer" cells side by side (4 decimals)."""
    rows = []
    for it in iterations:
        o, p = (linkpred_evaluate(e[it], train, test, seed=0) for e in (ours, peer))
        print("linkpred", it, o, p, flush=True)
        rows.append([it, *(f"{r[m]:.4f}" for m in metrics for r in (o, p))])
    return rows


def propagated_linkpred(t0: np.ndarray, train: np.ndarray, test: np.ndarray, n_nodes: int) -> dict:
    """`linkpred_evaluate` of one step of our Cleora propagation over the `train` graph started from
    the given initial vectors `t0` (e.g. another library's): tells initialisation from propagation."""
    from sketchrec.graph import kernels
    from sketchrec.graph.cleora import propagation_operator
    graph = Graph.from_edges(train[:, 0], train[:, 1], n_nodes=n_nodes)
    op = propagation_operator(graph.adjacency)
    return linkpred_evaluate(kernels.propagate(op.indptr, op.indices, op.data, t0), train, test, seed=0)


def nodeclf_comparison(name: str, ds, dim: int, iterations, peer: dict[int, np.ndarray]) -> list[str]:
    """Markdown table rows (dataset, protocol, metric, ours, ours + self-loops, peer) of node
    classification on dataset `ds` (edges, n_nodes, labels, split): our Cleora without and with unit
    self-loops, iterations chosen on validation for each (`choose_iterations`), the `peer` vectors (by
    iteration count) at the count chosen for our plain variant. With a given split (Planetoid) a row
    on it; then seeded 80/20 splits (`nodeclf_random_splits`, validation `labelled_validation_split`)."""
    lines = []
    variants = {"plain": cleora_by_iterations(ds.edges, ds.n_nodes, dim, iterations),
                "loops": cleora_by_iterations(ds.edges, ds.n_nodes, dim, iterations, self_loops=1.0)}
    labels = ds.labels
    if ds.split:
        tr, va, te = ds.split["train"], ds.split["val"], ds.split["test"]
        chosen = {k: choose_iterations(v, labels, tr, va) for k, v in variants.items()}
        res = {k: nodeclf_evaluate(variants[k][it], labels, tr, te) for k, it in chosen.items()}
        p = nodeclf_evaluate(peer[chosen["plain"]], labels, tr, te)
        lines.append(f"| {name} | Planetoid public split | accuracy | {res['plain']['accuracy']:.4f} "
                     f"({chosen['plain']}) | {res['loops']['accuracy']:.4f} ({chosen['loops']}) | "
                     f"{p['accuracy']:.4f} |")
    tr, va = labelled_validation_split(labels)
    chosen = {k: choose_iterations(v, labels, tr, va) for k, v in variants.items()}
    res = {k: nodeclf_random_splits(variants[k][it], labels) for k, it in chosen.items()}
    p = nodeclf_random_splits(peer[chosen["plain"]], labels)
    for metric in p:
        cell = lambda r: f"{r[metric][0]:.4f} ± {r[metric][1]:.4f}"  # noqa: E731
        lines.append(f"| {name} | 80/20, 5 seeds | {metric} | {cell(res['plain'])} ({chosen['plain']}) | "
                     f"{cell(res['loops'])} ({chosen['loops']}) | {cell(p)} |")
    return lines
