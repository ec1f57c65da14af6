"""Gallery search: instances or centroids, exact or approximate — every cosine search in sketchrec.

A gallery is a set of vectors grouped by product / identity. Instance search
ranks every gallery vector against the query; centroid search (Wieczorek et
al., ICONIP 2021) ranks one vector per group — the L2-normalised mean of the
group's normalised vectors — so the index is as large as the number of groups,
not of images, and a group is found by its typical look rather than by its
single closest picture.

Similarity is cosine (vectors are L2-normalised on the way in, unless
``assume_unit=True`` says they already are). `backend`: "exact" is
`sketchrec.topk.inner_product_topk` (blocks of `chunk_rows` queries, ties to the
lower row); "hnsw" is a faiss HNSW graph over inner products (approximate;
`ef_search` trades recall for speed). Every search answers a `SearchResult`:
`Embeddings.most_similar`, `CatalogueSearch.search` and the service's /similar
and /search all go through `CentroidIndex`.

Saved as a directory — config JSON, vectors and group labels in an .npz, the
faiss index in faiss's own format — no pickle. `Estimator.save` (one .npz)
works too: `load` reads either.

    >>> index = CentroidIndex("centroid").fit(vectors, groups)
    >>> hits = index.search(queries, k=10)       # hits.groups (B, k), hits.scores (B, k)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sketchrec.base import Estimator
from sketchrec.topk import inner_product_topk

MODES = ("centroid", "instance")
BACKENDS = ("exact", "hnsw")
FORMAT_VERSION = 1


class SearchResult(NamedTuple):
    """The one shape of a top-k search. rows (B, k) int64: index rows (centroid mode: group
    positions; instance mode: gallery rows), groups (B, k): the group labels of those rows,
    scores (B, k) float32: cosine similarities, best first. When fewer than k rows can be
    answered (a small index, or rows excluded) the tail is rows -1, groups None, scores NaN."""
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
    """Deprecated: `sketchrec.topk.inner_product_topk` (or `CentroidIndex.search`). Top-k rows of
    `base` by inner product, best first, padded to k with rows -1 and scores NaN."""
    import warnings
    warnings.warn("exact_topk() is deprecated: use sketchrec.topk.inner_product_topk or CentroidIndex.search "
                  "(the old name goes in the next release)", DeprecationWarning, stacklevel=2)
    rows, scores = inner_product_topk(queries, base, k, chunk_rows=block)
    return _padded(rows, scores, k)


def _padded(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores) widened to k columns; missing answers (past the index's rows, excluded
    rows at -inf, faiss's -1) become row -1 and score NaN."""
    if rows.shape[1] < k:
        rows = np.pad(rows, ((0, 0), (0, k - rows.shape[1])), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, k - scores.shape[1])), constant_values=np.nan)
    missing = (rows < 0) | np.isneginf(scores)
    if missing.any():
        rows, scores = np.where(missing, -1, rows), np.where(missing, np.nan, scores).astype(np.float32)
    return rows, scores


