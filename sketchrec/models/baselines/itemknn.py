"""Item-based kNN on session (or user) co-occurrence."""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from sketchrec._threads import compute_threads
from sketchrec.data.sessions import Sessions
from sketchrec.models.base import (Recommender, backfill, input_matrix, item_popularity,
                                   sparse_rows_to_dense)


class ItemKNN(Recommender):
    """Item-to-item similarity from co-occurrence in training rows.

    sim(i, j) = n_ij / ((n_i + lam)^alpha · (n_j + lam)^(1 - alpha)), alpha = 0.5
    and lam = 0 being the cosine of binary occurrence vectors (session-rec's
    IKNN). The `neighbours` most similar items are kept per item.

    Parameters
    ----------
    neighbours : items kept per row of the similarity matrix (0 = all).
    alpha, lam : asymmetry and shrinkage of the normalisation above.
    history : "last" scores by the last item only (session-rec IKNN);
        "all" sums the similarity rows of all items in the history (top-k use).
    backfill : rank items with no similarity by popularity.
    threads : numba threads of `fit` (None: all cores); results do not depend on it.
    """

    _state = ("similarity_", "popularity_")
    _param_choices = {"history": ("last", "all")}
    _param_bounds = {"neighbours": (0, None), "alpha": (0, 1), "lam": (0, None), "threads": (1, None)}

    def __init__(self, neighbours: int = 100, alpha: float = 0.5, lam: float = 0.0,
                 history: str = "last", backfill: bool = True, threads: int | None = None):
        self.backfill = backfill
        self.neighbours = neighbours
        self.alpha = alpha
        self.lam = lam
        self.history = history
        self.threads = threads

    def fit(self, train: Sessions) -> "ItemKNN":
        if self.history not in ("last", "all"):
            raise ValueError(f"history must be 'last' or 'all', got {self.history!r}")
        x = train.to_csr(binary=True)
        co = (x.T @ x).tocsr().astype(np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        support = np.asarray(x.sum(axis=0)).ravel().astype(np.float64) + self.lam
        left = np.power(support, -self.alpha, where=support > 0, out=np.zeros_like(support))
        right = np.power(support, -(1 - self.alpha), where=support > 0, out=np.zeros_like(support))
        sim = sp.diags(left.astype(np.float32)) @ co @ sp.diags(right.astype(np.float32))
        sim = sim.tocsr()
        with compute_threads(self.threads):
            self.similarity_ = prune_rows(sim, self.neighbours) if self.neighbours else sim
        self.popularity_ = item_popularity(train)
        self.n_items_ = train.n_items
        return self

    def score(self, histories: Sessions) -> np.ndarray:
        self._check_histories(histories)
        if self.history == "last":
            scores = sparse_rows_to_dense(self.similarity_[histories.last_items()])
        else:
            scores = sparse_rows_to_dense((input_matrix(histories, self.n_items_) @ self.similarity_).tocsr())
        return backfill(scores, self.popularity_) if self.backfill else scores


def prune_rows(m: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """Keep the `keep` largest entries of every CSR row (ties: lower column first)."""
    m = m.tocsr()
    m.sum_duplicates()
    counts = np.minimum(np.diff(m.indptr), keep)
    indptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=np.int32)
    data = np.empty(indptr[-1], dtype=m.data.dtype)
    _prune_rows_kernel(m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data, indptr,
                       indices, data)
    out = sp.csr_matrix((data, indices, indptr), shape=m.shape)
    out.sort_indices()
    return out


@numba.njit(parallel=True, cache=True)
def _prune_rows_kernel(indptr, indices, data, out_indptr, out_indices, out_data):
    # Per row: stable argsort of -value over the row's entries, keep the first
    # out_len. Cost O(nnz log(row length)), rows in parallel.
    for r in numba.prange(len(indptr) - 1):
        start, stop = indptr[r], indptr[r + 1]
        o0 = out_indptr[r]
        n_out = out_indptr[r + 1] - o0
        if n_out == 0:
            continue
        order = np.argsort(-data[start:stop], kind="mergesort")
        for t in range(n_out):
            out_indices[o0 + t] = indices[start + order[t]]
            out_data[o0 + t] = data[start + order[t]]
