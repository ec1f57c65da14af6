"""Session-based kNN: S-KNN and V-SKNN (Ludewig & Jannach, UMUAI 2018).

For a session prefix s:
1. candidates = training sessions sharing at least one item with s; of those,
   the `sample_size` most recent are kept (session-rec's "recent" sampling);
2. sim(s, n) = Σ_{i ∈ s ∩ n} w_s(i) / sqrt(|n|) for "cosine" (the query norm is
   a per-row constant and does not change the ranking), or the plain dot
   product for "dot"; w_s(i) = 1 for S-KNN, and a position decay for V-SKNN
   (the last item weighs 1, earlier ones less);
3. the k most similar candidates N_k(s) vote: score(i) = Σ_{n ∈ N_k(s), i ∈ n} sim(s, n).

All three steps are batched: one sparse product gives every (prefix,
candidate) dot product, a numba kernel selects the sample and the top k per
row, and a second sparse product gives the item scores.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from sketchrec.data.sessions import Sessions, session_end_times
from sketchrec.models.base import Recommender, backfill, item_popularity, sparse_rows_to_dense

DECAYS = ("none", "linear", "div", "log")


def position_weights(histories: Sessions, decay: str) -> np.ndarray:
    """(nnz,) float32 weight of every click by its distance d = L - p from the row end.

    none: 1; linear: max(1 - 0.1·d, 0); div: 1 / (d + 1); log: 1 / (log10(d + 1) + 1).
    """
    d = (histories.lengths[histories.row_of_click()] - 1 - histories.position_of_click()).astype(np.float32)
    if decay == "none":
        return np.ones_like(d)
    if decay == "linear":
        return np.maximum(1.0 - 0.1 * d, 0.0)
    if decay == "div":
        return 1.0 / (d + 1.0)
    if decay == "log":
        return 1.0 / (np.log10(d + 1.0) + 1.0)
    raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}")


class SessionKNN(Recommender):
    """S-KNN (decay="none") and V-SKNN (decay="linear").

    Parameters
    ----------
    k : neighbour sessions that vote.
    sample_size : most recent candidate sessions considered (0 = all).
    similarity : "cosine" or "dot".
    decay : position weighting of the prefix's items (see `position_weights`).
    batch_size : prefixes scored per sparse product (memory bound).
    backfill : rank items no neighbour votes for by popularity.
    """

    _state = ("sessions_", "recency_", "norm_", "popularity_")
    _param_choices = {"similarity": ("cosine", "dot"), "decay": DECAYS}
    _param_bounds = {"k": (1, None), "sample_size": (0, None), "batch_size": (1, None)}

    def __init__(self, k: int = 100, sample_size: int = 500, similarity: str = "cosine",
                 decay: str = "none", batch_size: int = 512, backfill: bool = True):
        self.backfill = backfill
        self.k = k
        self.sample_size = sample_size
        self.similarity = similarity
        self.decay = decay
        self.batch_size = batch_size

    def fit(self, train: Sessions) -> "SessionKNN":
        if self.similarity not in ("cosine", "dot"):
            raise ValueError(f"similarity must be 'cosine' or 'dot', got {self.similarity!r}")
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {self.decay!r}")
        x = train.to_csr(binary=True)
        self.sessions_ = x
        # recency rank: later end time (or later row when untimed) = more recent
        end = session_end_times(train) if train.timestamps is not None else np.arange(len(train))
        recency = np.empty(len(train), dtype=np.int64)
        recency[np.argsort(end, kind="stable")] = np.arange(len(train))
        self.recency_ = recency
        sizes = np.diff(x.indptr).astype(np.float32)
        self.norm_ = (1.0 / np.sqrt(np.maximum(sizes, 1.0))).astype(np.float32) \
            if self.similarity == "cosine" else np.ones(len(sizes), np.float32)
        self.popularity_ = item_popularity(train)
        self.n_items_ = train.n_items
        self._item_sessions = None
        return self

    def _query(self, histories: Sessions) -> sp.csr_matrix:
        """(B, n_items) weights; a repeated item keeps its latest (largest) weight."""
        w = position_weights(histories, self.decay)
        rows = histories.row_of_click()
        # each (row, item) keeps its last click, whose weight is the largest
        key = rows * np.int64(self.n_items_) + histories.items
        last = len(key) - 1 - np.unique(key[::-1], return_index=True)[1]
        return sp.csr_matrix((w[last], (rows[last], histories.items[last])),
                             shape=(len(histories), self.n_items_))

    def neighbours(self, histories: Sessions) -> sp.csr_matrix:
        """(B, n_train_sessions) CSR of the selected neighbours and their similarities."""
        self._check_histories(histories)
        if getattr(self, "_item_sessions", None) is None:  # inverted index item -> sessions
            self._item_sessions = self.sessions_.T.tocsr()
        dots = (self._query(histories) @ self._item_sessions).tocsr()
        dots.sum_duplicates()
        n_rows = dots.shape[0]
        row_nnz = np.diff(dots.indptr)
        sample = row_nnz if not self.sample_size else np.minimum(row_nnz, self.sample_size)
        counts = np.minimum(sample, self.k)
        out_indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=out_indptr[1:])
        out_indices = np.empty(out_indptr[-1], dtype=np.int32)
        out_data = np.empty(out_indptr[-1], dtype=np.float32)
        _select_neighbours(dots.indptr.astype(np.int64), dots.indices.astype(np.int32),
                           dots.data.astype(np.float32), self.recency_, self.norm_,
                           sample.astype(np.int64), out_indptr, out_indices, out_data)
        return sp.csr_matrix((out_data, out_indices, out_indptr), shape=dots.shape)

    def score(self, histories: Sessions) -> np.ndarray:
        self._check_histories(histories)
        out = np.empty((len(histories), self.n_items_), dtype=np.float32)
        for start in range(0, len(histories), self.batch_size):
            batch = histories.take(np.arange(start, min(start + self.batch_size, len(histories))))
            votes = (self.neighbours(batch) @ self.sessions_).tocsr()
            out[start:start + len(batch)] = sparse_rows_to_dense(votes)
        return backfill(out, self.popularity_) if self.backfill else out


class VSKNN(SessionKNN):
    """V-SKNN: S-KNN with linearly decaying weights on earlier prefix items."""

    def __init__(self, k: int = 100, sample_size: int = 500, similarity: str = "cosine",
                 decay: str = "linear", batch_size: int = 512, backfill: bool = True):
        super().__init__(k=k, sample_size=sample_size, similarity=similarity, decay=decay,
                         batch_size=batch_size, backfill=backfill)


@numba.njit(parallel=True, cache=True)
def _select_neighbours(indptr, indices, dots, recency, norm, sample, out_indptr,
                       out_indices, out_data):
    # Per row r (in parallel): among its candidate sessions keep the sample[r]
    # most recent, score them dot·norm, and write the top out_len by score
    # (ties: more recent first). Cost O(row_nnz log row_nnz) per row.
    for r in numba.prange(len(indptr) - 1):
        start, stop = indptr[r], indptr[r + 1]
        n_out = out_indptr[r + 1] - out_indptr[r]
        if n_out == 0:
            continue
        cand = indices[start:stop]
        by_recency = np.argsort(-recency[cand], kind="mergesort")[: sample[r]]
        picked = cand[by_recency]
        sims = dots[start:stop][by_recency] * norm[picked]
        best = np.argsort(-sims, kind="mergesort")[:n_out]
        o = out_indptr[r]
        for t in range(n_out):
            out_indices[o + t] = picked[best[t]]
            out_data[o + t] = sims[best[t]]
