"""Gallery search: instances or centroids, exact or approximate.

A gallery is a set of vectors grouped by product / identity. Instance search
ranks every gallery vector against the query; centroid search (Wieczorek et
al., ICONIP 2021) ranks one vector per group — the L2-normalised mean of the
group's normalised vectors — so the index is as large as the number of groups,
not of images, and a group is found by its typical look rather than by its
single closest picture.

Similarity is cosine (vectors are L2-normalised on the way in). `backend`:
"exact" is a blocked matrix product with an argpartition top-k; "hnsw" is a
faiss HNSW graph over inner products (approximate; `ef_search` trades recall
for speed). Saved as a directory — config JSON, vectors and group labels in an
.npz, the faiss index in faiss's own format — no pickle.

    >>> index = CentroidIndex("centroid").fit(vectors, groups)
    >>> hits = index.search(queries, k=10)       # hits.groups (B, k), hits.scores (B, k)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sketchrec.embeddings import Embeddings

MODES = ("centroid", "instance")
BACKENDS = ("exact", "hnsw")
FORMAT_VERSION = 1


class SearchResult(NamedTuple):
    """rows (B, k): index rows (centroid mode: group positions; instance mode: gallery rows),
    groups (B, k): the group labels of those rows, scores (B, k): cosine similarities; when the
    index holds fewer than k rows the tail is rows -1, groups None, scores NaN."""
    rows: np.ndarray
    groups: np.ndarray
    scores: np.ndarray


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation, float32 (zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)


def group_centroids(vectors: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels (G,), centroids (G, d) normalised means of the normalised vectors, sizes (G,))."""
    labels, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    sums = np.zeros((len(labels), vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, normalise(vectors))
    return labels, normalise(sums / sizes[:, None]), sizes


def exact_topk(queries: np.ndarray, base: np.ndarray, k: int, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of `base` by inner product for every query, best first, in query blocks."""
    n = len(base)
    k_eff = min(k, n)
    rows = np.full((len(queries), k), -1, dtype=np.int64)
    scores = np.full((len(queries), k), np.nan, dtype=np.float32)
    for start in range(0, len(queries), block):
        sims = queries[start:start + block] @ base.T
        top = np.argpartition(-sims, k_eff - 1, axis=1)[:, :k_eff] if k_eff < n else \
            np.broadcast_to(np.arange(n), (len(sims), n))
        top_s = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_s, axis=1, kind="stable")
        rows[start:start + len(sims), :k_eff] = np.take_along_axis(top, order, axis=1)
        scores[start:start + len(sims), :k_eff] = np.take_along_axis(top_s, order, axis=1)
    return rows, scores


class CentroidIndex:
    """Search a grouped gallery by its centroids ("centroid") or by every vector ("instance").

    mode : "centroid" or "instance"
    backend : "exact" or "hnsw" (faiss IndexHNSWFlat, inner product)
    hnsw_m, ef_construction, ef_search : HNSW graph degree and search breadth
    threads : faiss threads (default: all cores)
    """

    def __init__(self, mode: str = "centroid", backend: str = "exact", hnsw_m: int = 32,
                 ef_construction: int = 200, ef_search: int = 128, threads: int | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.mode, self.backend = mode, backend
        self.hnsw_m, self.ef_construction, self.ef_search = hnsw_m, ef_construction, ef_search
        self.threads = threads

    def __repr__(self) -> str:
        size = f", {len(self.vectors_):,} rows" if hasattr(self, "vectors_") else ""
        return f"CentroidIndex(mode={self.mode!r}, backend={self.backend!r}{size})"

    # -- building -------------------------------------------------------------------------
    def fit(self, vectors: np.ndarray | Embeddings, groups) -> "CentroidIndex":
        """Index `vectors` (or an `Embeddings`) whose row i belongs to group `groups[i]`."""
        v = vectors.vectors if isinstance(vectors, Embeddings) else np.asarray(vectors)
        groups = np.asarray(groups)
        if v.ndim != 2 or len(v) == 0:
            raise ValueError(f"need a non-empty (n, d) matrix, got shape {v.shape}")
        if len(groups) != len(v):
            raise ValueError(f"{len(groups)} group labels for {len(v)} vectors")
        if not np.isfinite(v).all():
            raise ValueError("vectors contain NaN or infinity")
        if self.mode == "centroid":
            self.labels_, self.vectors_, self.sizes_ = group_centroids(v, groups)
            self.row_groups_ = self.labels_
        else:
            self.vectors_ = normalise(v)
            self.row_groups_ = groups
            self.labels_, self.sizes_ = np.unique(groups, return_counts=True)
        self._build()
        return self

    def _build(self) -> None:
        self._faiss = None
        if self.backend == "hnsw":
            import faiss
            if self.threads:
                faiss.omp_set_num_threads(self.threads)
            index = faiss.IndexHNSWFlat(self.vectors_.shape[1], self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.add(np.ascontiguousarray(self.vectors_))
            self._faiss = index

    # -- searching ------------------------------------------------------------------------
    def search(self, queries: np.ndarray | Embeddings, k: int = 10) -> SearchResult:
        """The k best rows for each query (cosine), best first."""
        self._check_fitted()
        q = queries.vectors if isinstance(queries, Embeddings) else np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.vectors_.shape[1]:
            raise ValueError(f"queries must be (B, {self.vectors_.shape[1]}), got shape {q.shape}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        q = normalise(q)
        if self._faiss is not None:
            import faiss
            self._faiss.hnsw.efSearch = max(self.ef_search, k)
            if self.threads:
                faiss.omp_set_num_threads(self.threads)
            scores, rows = self._faiss.search(np.ascontiguousarray(q), k)
            rows = rows.astype(np.int64)
            scores = np.where(rows >= 0, scores, np.nan).astype(np.float32)
        else:
            rows, scores = exact_topk(q, self.vectors_, k)
        groups = self.row_groups_[np.maximum(rows, 0)]
        if (rows < 0).any():                               # fewer than k rows in the index
            groups = groups.astype(object)
            groups[rows < 0] = None
        return SearchResult(rows, groups, scores)

    # -- persistence ----------------------------------------------------------------------
    def size_bytes(self) -> int:
        """In-memory size of what a search needs: vectors (+ the HNSW graph)."""
        self._check_fitted()
        if self._faiss is not None:
            import faiss
            return int(faiss.serialize_index(self._faiss).nbytes)
        return int(self.vectors_.nbytes)

    def save(self, directory: str | Path) -> Path:
        """Write config.json, arrays.npz (and index.faiss) to `directory` (replaced atomically)."""
        self._check_fitted()
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        config = {"format": FORMAT_VERSION, "mode": self.mode, "backend": self.backend,
                  "hnsw_m": self.hnsw_m, "ef_construction": self.ef_construction, "ef_search": self.ef_search,
                  "rows": int(len(self.vectors_)), "dim": int(self.vectors_.shape[1])}
        if self.row_groups_.dtype.kind in "OUS":
            arrays = {"row_groups_str": self.row_groups_.astype(str), "labels_str": self.labels_.astype(str)}
        else:
            arrays = {"row_groups": self.row_groups_, "labels": self.labels_}
        np.savez(tmp / "arrays.npz", vectors=self.vectors_, sizes=self.sizes_, **arrays)
        if self._faiss is not None:
            import faiss
            faiss.write_index(self._faiss, str(tmp / "index.faiss"))
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
        if directory.exists():
            old = directory.with_name(directory.name + ".old")
            os.replace(directory, old)
            os.replace(tmp, directory)
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
        else:
            os.replace(tmp, directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "CentroidIndex":
        directory = Path(directory)
        if not (directory / "config.json").exists():
            raise FileNotFoundError(f"{directory} is not a saved CentroidIndex (no config.json)")
        config = json.loads((directory / "config.json").read_text())
        if config.get("format") != FORMAT_VERSION:
            raise ValueError(f"{directory}: index format {config.get('format')} is not {FORMAT_VERSION}")
        index = cls(config["mode"], config["backend"], config["hnsw_m"], config["ef_construction"],
                    config["ef_search"])
        with np.load(directory / "arrays.npz", allow_pickle=False) as arrays:
            index.vectors_, index.sizes_ = arrays["vectors"], arrays["sizes"]
            key = "row_groups" if "row_groups" in arrays.files else "row_groups_str"
            index.row_groups_ = arrays[key]
            index.labels_ = arrays["labels" if key == "row_groups" else "labels_str"]
        index._faiss = None
        if config["backend"] == "hnsw":
            import faiss
            index._faiss = faiss.read_index(str(directory / "index.faiss"))
        if index.vectors_.shape != (config["rows"], config["dim"]):
            raise ValueError(f"{directory}: arrays do not match config.json ({index.vectors_.shape})")
        return index

    def _check_fitted(self) -> None:
        if not hasattr(self, "vectors_"):
            raise RuntimeError("CentroidIndex is not fitted: call fit(vectors, groups) first")
