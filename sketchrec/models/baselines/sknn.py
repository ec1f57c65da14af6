"""Session-based kNN: S-KNN and V-SKNN (Ludewig & Jannach, UMUAI 2018).

For a session prefix s (scoring="sketchrec", the default):
1. candidates = training sessions sharing at least one item with s; of those,
   the `sample_size` most recent (by their last click) are kept (session-rec's
   "recent" sampling);
2. sim(s, n) = Σ_{i ∈ s ∩ n} w_s(i) / sqrt(|n|) for "cosine" (the query norm is
   a per-row constant and does not change the ranking), or the plain dot
   product for "dot"; w_s(i) = `position_weights` of item i's last click in s:
   1 for decay "none" (S-KNN); for V-SKNN a weight falling with d, the number
   of clicks after it, and 1 at the last click: "linear" max(1 - 0.1·d, 0),
   "div" 1 / (d + 1), "log" 1 / (log10(d + 1) + 1);
3. the `neighbours` most similar candidates N_k(s) vote (ties: the more recent first):
   score(i) = Σ_{n ∈ N_k(s), i ∈ n} sim(s, n).

scoring="session-rec" is session-rec's VSKNN (`algorithms/knn/vsknn.py`,
VMContextKNN with its defaults weighting="div", weighting_score="div",
remind=True, no idf, no dwelling time): step 1 as above, then
2'. sim(s, n) = Σ_{i ∈ s ∩ n} (p_i / L) / |set(s)|, p_i the 1-based position of
    item i's last click among the L clicks of s (its weighting "div", which
    differs from decay "div" above); `similarity` and `decay` are not used;
3'. each of the `neighbours` most similar votes sim(s, n) / step(s, n) for every item of
    n, prefix items included: step = 1 + the clicks after the latest click of s
    on an item n contains (its weighting_score "div"). session-rec's last
    division of a row by its maximum (normalize=True) is left out: it does not
    change the row's ranking.

All steps are batched: one sparse product gives every (prefix, candidate) dot
product, a numba kernel selects the sample and the top `neighbours` per row, (session-rec
scoring: a second kernel finds each neighbour's step), and a second sparse
product gives the item scores.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from sketchrec._deprecation import current_params, renamed_params
from sketchrec._threads import compute_threads
from sketchrec.data.sessions import Sessions, session_end_times
from sketchrec.models.base import Recommender, backfill, item_popularity, sparse_rows_to_dense

DECAYS = ("none", "linear", "div", "log")
SCORINGS = ("sketchrec", "session-rec")


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
    """S-KNN (decay="none") and V-SKNN (decay="linear", "div" or "log"); see the module docstring.

    Parameters
    ----------
    neighbours : neighbour sessions that vote (formerly `k`, still accepted with a
        DeprecationWarning).
    sample_size : most recent candidate sessions considered (0 = all).
    similarity : "cosine" or "dot" (scoring "sketchrec" only).
    decay : position weighting of the prefix's items (see `position_weights`; scoring
        "sketchrec" only).
    batch_size : prefixes scored per sparse product (memory bound).
    backfill : rank items no neighbour votes for by popularity.
    scoring : "sketchrec" (steps 2-3 of the module docstring) or "session-rec" (session-rec's
        VSKNN scoring, steps 2'-3').
    threads : numba threads of `fit` and `score` (None: all cores); results do not depend on it.
    """

    _state = ("sessions_", "recency_", "norm_", "popularity_")
    _param_choices = {"similarity": ("cosine", "dot"), "decay": DECAYS, "scoring": SCORINGS}
    _param_bounds = {"neighbours": (1, None), "sample_size": (0, None), "batch_size": (1, None),
                     "threads": (1, None)}

    @renamed_params(k="neighbours")
    def __init__(self, neighbours: int = 100, sample_size: int = 500, similarity: str = "cosine",
                 decay: str = "none", batch_size: int = 512, backfill: bool = True,
                 scoring: str = "sketchrec", threads: int | None = None):
        self.backfill = backfill
        self.neighbours = neighbours
        self.sample_size = sample_size
        self.similarity = similarity
        self.decay = decay
        self.batch_size = batch_size
        self.scoring = scoring
        self.threads = threads

    # parameters saved under a former name (k) load under the current one
    @classmethod
    def check_params(cls, params: dict) -> None:
        super().check_params(current_params(cls, params))

    @classmethod
    def from_state_arrays(cls, params: dict, arrays) -> "SessionKNN":
        return super().from_state_arrays(current_params(cls, params), arrays)

    def fit(self, train: Sessions) -> "SessionKNN":
        if self.similarity not in ("cosine", "dot"):
            raise ValueError(f"similarity must be 'cosine' or 'dot', got {self.similarity!r}")
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {self.decay!r}")
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
        x = train.to_csr(binary=True)
        self.sessions_ = x
        # recency rank: later end time (or later row when untimed) = more recent
        end = session_end_times(train) if train.timestamps is not None else np.arange(len(train))
        recency = np.empty(len(train), dtype=np.int64)
        recency[np.argsort(end, kind="stable")] = np.arange(len(train))
        self.recency_ = recency
        sizes = np.diff(x.indptr).astype(np.float32)
        self.norm_ = (1.0 / np.sqrt(np.maximum(sizes, 1.0))).astype(np.float32) \
            if self.similarity == "cosine" and self.scoring == "sketchrec" else np.ones(len(sizes), np.float32)
        self.popularity_ = item_popularity(train)
        self.n_items_ = train.n_items
        self._item_sessions = None
        return self

    def _last_clicks(self, histories: Sessions) -> tuple[np.ndarray, np.ndarray]:
        """(rows of the clicks, index of each (row, item)'s last click, by row then item)."""
        rows = histories.row_of_click()
        key = rows * np.int64(self.n_items_) + histories.items
        return rows, len(key) - 1 - np.unique(key[::-1], return_index=True)[1]

    def _query(self, histories: Sessions) -> sp.csr_matrix:
        """(B, n_items) weights of each row's items, from each item's last click (for the decays,
        its largest weight): `position_weights`, or for session-rec scoring p / L / |set(s)|."""
        rows, last = self._last_clicks(histories)
        if self.scoring == "session-rec":
            length = histories.lengths[rows[last]]
            distinct = np.bincount(rows[last], minlength=len(histories))[rows[last]]
            w = ((histories.position_of_click()[last] + 1) / length / distinct).astype(np.float32)
        else:
            w = position_weights(histories, self.decay)[last]
        return sp.csr_matrix((w, (rows[last], histories.items[last])), shape=(len(histories), self.n_items_))

    def _vote_weights(self, histories: Sessions, neighbours: sp.csr_matrix) -> np.ndarray:
        """session-rec scoring: (nnz,) float32 1 / step of every selected neighbour, in
        `neighbours.data` order; step = 1 + the clicks after the latest click on a shared item."""
        if not self.sessions_.has_sorted_indices:     # the kernel merges sorted item lists
            self.sessions_.sort_indices()
        rows, last = self._last_clicks(histories)
        step = (histories.lengths[rows[last]] - histories.position_of_click()[last]).astype(np.int64)
        q_indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[last], minlength=len(histories)))])
        out = np.empty(len(neighbours.data), dtype=np.int64)
        _last_shared_step(q_indptr.astype(np.int64), histories.items[last].astype(np.int64), step,
                          neighbours.indptr.astype(np.int64), neighbours.indices.astype(np.int64),
                          self.sessions_.indptr.astype(np.int64), self.sessions_.indices.astype(np.int64), out)
        return (1.0 / out).astype(np.float32)

    def neighbour_sessions(self, histories: Sessions) -> sp.csr_matrix:
        """(B, n_train_sessions) CSR of the selected neighbours and their similarities."""
        self._check_histories(histories)
        with compute_threads(self.threads):
            return self._neighbour_sessions(histories)

    def _neighbour_sessions(self, histories: Sessions) -> sp.csr_matrix:
        if getattr(self, "_item_sessions", None) is None:  # inverted index item -> sessions
            self._item_sessions = self.sessions_.T.tocsr()
        dots = (self._query(histories) @ self._item_sessions).tocsr()
        dots.sum_duplicates()
        n_rows = dots.shape[0]
        row_nnz = np.diff(dots.indptr)
        sample = row_nnz if not self.sample_size else np.minimum(row_nnz, self.sample_size)
        counts = np.minimum(sample, self.neighbours)
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
        with compute_threads(self.threads):
            for start in range(0, len(histories), self.batch_size):
                batch = histories.take(np.arange(start, min(start + self.batch_size, len(histories))))
                neighbours = self._neighbour_sessions(batch)
                if self.scoring == "session-rec":
                    neighbours.data *= self._vote_weights(batch, neighbours)
                votes = (neighbours @ self.sessions_).tocsr()
                out[start:start + len(batch)] = sparse_rows_to_dense(votes)
        return backfill(out, self.popularity_) if self.backfill else out