class CentroidIndex(Estimator):
    """Search a grouped gallery by its centroids ("centroid") or by every vector ("instance").

    mode : "centroid" or "instance"
    backend : "exact" or "hnsw" (faiss IndexHNSWFlat, inner product)
    hnsw_m, ef_construction, ef_search : HNSW graph degree and search breadth
    threads : faiss threads (default: all cores)
    chunk_rows : queries scored per block by the exact backend (memory: chunk_rows x rows floats;
        None: all the queries of a call in one block)
    assume_unit : the vectors and queries given already have unit rows (an encoder's normalised
        output): they are used as given, so scores are exactly their inner products
    """

    _state = ("vectors_", "row_groups_", "labels_", "sizes_")
    _transient = ("threads",)
    _param_choices = {"mode": MODES, "backend": BACKENDS}
    _param_bounds = {"hnsw_m": (2, None), "ef_construction": (1, None), "ef_search": (1, None),
                     "chunk_rows": (1, None)}

    def __init__(self, mode: str = "centroid", backend: str = "exact", hnsw_m: int = 32,
                 ef_construction: int = 200, ef_search: int = 128, threads: int | None = None,
                 chunk_rows: int | None = 4096, assume_unit: bool = False):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.mode, self.backend = mode, backend
        self.hnsw_m, self.ef_construction, self.ef_search = hnsw_m, ef_construction, ef_search
        self.threads, self.chunk_rows, self.assume_unit = threads, chunk_rows, assume_unit

    # -- building -------------------------------------------------------------------------
    def fit(self, vectors, groups=None) -> "CentroidIndex":
        """Index `vectors` ((n, d) array, or anything with a `.vectors` one such as `Embeddings`)
        whose row i belongs to group `groups[i]` (None: every row is its own group, labelled by its
        row number)."""
        v = np.asarray(getattr(vectors, "vectors", vectors))
        groups = np.arange(len(v)) if groups is None else np.asarray(groups)
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
            self.vectors_ = np.ascontiguousarray(v, dtype=np.float32) if self.assume_unit else normalise(v)
            self.row_groups_ = groups
            self.labels_, self.sizes_ = np.unique(groups, return_counts=True)
        self._build()
        return self

    def _build(self) -> None:
        self._faiss = None
        if self.backend == "hnsw":
            faiss = _faiss()
            if self.threads:
                faiss.omp_set_num_threads(self.threads)
            index = faiss.IndexHNSWFlat(self.vectors_.shape[1], self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.add(np.ascontiguousarray(self.vectors_))
            self._faiss = index

    # -- searching ------------------------------------------------------------------------
    def search(self, queries, k: int = 10) -> SearchResult:
        """The k best rows for each query ((B, d), (d,), or anything with `.vectors`), by cosine,
        best first."""
        self._check_fitted()
        q = np.asarray(getattr(queries, "vectors", queries))
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.vectors_.shape[1]:
            raise ValueError(f"queries must be (B, {self.vectors_.shape[1]}), got shape {q.shape}")
        self._check_k(k)
        q = np.asarray(q, dtype=np.float32) if self.assume_unit else normalise(q)
        return self._search(q, k)

    def search_rows(self, rows, k: int = 10, exclude_self: bool = True) -> SearchResult:
        """The k best rows for the index's own rows `rows` (B,) int (instance mode: gallery rows),
        each row itself left out with `exclude_self`."""
        self._check_fitted()
        self._check_k(k)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self.vectors_)):
            raise ValueError(f"rows must lie in [0, {len(self.vectors_)})")
        exclude = (np.arange(len(rows) + 1), rows) if exclude_self else None
        return self._search(self.vectors_[rows], k, exclude)

    @staticmethod
    def _check_k(k) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an integer of at least 1, got {k!r}")

    def _search(self, q: np.ndarray, k: int, exclude=None) -> SearchResult:
        """Top-k of unit queries `q`; `exclude`: CSR (indptr, rows) left out per query."""
        if getattr(self, "_faiss", None) is not None:
            rows, scores = self._faiss_search(q, k, exclude)
        else:
            rows, scores = inner_product_topk(q, self.vectors_, k, exclude=exclude,
                                              chunk_rows=self.chunk_rows or max(1, len(q)))
        rows, scores = _padded(rows, scores, k)
        groups = self.row_groups_[np.maximum(rows, 0)]
        if (rows < 0).any():                               # fewer than k answers
            groups = groups.astype(object)
            groups[rows < 0] = None
        return SearchResult(rows, groups, scores)

    def _faiss_search(self, q: np.ndarray, k: int, exclude) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        extra = 0 if exclude is None else int(np.diff(exclude[0]).max(initial=0))
        self._faiss.hnsw.efSearch = max(self.ef_search, k + extra)
        if self.threads:
            faiss.omp_set_num_threads(self.threads)
        scores, rows = self._faiss.search(np.ascontiguousarray(q), k + extra)
        rows = rows.astype(np.int64)
        scores = np.where(rows >= 0, scores, np.nan).astype(np.float32)
        if exclude is not None:               # drop the excluded rows (keys query x n + row), keep the order
            indptr, excluded = (np.asarray(a, dtype=np.int64) for a in exclude)
            n = len(self.vectors_)
            query_of = np.repeat(np.arange(len(rows)), np.diff(indptr))
            drop = np.isin(np.arange(len(rows))[:, None] * n + rows, query_of * n + excluded) | (rows < 0)
            order = np.argsort(drop, axis=1, kind="stable")[:, :k]
            rows, scores, drop = (np.take_along_axis(a, order, axis=1) for a in (rows, scores, drop))
            rows[drop], scores[drop] = -1, np.nan
        return rows, scores

    # -- persistence ----------------------------------------------------------------------
    def size_bytes(self) -> int:
        """In-memory size of what a search needs: vectors (+ the HNSW graph)."""
        self._check_fitted()
        if getattr(self, "_faiss", None) is not None:
            return int(_faiss().serialize_index(self._faiss).nbytes)
        return int(self.vectors_.nbytes)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """`Estimator.state_arrays`, with text labels as unicode arrays (never pickled objects)."""
        arrays = super().state_arrays()
        for name in ("row_groups_", "labels_"):
            if arrays[name].dtype.kind == "O":
                arrays[name] = arrays[name].astype(str)
        return arrays

    def _save_extra(self) -> dict[str, np.ndarray]:
        if getattr(self, "_faiss", None) is None:
            return {}
        return {"faiss_index": _faiss().serialize_index(self._faiss)}

    def _load_extra(self, arrays) -> None:
        self._faiss = None
        if self.backend == "hnsw":
            names = arrays.files if hasattr(arrays, "files") else arrays.keys()
            if "faiss_index" in names:
                self._faiss = _faiss().deserialize_index(np.asarray(arrays["faiss_index"]))
            else:
                self._build()

    def save(self, directory: str | Path) -> Path:
        """Write config.json, arrays.npz (and index.faiss) to `directory` (replaced atomically)."""
        self._check_fitted()
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        config = {"format": FORMAT_VERSION, "mode": self.mode, "backend": self.backend,
                  "hnsw_m": self.hnsw_m, "ef_construction": self.ef_construction, "ef_search": self.ef_search,
                  "chunk_rows": self.chunk_rows, "assume_unit": self.assume_unit,
                  "rows": int(len(self.vectors_)), "dim": int(self.vectors_.shape[1])}
        if self.row_groups_.dtype.kind in "OUS":
            arrays = {"row_groups_str": self.row_groups_.astype(str), "labels_str": self.labels_.astype(str)}
        else:
            arrays = {"row_groups": self.row_groups_, "labels": self.labels_}
        np.savez(tmp / "arrays.npz", vectors=self.vectors_, sizes=self.sizes_, **arrays)
        if getattr(self, "_faiss", None) is not None:
            _faiss().write_index(self._faiss, str(tmp / "index.faiss"))
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
    def load(cls, path: str | Path) -> "CentroidIndex":
        """Read an index written by `save` (a directory) or by `Estimator.save` (one .npz file)."""
        path = Path(path)
        if path.is_file():
            return super().load(path)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} is not a saved CentroidIndex (no config.json)")
        config = json.loads((path / "config.json").read_text())
        if config.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: index format {config.get('format')} is not {FORMAT_VERSION}")
        index = cls(config["mode"], config["backend"], config["hnsw_m"], config["ef_construction"],
                    config["ef_search"], chunk_rows=config.get("chunk_rows", 4096),
                    assume_unit=config.get("assume_unit", False))
        with np.load(path / "arrays.npz", allow_pickle=False) as arrays:
            index.vectors_, index.sizes_ = arrays["vectors"], arrays["sizes"]
            key = "row_groups" if "row_groups" in arrays.files else "row_groups_str"
            index.row_groups_ = arrays[key]
            index.labels_ = arrays["labels" if key == "row_groups" else "labels_str"]
        index._faiss = None
        if config["backend"] == "hnsw":
            index._faiss = _faiss().read_index(str(path / "index.faiss"))
        if index.vectors_.shape != (config["rows"], config["dim"]):
            raise ValueError(f"{path}: arrays do not match config.json ({index.vectors_.shape})")
        return index


def _faiss():
    from sketchrec._optional import require
    return require("faiss", "the HNSW gallery index (CentroidIndex backend='hnsw')")
