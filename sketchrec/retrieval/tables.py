"""Retrieval result tables: instance vs centroid evaluation of a split, Markdown tables of
per-seed runs, and the index cost table (Table 12 shape: gallery rows, size on disk, build
and query time, HNSW recall against exact search).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from sketchrec.eval.report import markdown_table, mean_std
from sketchrec.retrieval import CentroidIndex, evaluate_retrieval


def retrieval_modes(ks, emb: np.ndarray, labels: np.ndarray, query: np.ndarray) -> dict[str, dict]:
    """`evaluate_retrieval` of the `query` rows against the rest, in instance and in centroid mode."""
    return {mode: evaluate_retrieval(emb[query], labels[query], emb[~query], labels[~query], mode=mode, ks=ks)
            for mode in ("instance", "centroid")}


def index_costs(gallery: np.ndarray, groups: np.ndarray, queries: np.ndarray, truth_rows=None) -> list[dict]:
    """Table 12: rows, size on disk, total query time for instance / centroid x exact / HNSW."""
    out = []
    for mode in ("instance", "centroid"):
        exact_rows = None
        for backend in ("exact", "hnsw"):
            t0 = time.perf_counter()
            index = CentroidIndex(mode, backend=backend).fit(gallery, groups)
            build_s = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as tmp:
                path = index.save(Path(tmp) / "index")
                disk = sum(f.stat().st_size for f in path.iterdir())
            index.search(queries[:10], k=10)                       # warm-up
            t0 = time.perf_counter()
            hits = index.search(queries, k=10)
            query_s = time.perf_counter() - t0
            row = {"mode": mode, "backend": backend, "rows": int(len(index.vectors_)), "disk_bytes": int(disk),
                   "build_s": build_s, "query_s": query_s, "queries": int(len(queries))}
            if backend == "exact":
                exact_rows = hits.rows
            else:
                k = min(10, len(index.vectors_))
                row["recall@10"] = float(np.mean([len(set(a[:k]) & set(b[:k])) / k
                                                  for a, b in zip(exact_rows, hits.rows)]))
            out.append(row)
    return out


def index_cost_lines(costs: list[dict]) -> list[str]:
    """The `index_costs` rows as a Markdown table."""
    lines = ["| mode | backend | gallery rows | index on disk | build s | total query s | recall@10 vs exact |",
             "|---|---|---|---|---|---|---|"]
    for c in costs:
        lines.append(f"| {c['mode']} | {c['backend']} | {c['rows']:,} | {c['disk_bytes'] / 2**20:.2f} MiB | "
                     f"{c['build_s']:.3f} | {c['query_s']:.4f} ({c['queries']:,} queries) | "
                     f"{c.get('recall@10', float('nan')) * 100:.1f} |".replace("nan", "—"))
    return lines


def method_lines(ks, title: str, methods: dict) -> list[str]:
    """A Markdown table of retrieval results, two rows (instance, centroid) per method: mean ± std over
    its runs (one per seed) of mAP and Acc@k, gallery rows, and training seconds where recorded."""
    rows = []
    for method, runs in methods.items():
        runs = runs if isinstance(runs, list) else [runs]
        for mode in ("instance", "centroid"):
            rows.append([f"{method} ({len(runs)} seed{'s' if len(runs) > 1 else ''})", mode,
                         *[mean_std([r[mode][m] for r in runs], digits=1) for m in ("mAP", *(f"Acc@{k}" for k in ks))],
                         runs[0][mode]["gallery_rows"],
                         mean_std([r["train_s"] for r in runs], 1, 1) if "train_s" in runs[0] else "—"])
    return markdown_table([title, "mode", "mAP", *(f"Acc@{k}" for k in ks), "gallery rows", "train s"], rows)