class VSKNN(SessionKNN):
    """V-SKNN: S-KNN whose prefix items weigh by position, by default decay="linear"
    (max(1 - 0.1·d, 0), d = clicks after the item) and cosine similarity. The session
    benchmark's tuning (`sketchrec/pipeline.py`, docs/benchmarks/session_baselines.md) picked
    decay "div" (1 / (d + 1)) on Diginetica, YooChoose 1/64 and NowPlaying, "linear" on
    RetailRocket. scoring="session-rec" gives session-rec's VSKNN instead (module docstring)."""

    @renamed_params(k="neighbours")
    def __init__(self, neighbours: int = 100, sample_size: int = 500, similarity: str = "cosine",
                 decay: str = "linear", batch_size: int = 512, backfill: bool = True,
                 scoring: str = "sketchrec", threads: int | None = None):
        super().__init__(neighbours=neighbours, sample_size=sample_size, similarity=similarity, decay=decay,
                         batch_size=batch_size, backfill=backfill, scoring=scoring, threads=threads)


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


@numba.njit(parallel=True, cache=True)
def _last_shared_step(q_indptr, q_items, q_step, nb_indptr, nb_sessions, s_indptr, s_items, out):
    # Per row r (in parallel), per selected neighbour e of it: the smallest step of the items the
    # prefix and session nb_sessions[e] share, by merging the two sorted item lists.
    # Cost O(|prefix items| + |session items|) per neighbour.
    for r in numba.prange(len(q_indptr) - 1):
        for e in range(nb_indptr[r], nb_indptr[r + 1]):
            n = nb_sessions[e]
            i, j, best = q_indptr[r], s_indptr[n], np.iinfo(np.int64).max
            while i < q_indptr[r + 1] and j < s_indptr[n + 1]:
                if q_items[i] == s_items[j]:
                    best = min(best, q_step[i])
                    i += 1
                    j += 1
                elif q_items[i] < s_items[j]:
                    i += 1
                else:
                    j += 1
            out[e] = best
