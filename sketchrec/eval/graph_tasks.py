"""Embedding quality on graphs: link prediction and node classification (the Cleora paper's protocols).

Link prediction: hold out a seeded 10% of the edges (`split_edges`, or
`split_edges_keeping_nodes`: a held-out edge whose end would lose its last
training edge goes back to training); embed the rest; a logistic regression on
Hadamard products u ⊙ v learns train edges against random node pairs; each
held-out (u, v) is ranked against u paired with each of the 10,000 most
popular nodes (by training degree); MRR and HR@1/10/100.

Node classification: standardised embeddings (scaler fitted on the training
nodes), logistic regression whose C, and the embedding itself when several are
offered (e.g. one per iteration count), are chosen on validation nodes
(given, or carved from the training part), then refit on the whole training
part and scored on the test nodes. A given split (e.g. Planetoid's public one)
or seeded stratified 80/20 splits; accuracy (single label) or micro/macro F1
(multi-label, one-vs-rest, each test node given its true number of
top-scoring labels as in DeepWalk).

Comparisons of our Cleora with another embedding of the same graph (benchmarks/cleora_quality.py,
pycleora), every method through the same validation-tuned evaluator: `linkpred_comparison`
(iterations chosen on validation edges per method) and `nodeclf_comparison` (iterations and C chosen
on validation nodes per method and split); `changes_paragraph` sets an earlier table's figures beside
the new ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.preprocessing import StandardScaler

from sketchrec.eval.metrics import hit_rate, linkpred_ranks, mrr
from sketchrec.graph import Cleora, Graph

log = logging.getLogger(__name__)

C_GRID = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0)  # logistic-regression C tried on validation


def split_edges(edges: np.ndarray, test_share: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of an (E, 2) edge array into (train, test)."""
    edges = np.asarray(edges)
    order = np.random.default_rng(seed).permutation(len(edges))
    n_test = int(round(len(edges) * test_share))
    return edges[order[n_test:]], edges[order[:n_test]]


