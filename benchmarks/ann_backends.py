"""Approximate nearest-neighbour libraries for gallery search: faiss vs usearch vs hnswlib.

Same vectors, same threads, cosine similarity, k = 10. For each library's HNSW
index (M = 32, efConstruction = 200) and a range of search breadths (ef): build
seconds, query throughput, recall@10 against exact search, and index size on disk.
Data: the fashion photos' EfficientNet-Lite0 features (real, 9,583 × 1280, cached by
benchmarks/centroid_retrieval.py) and synthetic clustered vectors for scale
(--synthetic N × 128, unit norm). The libraries other than faiss (sketchrec's
dependency) are only needed here: `pip install usearch hnswlib`.

    python -m benchmarks.ann_backends --synthetic 200000 --threads 2
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from sketchrec.embedders.features import DEFAULT_CACHE
from sketchrec.eval.ann import EF_CONSTRUCTION, LIBRARIES, M, hnsw_sweep, recall
from sketchrec.eval.report import benchmark_parser, command, host_line, markdown_table, module_versions, timed, write_page
from sketchrec.retrieval.index import exact_topk, normalise

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
K = 10


def synthetic(n: int, dim: int = 128, clusters: int = 1000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    return normalise(centres[rng.integers(0, clusters, n)] + 0.7 * rng.normal(size=(n, dim)))


def bench(name: str, base: np.ndarray, queries: np.ndarray, efs, threads: int) -> list[dict]:
    (truth, _), exact_s = timed(exact_topk, queries, base, K)
    rows = [{"data": name, "library": "exact (numpy)", "ef": None, "build_s": 0.0, "disk_mib": base.nbytes / 2**20,
             "qps": len(queries) / exact_s, "recall@10": 1.0}]
    for lib in LIBRARIES:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                build, size, results = hnsw_sweep(lib, base, queries, K, efs, threads, Path(tmp))
        except ImportError:
            continue
        rows += [{"data": name, "library": lib, "ef": ef, "build_s": build, "disk_mib": size / 2**20,
                  "qps": len(queries) / seconds, "recall@10": recall(truth, found)} for ef, seconds, found in results]
    return rows


def main() -> None:
    parser = benchmark_parser(__doc__, threads=2)
    parser.add_argument("--synthetic", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--efs", nargs="+", type=int, default=[16, 32, 64, 128])
    parser.add_argument("--cache", default=str(DEFAULT_CACHE / "fashion-lite0-pooled.npy"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    rows = []
    if Path(args.cache).exists():
        feats = normalise(np.load(args.cache))
        rng = np.random.default_rng(0)
        q = rng.choice(len(feats), min(args.queries, len(feats) // 5), replace=False)
        mask = np.ones(len(feats), bool)
        mask[q] = False
        rows += bench(f"fashion EfficientNet-Lite0 ({mask.sum():,} x {feats.shape[1]})", feats[mask], feats[q],
                      args.efs, args.threads)
    data = synthetic(args.synthetic + args.queries)
    rows += bench(f"synthetic clusters ({args.synthetic:,} x 128)", data[:args.synthetic], data[args.synthetic:],
                  args.efs, args.threads)
    lines = ["# Approximate nearest-neighbour libraries", "",
             f"{host_line()}, {args.threads} threads; versions {module_versions(*LIBRARIES)}. Command: "
             + command("ann_backends", synthetic=args.synthetic, threads=args.threads) + ".", "",
             f"HNSW with M = {M}, efConstruction = {EF_CONSTRUCTION}, inner product on unit vectors, k = {K}; "
             f"{args.queries:,} queries (fashion: a random fifth of the photos, at most that many, searched against "
             "the rest). Recall@10 against exact search.", "",
             *markdown_table(["data", "library", "ef", "build s", "index MiB", "queries / s", "recall@10"],
                             [[r["data"], r["library"], r["ef"] or "—", f"{r['build_s']:.2f}", f"{r['disk_mib']:.1f}",
                               f"{r['qps']:,.0f}", f"{100 * r['recall@10']:.1f}"] for r in rows])]
    write_page(OUT / "ann_backends.md", "\n".join(lines) + "\n", data=rows, json_default=None, echo=True)

if __name__ == "__main__":
    main()
