"""Approximate nearest-neighbour libraries measured alike: the HNSW index of faiss, usearch and
hnswlib built over the same unit vectors (inner product) with the same graph settings and
threads, saved to disk, and searched at a range of breadths (ef), with recall against exact
search (benchmarks/ann_backends.py). Only faiss is a dependency of sketchrec; a library that is
not installed raises ImportError before anything is timed.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from sketchrec.eval.report import timed

M, EF_CONSTRUCTION = 32, 200        # HNSW graph degree and construction breadth, for every library


def _faiss_build(base, threads):
    import faiss
    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.add(base)
    return index


def _faiss_search(index, queries, k, ef, threads):
    index.hnsw.efSearch = ef
    return index.search(queries, k)[1]


def _usearch_build(base, threads):
    from usearch.index import Index
    index = Index(ndim=base.shape[1], metric="ip", dtype="f32", connectivity=M, expansion_add=EF_CONSTRUCTION)
    index.add(np.arange(len(base)), base, threads=threads)
    return index


def _usearch_search(index, queries, k, ef, threads):
    index.expansion_search = ef
    return index.search(queries, k, threads=threads).keys


def _hnswlib_build(base, threads):
    import hnswlib
    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=len(base), ef_construction=EF_CONSTRUCTION, M=M)
    index.add_items(base, np.arange(len(base)), num_threads=threads)
    return index


def _hnswlib_search(index, queries, k, ef, threads):
    index.set_ef(max(ef, k))
    return index.knn_query(queries, k=k, num_threads=threads)[0]


def _faiss_save(index, path):
    import faiss
    faiss.write_index(index, str(path))


#: library -> (build(base, threads), save(index, path), search(index, queries, k, ef, threads))
LIBRARIES = {"faiss": (_faiss_build, _faiss_save, _faiss_search),
             "usearch": (_usearch_build, lambda index, path: index.save(str(path)), _usearch_search),
             "hnswlib": (_hnswlib_build, lambda index, path: index.save_index(str(path)), _hnswlib_search)}


def hnsw_sweep(library: str, base: np.ndarray, queries: np.ndarray, k: int, efs, threads: int,
               folder: Path) -> tuple[float, int, list[tuple[int, float, np.ndarray]]]:
    """Build `library`'s HNSW index over `base`, save it into `folder`, search all `queries` at
    each ef: (build seconds, bytes on disk, [(ef, search seconds, rows found, int64)])."""
    importlib.import_module(library)
    build, save, search = LIBRARIES[library]
    index, build_s = timed(build, base, threads)
    path = Path(folder) / f"{library}.index"
    save(index, path)
    out = []
    for ef in efs:
        found, seconds = timed(search, index, queries, k, ef, threads)
        out.append((ef, seconds, np.asarray(found).astype(np.int64)))
    return build_s, path.stat().st_size, out


def recall(truth: np.ndarray, found: np.ndarray) -> float:
    """Mean share of each query's true top k (rows of `truth`) among the k rows found.

    >>> recall(np.array([[0, 1], [2, 3]]), np.array([[1, 0], [2, 5]]))
    0.75
    """
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(truth, found)]))