def split_edges_keeping_nodes(edges: np.ndarray, test_share: float = 0.1, val_share: float = 0.0,
                              seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded (train, val, test) split of an (E, 2) int edge array in which every node with an edge keeps
    a training edge.

    The same random order as `split_edges` (test: its first `test_share` of the edges, so with one seed
    the test edges are a subset of `split_edges`'s; val: the next `val_share`); then each node left
    without a training edge gets its first held-out edge (in that order) back. Moving edges into
    training never takes one away, so one vectorised pass suffices; the held-out sets end up that many
    edges (a few per mille on Facebook page-page) smaller than the shares.
    """
    edges = np.asarray(edges)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise ValueError(f"edges: expected an (E, 2) array, got shape {edges.shape}")
    order = np.random.default_rng(seed).permutation(len(edges))
    n_test, n_val = int(round(len(edges) * test_share)), int(round(len(edges) * val_share))
    held = order[:n_test + n_val]                                    # held-out edge ids, in random order
    n = int(edges.max()) + 1 if len(edges) else 0
    in_train = np.ones(len(edges), dtype=bool)
    in_train[held] = False
    lost = (np.bincount(edges[in_train].ravel(), minlength=n) == 0) & (np.bincount(edges.ravel(), minlength=n) > 0)
    # for each lost node, the earliest held-out position touching it (at either end)
    ends = edges[held].ravel()
    touching = np.flatnonzero(lost[ends])
    first = np.full(n, len(held))
    np.minimum.at(first, ends[touching], touching // 2)
    back = np.zeros(len(held), dtype=bool)
    back[first[lost]] = True
    in_train[held[back]] = True
    test, val = held[:n_test][~back[:n_test]], held[n_test:][~back[n_test:]]
    return edges[order[in_train[order]]], edges[val], edges[test]


def linkpred_evaluate_sets(vectors: np.ndarray, train_edges: np.ndarray, held_out: Mapping[str, np.ndarray], *,
                           n_candidates: int = 10_000, max_train_pairs: int = 200_000, seed: int = 0,
                           batch_size: int = 512) -> dict[str, dict[str, float]]:
    """`linkpred_evaluate` of several held-out (E_i, 2) edge sets with one classifier; vectors row = node id.

    Returns {name: {"MRR", "HR@1", "HR@10", "HR@100", "n_test"}}.
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
    out = {}
    for name, edges in held_out.items():
        ranks = np.empty(len(edges), dtype=np.int64)
        for start in range(0, len(edges), batch_size):
            batch = edges[start:start + batch_size]
            query = x[batch[:, 0]] * w                       # score(u, c) = (u ⊙ w) · c (+ bias)
            neg_scores = query @ cand_vecs.T
            neg_scores[cands[None, :] == batch[:, 1:2]] = -np.inf  # v itself is not its own negative
            pos_scores = np.einsum("ij,ij->i", query, x[batch[:, 1]])
            ranks[start:start + len(batch)] = linkpred_ranks(pos_scores, neg_scores)
        out[name] = {"MRR": float(mrr(ranks).mean()), "HR@1": float(hit_rate(ranks, 1).mean()),
                     "HR@10": float(hit_rate(ranks, 10).mean()), "HR@100": float(hit_rate(ranks, 100).mean()),
                     "n_test": int(len(ranks))}
    return out


def linkpred_evaluate(vectors: np.ndarray, train_edges: np.ndarray, test_edges: np.ndarray, *,
                      n_candidates: int = 10_000, max_train_pairs: int = 200_000, seed: int = 0,
                      batch_size: int = 512) -> dict[str, float]:
    """Rank each held-out edge among the most popular candidates; vectors row = node id.

    Returns {"MRR", "HR@1", "HR@10", "HR@100", "n_test"}.
    """
    return linkpred_evaluate_sets(vectors, train_edges, {"test": test_edges}, n_candidates=n_candidates,
                                  max_train_pairs=max_train_pairs, seed=seed, batch_size=batch_size)["test"]


class _OneVsRest:
    """One binary logistic regression per label, each refit from its own previous weights (sklearn's
    OneVsRestClassifier clones its estimator, which throws warm starts away)."""

    def __init__(self, n_labels: int, seed: int):
        self.models = [LogisticRegression(max_iter=2000, warm_start=True, random_state=seed) for _ in range(n_labels)]

    def set_params(self, C: float) -> _OneVsRest:
        for m in self.models:
            m.set_params(C=C)
        return self

    def fit(self, x: np.ndarray, y: np.ndarray) -> _OneVsRest:
        # a label that every fitted node has (or none has) gets a constant score
        self.constant_ = {j: float(2 * y[0, j] - 1) for j in range(y.shape[1]) if np.all(y[:, j] == y[0, j])}
        for j, m in enumerate(self.models):
            if j not in self.constant_:
                m.fit(x, y[:, j])
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return np.stack([np.full(len(x), self.constant_[j]) if j in self.constant_ else m.decision_function(x)
                         for j, m in enumerate(self.models)], axis=1)


def _fit_classifier(x: np.ndarray, y: np.ndarray, C: float, seed: int, previous=None):
    """Logistic regression (one-vs-rest when y is (n, L)) at `C`. `previous`, a classifier returned here
    before for the same labels, is refit from its current weights: a nearby C or embedding then
    converges in fewer steps."""
    if previous is None:
        previous = (_OneVsRest(y.shape[1], seed) if y.ndim == 2
                    else LogisticRegression(max_iter=2000, warm_start=True, random_state=seed))
    return previous.set_params(C=C).fit(x, y)


def _scores(clf, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 ((n,) labels), or micro/macro-F1 ((n, L) labels), of `clf` on rows x."""
    if y.ndim == 2:
        # the DeepWalk protocol: each test node gets as many labels as it truly has,
        # the top-scoring ones (a 0.5 threshold predicts almost nothing on rare labels)
        scores = clf.decision_function(x)
        k = y.sum(axis=1).astype(int)
        order = np.argsort(-scores, axis=1, kind="stable")
        pred = np.zeros_like(y)
        rows = np.repeat(np.arange(len(k)), k)
        cols = order[rows, np.arange(len(rows)) - np.repeat(np.cumsum(k) - k, k)]
        pred[rows, cols] = 1
        return {"micro_f1": float(f1_score(y, pred, average="micro", zero_division=0)),
                "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0))}
    pred = clf.predict(x)
    return {"accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0))}


def _scaled(vectors: np.ndarray, fit_idx: np.ndarray, *idx: np.ndarray) -> list[np.ndarray]:
    """Rows fit_idx, *idx of vectors, standardised with a scaler fitted on the fit_idx rows only."""
    x = np.asarray(vectors, dtype=np.float64)
    scaler = StandardScaler().fit(x[fit_idx])
    return [scaler.transform(x[i]) for i in (fit_idx, *idx)]


def _dense_labels(labels) -> np.ndarray:
    return labels.toarray() if sp.issparse(labels) else np.asarray(labels)


def validation_split(labels, train_idx: np.ndarray, val_share: float = 0.2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (fit, val) split of the nodes train_idx: stratified for (n,) labels, plain random for
    (n, L) ones; val is `val_share` of them."""
    train_idx = np.asarray(train_idx)
    y = _dense_labels(labels)
    if y.ndim == 2:
        order = np.random.default_rng(seed).permutation(train_idx)
        cut = len(order) - int(round(len(order) * val_share))
        return order[:cut], order[cut:]
    split = StratifiedShuffleSplit(n_splits=1, test_size=val_share, random_state=seed)
    fit, val = next(split.split(train_idx, y[train_idx]))
    return train_idx[fit], train_idx[val]


def choose_on_validation(vectors_by_key: Mapping, labels, fit_idx: np.ndarray, val_idx: np.ndarray, *,
                         Cs=C_GRID, seed: int = 0) -> tuple[object, float, float]:
    """(key, C, validation score) maximising accuracy (micro-F1 if multi-label) on val_idx of a classifier
    fitted on fit_idx, over the (n, d) arrays in vectors_by_key and the C grid. Ties keep the first key
    and the smaller C.

    For each key the C grid is walked upwards, each fit starting from the previous C's weights (a
    regularisation path: a few solver steps per C), and left at the first C that scores below that key's
    best so far: past the peak a larger C only fits the training nodes harder, and costs more fits.
    Run with one BLAS / OpenMP thread on a busy machine: the solver's threads otherwise spin-wait.
    """
    y = _dense_labels(labels)
    best = (-np.inf, None, None)
    for key, vectors in vectors_by_key.items():
        x_fit, x_val = _scaled(vectors, fit_idx, val_idx)
        key_best, clf = -np.inf, None
        for C in sorted(Cs):
            clf = _fit_classifier(x_fit, y[fit_idx], C, seed, clf)
            score = next(iter(_scores(clf, x_val, y[val_idx]).values()))
            if score > best[0]:
                best = (score, key, C)
            if score < key_best:
                break
            key_best = max(key_best, score)
    return best[1], best[2], best[0]


def nodeclf_evaluate(vectors, labels, train_idx: np.ndarray, test_idx: np.ndarray, seed: int = 0, *,
                     val_idx: np.ndarray | None = None, Cs=C_GRID, val_share: float = 0.2) -> dict:
    """Standardised logistic regression tuned on validation, refit on train_idx, scored on test_idx.

    vectors: (n, d) array, or {key: (n, d) array} (e.g. one per iteration count), the key then chosen on
    validation along with C (`choose_on_validation`). labels: (n,) ints, or (n, L) binary (multi-label).
    val_idx: validation nodes (e.g. Planetoid's), the classifier then tuned on train_idx; None carves a
    seeded, stratified `val_share` of train_idx (`validation_split`). Test nodes play no part in the
    choice. Returns the test metrics ({"accuracy", "macro_f1"} or {"micro_f1", "macro_f1"}) and the
    choice: "key" (None for one array), "C".
    """
    by_key = vectors if isinstance(vectors, Mapping) else {None: vectors}
    y = _dense_labels(labels)
    fit_idx, val_idx = (train_idx, val_idx) if val_idx is not None else validation_split(y, train_idx, val_share,
                                                                                            seed)
    key, C, _ = choose_on_validation(by_key, y, fit_idx, val_idx, Cs=Cs, seed=seed)
    x_train, x_test = _scaled(by_key[key], train_idx, test_idx)
    return {**_scores(_fit_classifier(x_train, y[train_idx], C, seed), x_test, y[test_idx]), "key": key, "C": C}


def random_split(labels, seed: int, test_share: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, test) split of the labelled nodes: stratified for (n,) labels, random for (n, L)."""
    y = _dense_labels(labels)
    known = np.flatnonzero(y.sum(axis=1) > 0) if y.ndim == 2 else np.flatnonzero(y >= 0)
    if y.ndim == 2:
        order = np.random.default_rng(seed).permutation(known)
        cut = int(round(len(order) * (1 - test_share)))
        return order[:cut], order[cut:]
    split = StratifiedShuffleSplit(n_splits=1, test_size=test_share, random_state=seed)
    tr, te = next(split.split(known, y[known]))
    return known[tr], known[te]


def nodeclf_random_splits(vectors, labels, seeds=(0, 1, 2, 3, 4), test_share: float = 0.2, Cs=C_GRID) -> dict:
    """`nodeclf_evaluate` on seeded 80/20 splits (`random_split`), each tuned on validation carved from
    its own training part. Returns {metric: (mean, std over seeds)} and "chosen": [(key, C)] per seed."""
    y = _dense_labels(labels)
    per_seed = []
    for seed in seeds:
        tr, te = random_split(y, seed, test_share)
        per_seed.append(nodeclf_evaluate(vectors, y, tr, te, seed=seed, Cs=Cs))
    metrics = [k for k in per_seed[0] if k not in ("key", "C")]
    ddof = 1 if len(per_seed) > 1 else 0
    return {**{k: (float(np.mean([r[k] for r in per_seed])), float(np.std([r[k] for r in per_seed], ddof=ddof)))
               for k in metrics},
            "chosen": [(r["key"], r["C"]) for r in per_seed]}


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


def propagated_linkpred(t0: np.ndarray, train: np.ndarray, test: np.ndarray, n_nodes: int) -> dict:
    """`linkpred_evaluate` of one step of our Cleora propagation over the `train` graph started from
    the given initial vectors `t0` (e.g. another library's): tells initialisation from propagation."""
    from sketchrec.graph import kernels
    from sketchrec.graph.cleora import propagation_operator
    graph = Graph.from_edges(train[:, 0], train[:, 1], n_nodes=n_nodes)
    op = propagation_operator(graph.adjacency)
    return linkpred_evaluate(kernels.propagate(op.indptr, op.indices, op.data, t0), train, test, seed=0)


def linkpred_comparison(embed, train: np.ndarray, val: np.ndarray, test: np.ndarray, iterations,
                        metrics=("MRR", "HR@1", "HR@10", "HR@100")) -> tuple[list[list], dict]:
    """Link prediction of several methods, each at the iteration count it scores best with on validation.

    embed(edges) -> {method: {iterations: (n, d) vectors}} embeds a graph with every method. Step 1:
    the graph `train` embedded, `linkpred_evaluate` (seed 0) on the `val` edges picks each method's
    count (best MRR, ties: fewer). Step 2: the graph train + val embedded, every count scored on `test`.
    Returns table rows, one per count: [count, val MRR per method, then each metric's test cells per
    method] (4 decimals), and {method: {"iterations": chosen, "test": test metrics there,
    "val_mrr": {count: MRR}}}.
    """
    val_mrr = {m: {it: linkpred_evaluate(v, train, val, seed=0)["MRR"] for it, v in by_it.items()}
               for m, by_it in embed(train).items()}
    log.info("link prediction, validation MRR: %s", val_mrr)
    fit = np.vstack([train, val])
    scores = {m: {it: linkpred_evaluate(v, fit, test, seed=0) for it, v in by_it.items()}
              for m, by_it in embed(fit).items()}
    rows = [[it, *(f"{val_mrr[m][it]:.4f}" for m in scores),
             *(f"{scores[m][it][k]:.4f}" for k in metrics for m in scores)] for it in iterations]
    chosen = {m: max(iterations, key=lambda it: (r[it], -it)) for m, r in val_mrr.items()}
    return rows, {m: {"iterations": it, "test": scores[m][it], "val_mrr": val_mrr[m]} for m, it in chosen.items()}


def _choice_note(chosen: list) -> str:
    """'(5; C 0.01)' when every seed chose the same, else per seed: '(5/6/5; C 0.01/0.1/0.01)'."""
    def collapse(values):
        return values[0] if len(set(values)) == 1 else "/".join(values)
    return f"({collapse([str(k) for k, _ in chosen])}; C {collapse([f'{c:g}' for _, c in chosen])})"


def nodeclf_comparison(name: str, ds, dim: int, iterations, peer: dict[int, np.ndarray],
                       seeds=(0, 1, 2, 3, 4)) -> tuple[list[str], dict]:
    """Node classification of our Cleora (without and with unit self-loops) and the `peer` vectors (by
    iteration count) on dataset `ds` (edges, n_nodes, labels, split), every method through
    `nodeclf_evaluate` with its own iteration count and C chosen on validation: a row on the given split
    (Planetoid's, validation its val nodes) if any, then `nodeclf_random_splits` over `seeds`.

    Returns Markdown table rows (dataset, protocol, metric, ours, ours + self-loops, peer; cells "score
    (iterations; C)") and {protocol ("public", "80/20"): {method: the first metric's (mean) test score}}.
    """
    methods = {"ours": cleora_by_iterations(ds.edges, ds.n_nodes, dim, iterations),
               "ours + self-loops": cleora_by_iterations(ds.edges, ds.n_nodes, dim, iterations, self_loops=1.0),
               "pycleora": peer}
    lines, summary = [], {}
    if ds.split:
        tr, va, te = ds.split["train"], ds.split["val"], ds.split["test"]
        res = {m: nodeclf_evaluate(v, ds.labels, tr, te, val_idx=va) for m, v in methods.items()}
        lines.append(f"| {name} | Planetoid public split | accuracy | " + " | ".join(
            f"{r['accuracy']:.4f} {_choice_note([(r['key'], r['C'])])}" for r in res.values()) + " |")
        summary["public"] = {m: r["accuracy"] for m, r in res.items()}
    res = {m: nodeclf_random_splits(v, ds.labels, seeds=seeds) for m, v in methods.items()}
    metrics = [k for k in res["ours"] if k != "chosen"]
    for metric in metrics:
        lines.append(f"| {name} | 80/20, {len(seeds)} seed{'s' * (len(seeds) > 1)} | {metric} | " + " | ".join(
            f"{r[metric][0]:.4f} ± {r[metric][1]:.4f} {_choice_note(r['chosen'])}" for r in res.values()) + " |")
    summary["80/20"] = {m: r[metrics[0]][0] for m, r in res.items()}
    return lines, summary


def linkpred_tables(rows: list[list], summary: dict) -> list[str]:
    """Markdown of `linkpred_comparison`'s result: each method at its chosen count, then every count."""
    methods = list(summary)
    lines = ["| method | iterations (chosen on validation) | MRR | HR@1 | HR@10 | HR@100 | test edges |",
             "|" + "---|" * 7]
    lines += [f"| {m} | {r['iterations']} | " + " | ".join(f"{v:.4f}" if isinstance(v, float) else f"{v:,}"
                                                           for v in r["test"].values()) + " |"
              for m, r in summary.items()]
    head = ["iterations", *(f"val MRR {m}" for m in methods),
            *(f"{k} {m}" for k in ("MRR", "HR@1", "HR@10", "HR@100") for m in methods)]
    return lines + ["\nEvery iteration count (validation MRR, then test):\n", "| " + " | ".join(head) + " |",
                    "|" + "---|" * len(head)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


def nodeclf_head(dim: int) -> list[str]:
    """The node-classification section's heading, protocol paragraph and table head (Markdown)."""
    return [f"## Node classification, d={dim} (standardised embeddings, logistic regression)\n",
            f"For every method alike, C (grid {', '.join(f'{c:g}' for c in C_GRID)}) and the iteration count are "
            "chosen together on validation nodes: Planetoid's val nodes for its public split, else a stratified "
            "20% carved from each seed's own training part; the classifier is then refit on the whole training "
            "part and scored on the test part. Cells: test score (chosen iterations; chosen C, per seed where "
            "the seeds differ). `+ self-loops` adds a unit self-loop to every node (a measured option, not the "
            "paper's graph). BlogCatalog: one-vs-rest, each test node gets its true number of top-scoring labels "
            "(DeepWalk protocol). Published (Cleora paper, accuracy): Cora 0.868, CiteSeer 0.757, PubMed 0.802.\n",
            "| dataset | protocol | metric | ours (iterations; C) | ours + self-loops (iterations; C) "
            "| pycleora (iterations; C) |", "|" + "---|" * 6]


def changes_paragraph(old: dict, linkpred: dict | None, nodeclf: dict) -> str:
    """The Cleora quality page's "what changed" paragraph: how the evaluator changed (issue 32), and the
    earlier table's figures beside the new ones (Markdown).

    old: {"linkpred_mrr": {count: [ours, peer]}, "nodeclf": {dataset: {protocol: [ours, ours + self-loops,
    peer]}}, optionally "outside": a phrase quoting other figures}; linkpred: `linkpred_comparison`'s summary (methods "ours", "pycleora"), or None; nodeclf:
    {dataset: `nodeclf_comparison`'s summary}. Datasets missing from either side are left out.
    """
    parts = []
    if linkpred:
        (o_it, o), (p_it, p) = ((r["iterations"], r["test"]["MRR"]) for r in (linkpred["ours"], linkpred["pycleora"]))
        old_o, old_p = old["linkpred_mrr"][str(o_it)][0], old["linkpred_mrr"][str(p_it)][1]
        parts.append(f"Link prediction MRR, ours vs pycleora at the counts each now chooses on validation ({o_it}; "
                     f"{p_it}): old {old_o:.4f} vs {old_p:.4f} ({old_o - old_p:+.4f}), new {o:.4f} vs {p:.4f} "
                     f"({o - p:+.4f})")
    cells = []
    for dataset, by_protocol in nodeclf.items():
        for protocol, new in by_protocol.items():
            before = old["nodeclf"].get(dataset, {}).get(protocol)
            if before is not None:
                cells.append(f"{dataset} {protocol}: ours {before[0]:.3f} → {new['ours']:.3f}, + self-loops "
                             f"{before[1]:.3f} → {new['ours + self-loops']:.3f}, pycleora {before[2]:.3f} → "
                             f"{new['pycleora']:.3f} (margin {before[0] - before[2]:+.3f} → "
                             f"{new['ours'] - new['pycleora']:+.3f})")
    if cells:
        parts.append("node classification (accuracy; BlogCatalog micro-F1), old → new: " + "; ".join(cells))
    if old.get("outside"):
        parts.append(f"for reference, {old['outside']}")
    return ("The previous table gave pycleora the iteration count chosen for our plain variant, fed unscaled "
            "vectors to a logistic regression at C = 1, chose node-classification counts on one fixed validation "
            "slice, held out a plain random 10% of the edges (292 nodes lost every training edge) and showed link "
            "prediction at every count, the best read off the test table. Now every method gets the same "
            "evaluator: standardised features, C and iterations chosen on validation per method and split, and "
            "a link split in which every node keeps a training edge (the link classifier itself is unchanged: "
            "C = 1 on u ⊙ v). " + "; ".join(parts) + ("." if parts else ""))
