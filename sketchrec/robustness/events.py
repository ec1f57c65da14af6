"""Corrupted interaction logs: what broken logging does to the click modality.

Three corruptions of `Sessions`, each at a severity p (a share of the clicks), seeded,
vectorised over all clicks (no loop per session):

- `drop_events`: every click is lost with probability p (a session keeps at least its
  first click, so no session disappears);
- `duplicate_events`: every click is logged twice (the copy right after it) with probability p;
- `add_random_events`: after every click, with probability p, a click on an item drawn
  from the items' popularity (or uniformly) is inserted.

p = 0 returns the sessions unchanged. Timestamps and weights, if present, follow their
clicks (an inserted click copies its predecessor's).

The experiment of benchmarks/robustness_events.py: `session_robustness` (models trained and
tested on corrupted sessions, targets clean), `graph_robustness` (Cleora link prediction on
corrupted training edges) and `text_neighbour_stability` (top-10 title neighbours under each text
aspect), their rows reported by `events_report_lines`.
"""

from __future__ import annotations

import numpy as np

from sketchrec.data.sessions import Sessions
from sketchrec.eval.report import markdown_table


def _check(p: float) -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"severity must be a share in [0, 1], got {p}")


def _rebuild(s: Sessions, source: np.ndarray, items: np.ndarray, rows: np.ndarray) -> Sessions:
    """Sessions from per-output-click source positions (for timestamps / weights), items and rows."""
    counts = np.bincount(rows, minlength=len(s))
    indptr = np.zeros(len(s) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    extra = {k: getattr(s, k)[source] for k in ("timestamps", "weights") if getattr(s, k) is not None}
    return Sessions(indptr, items.astype(np.int32), s.n_items, row_ids=s.row_ids, meta=dict(s.meta), **extra)


def drop_events(sessions: Sessions, p: float, seed: int = 0) -> Sessions:
    _check(p)
    if p == 0:
        return sessions
    rng = np.random.default_rng(seed)
    keep = rng.random(sessions.nnz) >= p
    keep[sessions.indptr[:-1][sessions.lengths > 0]] = True       # every session keeps its first click
    return sessions.filter_clicks(keep)


def duplicate_events(sessions: Sessions, p: float, seed: int = 0) -> Sessions:
    _check(p)
    if p == 0:
        return sessions
    rng = np.random.default_rng(seed)
    copies = 1 + (rng.random(sessions.nnz) < p)
    source = np.repeat(np.arange(sessions.nnz), copies)
    return _rebuild(sessions, source, sessions.items[source], sessions.row_of_click()[source])


def add_random_events(sessions: Sessions, p: float, seed: int = 0, by_popularity: bool = True) -> Sessions:
    _check(p)
    if p == 0:
        return sessions
    rng = np.random.default_rng(seed)
    extra = rng.random(sessions.nnz) < p
    copies = 1 + extra
    source = np.repeat(np.arange(sessions.nnz), copies)
    items = sessions.items[source].astype(np.int64)
    # the second of each repeated pair is the inserted click
    inserted = np.zeros(len(source), dtype=bool)
    inserted[np.cumsum(copies)[extra] - 1] = True
    if by_popularity:
        counts = np.bincount(sessions.items, minlength=sessions.n_items).astype(np.float64)
        items[inserted] = rng.choice(sessions.n_items, int(inserted.sum()), p=counts / counts.sum())
    else:
        items[inserted] = rng.integers(0, sessions.n_items, int(inserted.sum()))
    return _rebuild(sessions, source, items, sessions.row_of_click()[source])


CORRUPTIONS = {"drop": drop_events, "duplicate": duplicate_events, "add": add_random_events}


def corrupt_edges(edges: np.ndarray, corruption: str, share: float, n_nodes: int, rng) -> np.ndarray:
    """An edge list with `share` of its edges dropped ("drop") or that many uniformly random edges
    added ("add"); any other `corruption` ("clean") returns it unchanged."""
    if corruption == "drop":
        return edges[rng.random(len(edges)) >= share]
    if corruption == "add":
        extra = rng.integers(0, n_nodes, size=(int(share * len(edges)), 2))
        return np.vstack([edges, extra])
    return edges


def events_report_lines(results: dict, train_share: float) -> list[str]:
    """The tables of docs/benchmarks/robustness_events.md from its JSON parts (sessions, graph, text):
    each corrupted row with its change against the same model on clean data."""
    lines = []
    delta = lambda r, c, m: [f"{100 * r[m]:.2f}", f"{100 * (r[m] - c[m]):+.2f}"]  # noqa: E731
    if "sessions" in results:
        clean = {r["model"]: r for r in results["sessions"] if r["corruption"] == "clean"}
        lines += [f"## Session recommenders (Diginetica, the latest {train_share:.0%} of training sessions; "
                  "training sessions and test prefixes corrupted, targets clean)", "",
                  *markdown_table(["model", "corruption", "share", "MRR@20", "Δ vs clean", "HR@20", "Δ vs clean"],
                                  [[r["model"], r["corruption"], f"{r['severity']:.0%}",
                                    *delta(r, clean[r["model"]], "MRR@20"), *delta(r, clean[r["model"]], "HR@20")]
                                   for r in results["sessions"]]), ""]
    if "graph" in results:
        c = results["graph"][0]
        lines += ["## Cleora link prediction (facebook-page-page; training edges corrupted)", "",
                  *markdown_table(["corruption", "share", "MRR", "Δ", "HR@10", "Δ"],
                                  [[r["corruption"], f"{r['severity']:.0%}", *delta(r, c, "MRR"), *delta(r, c, "HR@10")]
                                   for r in results["graph"]]), ""]
    if "text" in results:
        lines += ["## Item-to-item recommendations from corrupted titles (MiniLM; fashion catalogue)", "",
                  "Jaccard overlap of each item's top-10 similar items, corrupted titles (severity 2) vs clean.", "",
                  *markdown_table(["aspect", "Jaccard@10"], [[r["aspect"], f"{r['jaccard@10']:.3f}"]
                                                              for r in results["text"]])]
    return lines


def session_robustness(bench, models: dict, severities, seed: int = 0, train_share: float = 1.0) -> list[dict]:
    """Per model (name -> a factory of an unfitted model) and condition (clean, then each of
    `CORRUPTIONS` at each severity): the model trained on the most recent `train_share` of `bench`'s
    training sessions and tested on its test prefixes, both corrupted (seed, seed + 1), the targets
    clean: rows {model, corruption, severity, fit_s, MRR@20, HR@20}."""
    from sketchrec.eval.protocols import evaluate_next_item
    from sketchrec.eval.report import timed
    keep = np.arange(len(bench.train))[-int(len(bench.train) * train_share):]
    train = bench.train.take(keep)
    rows = []
    conditions = [("clean", 0.0)] + [(c, p) for c in CORRUPTIONS for p in severities]
    for name, make in models.items():
        for corruption, p in conditions:
            fn = CORRUPTIONS.get(corruption)
            tr = train if fn is None else fn(train, p, seed=seed)
            prefixes = bench.test_prefixes if fn is None else fn(bench.test_prefixes, p, seed=seed + 1)
            model, fit_s = timed(lambda: make().fit(tr))
            metrics, _ = evaluate_next_item(model, prefixes, bench.test_targets, progress=False)
            rows.append({"model": name, "corruption": corruption, "severity": p, "fit_s": fit_s,
                         "MRR@20": metrics["MRR@20"], "HR@20": metrics["HR@20"]})
            print(rows[-1], flush=True)
    return rows


def graph_robustness(ds, severities, seed: int = 0) -> list[dict]:
    """Cleora (d=1024, 4 iterations) link prediction on graph dataset `ds` (edges, n_nodes): 10% of
    the edges held out (clean), the training edges clean, then a share dropped or as many random edges
    added (`corrupt_edges`) at each severity: rows {model, corruption, severity, MRR, HR@10}."""
    from sketchrec.eval.graph_tasks import linkpred_evaluate, split_edges
    from sketchrec.graph import Cleora, Graph
    train, test = split_edges(ds.edges, 0.1, seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    for corruption, p in [("clean", 0.0)] + [(c, p) for c in ("drop", "add") for p in severities]:
        edges = corrupt_edges(train, corruption, p, ds.n_nodes, rng)
        graph = Graph.from_edges(edges[:, 0], edges[:, 1], n_nodes=ds.n_nodes)
        vectors = Cleora(dim=1024, iterations=4, seed=seed).fit(graph).vectors_
        m = linkpred_evaluate(vectors, edges, test, seed=seed)
        rows.append({"model": "Cleora", "corruption": corruption, "severity": p, "MRR": m["MRR"], "HR@10": m["HR@10"]})
        print(rows[-1], flush=True)
    return rows


def text_neighbour_stability(titles: list[str], encode, n_items: int, seed: int = 0) -> list[dict]:
    """A seeded sample of `n_items` of `titles`; per text aspect (`sketchrec.robustness.ASPECTS`,
    severity 2) the mean Jaccard overlap of each title's top-10 neighbours (cosine of `encode(titles)`
    vectors, itself excluded) on the corrupted titles with those on the clean ones: rows {aspect, jaccard@10}."""
    from sketchrec.robustness import ASPECTS, make
    from sketchrec.topk import topk
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(titles), min(n_items, len(titles)), replace=False))
    titles = [titles[i] for i in sample]

    def neighbours(vectors):
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -np.inf)
        return topk(sims, 10)[0]
    clean = neighbours(encode(titles))
    rows = []
    for aspect in ASPECTS:
        noisy = neighbours(encode(make(aspect, 2, seed).apply_many(titles)))
        jac = np.mean([len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in zip(clean, noisy)])
        rows.append({"aspect": aspect, "jaccard@10": float(jac)})
        print(rows[-1], flush=True)
    return rows
