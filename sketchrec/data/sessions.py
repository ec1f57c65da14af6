"""Sessions: rows of item sequences in CSR form, and the operations on them.

A `Sessions` holds one row per session (or per user history, for top-k
recommendation): `indptr` (n_rows + 1,) int64 and `items` (nnz,) int32 internal
item ids in click order, with optional per-click timestamps and weights. Every
recommender takes and scores `Sessions`, so evaluation and serving never care
whether a row is a session prefix or a user's history.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp


@dataclass
class Sessions:
    """Variable-length item sequences in CSR layout.

    indptr : (n_rows + 1,) int64, row r is items[indptr[r]:indptr[r+1]]
    items : (nnz,) int32 internal item ids
    n_items : size of the item universe (ids are < n_items)
    timestamps : optional (nnz,) int64 Unix seconds per click
    weights : optional (nnz,) float32 per click
    row_ids : optional (n_rows,) external session / user ids (any dtype)
    """

    indptr: np.ndarray
    items: np.ndarray
    n_items: int
    timestamps: np.ndarray | None = None
    weights: np.ndarray | None = None
    row_ids: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.indptr = np.ascontiguousarray(self.indptr, dtype=np.int64)
        self.items = np.ascontiguousarray(self.items, dtype=np.int32)
        if self.indptr.ndim != 1 or len(self.indptr) == 0 or self.indptr[0] != 0:
            raise ValueError("indptr must be 1-D and start at 0")
        if self.indptr[-1] != len(self.items):
            raise ValueError(f"indptr[-1]={self.indptr[-1]} but there are {len(self.items)} items")
        if len(self.items) and (self.items.min() < 0 or self.items.max() >= self.n_items):
            raise ValueError(
                f"item ids must lie in [0, n_items={self.n_items}); "
                f"got [{self.items.min()}, {self.items.max()}]")
        for name in ("timestamps", "weights"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != len(self.items):
                raise ValueError(f"{name} has {len(arr)} entries for {len(self.items)} items")

    # -- construction -----------------------------------------------------
    @classmethod
    def from_lists(cls, rows, n_items: int | None = None) -> "Sessions":
        """From a list of item-id lists (small data, tests, requests)."""
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        items = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(indptr[-1]))
        if n_items is None:
            n_items = int(items.max()) + 1 if len(items) else 0
        return cls(indptr, items.astype(np.int32), n_items)

    @classmethod
    def from_sorted_codes(cls, row_codes: np.ndarray, items: np.ndarray, n_items: int,
                          **extra) -> "Sessions":
        """From per-click row codes already grouped (non-decreasing) and their items."""
        if len(row_codes) and np.any(np.diff(row_codes) < 0):
            raise ValueError("row_codes must be sorted (group clicks by row first)")
        n_rows = int(row_codes[-1]) + 1 if len(row_codes) else 0
        counts = np.bincount(row_codes, minlength=n_rows)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr, items, n_items, **extra)

    # -- basic properties -------------------------------------------------
    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    @property
    def nnz(self) -> int:
        return len(self.items)

    def row(self, r: int) -> np.ndarray:
        return self.items[self.indptr[r]:self.indptr[r + 1]]

    def to_lists(self) -> list[list[int]]:
        return [self.row(r).tolist() for r in range(len(self))]

    def row_of_click(self) -> np.ndarray:
        """(nnz,) int64 row index of every click."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)

    def position_of_click(self) -> np.ndarray:
        """(nnz,) int64 0-based position of every click inside its row."""
        return np.arange(self.nnz, dtype=np.int64) - np.repeat(self.indptr[:-1], self.lengths)

    def last_items(self) -> np.ndarray:
        """(n_rows,) int32 last item of each row; rows must be non-empty."""
        if np.any(self.lengths == 0):
            raise ValueError("last_items needs non-empty rows")
        return self.items[self.indptr[1:] - 1]

    def take(self, rows: np.ndarray) -> "Sessions":
        """The sub-collection of the given rows (int indices or bool mask), in that order."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        lengths = self.lengths[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # gather index of every kept click, vectorised
        click = np.repeat(self.indptr[rows] - indptr[:-1], lengths) + np.arange(indptr[-1])
        pick = lambda a: None if a is None else a[click]  # noqa: E731
        return Sessions(indptr, self.items[click], self.n_items,
                        timestamps=pick(self.timestamps), weights=pick(self.weights),
                        row_ids=None if self.row_ids is None else self.row_ids[rows],
                        meta=dict(self.meta))

    def filter_clicks(self, keep: np.ndarray) -> "Sessions":
        """Drop clicks where keep (nnz,) bool is False; rows keep their order (may become empty)."""
        counts = np.bincount(self.row_of_click()[keep], minlength=len(self))
        indptr = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        pick = lambda a: None if a is None else a[keep]  # noqa: E731
        return replace(self, indptr=indptr, items=self.items[keep],
                       timestamps=pick(self.timestamps), weights=pick(self.weights))

    def tail(self, n: int) -> "Sessions":
        """Keep the last `n` clicks of every row (rows already shorter are unchanged)."""
        if self.nnz == 0 or self.lengths.max() <= n:
            return self
        return self.filter_clicks(self.position_of_click() >= (self.lengths - n)[self.row_of_click()])

    def to_csr(self, binary: bool = True) -> sp.csr_matrix:
        """(n_rows, n_items) sparse matrix; repeated items are summed unless binary."""
        data = self.weights if (self.weights is not None and not binary) else np.ones(self.nnz, np.float32)
        # copies: sum_duplicates sorts indices in place, which must not reorder our clicks
        m = sp.csr_matrix((data.astype(np.float32), self.items.copy(), self.indptr.copy()),
                          shape=(len(self), self.n_items))
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.items, minlength=self.n_items)

    def __repr__(self) -> str:
        return (f"Sessions(rows={len(self):,}, clicks={self.nnz:,}, n_items={self.n_items:,}, "
                f"mean_len={self.nnz / max(len(self), 1):.2f})")


def concat(parts: list[Sessions]) -> Sessions:
    """Stack several Sessions over the same item universe."""
    n_items = max(p.n_items for p in parts)
    offsets = np.cumsum([0] + [p.nnz for p in parts[:-1]])
    indptr = np.concatenate([[0]] + [p.indptr[1:] + o for p, o in zip(parts, offsets)])
    def cat(name):
        arrs = [getattr(p, name) for p in parts]
        return None if any(a is None for a in arrs) else np.concatenate(arrs)
    return Sessions(indptr, np.concatenate([p.items for p in parts]), n_items,
                    timestamps=cat("timestamps"), weights=cat("weights"), row_ids=cat("row_ids"))


def merge_rows(parts: list[Sessions]) -> Sessions:
    """Row-aligned union: row r of the result is row r of parts[0], then of parts[1], ...

    All parts must have the same number of rows (e.g. a user's liked inputs and
    disliked items). Vectorised: one stable sort of the stacked clicks by row.
    """
    if len({len(p) for p in parts}) != 1:
        raise ValueError(f"parts have different row counts: {[len(p) for p in parts]}")
    stacked = concat(parts)
    order = np.argsort(np.concatenate([p.row_of_click() for p in parts]), kind="stable")
    indptr = np.zeros(len(parts[0]) + 1, dtype=np.int64)
    np.cumsum(sum(p.lengths for p in parts), out=indptr[1:])
    pick = lambda a: None if a is None else a[order]  # noqa: E731
    return Sessions(indptr, stacked.items[order], stacked.n_items, timestamps=pick(stacked.timestamps),
                    weights=pick(stacked.weights), row_ids=parts[0].row_ids, meta=dict(parts[0].meta))


def expand_prefixes(sessions: Sessions, min_prefix: int = 1) -> tuple[Sessions, np.ndarray]:
    """Every session [i1..in] -> prefixes [i1..ik] with target i(k+1), k = min_prefix..n-1.

    Prefixes are emitted longest first within a session, as SR-GNN's
    preprocessing does (so expanding its test sessions gives back its test.txt).
    Returns (prefixes, targets (n_pairs,) int32). Vectorised: O(sum of prefix lengths).
    """
    starts, lengths, targets = prefix_pairs(sessions, min_prefix)
    return gather_prefixes(sessions, starts, lengths, timestamps=True), targets


def prefix_pairs(sessions: Sessions, min_prefix: int = 1, max_prefix: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (prefix, next item) pairs of `expand_prefixes` as compact arrays, in the same order:
    (starts (n_pairs,) int64 position in `sessions.items` of each prefix's first click,
    lengths (n_pairs,) int64, targets (n_pairs,) int32). With `max_prefix`, a prefix keeps only
    its last max_prefix clicks (as ``prefixes.tail(max_prefix)``). Three integers a pair instead of
    the whole prefix: a batch's prefixes are gathered when needed (`gather_prefixes`)."""
    lengths = sessions.lengths
    n_pairs_per = np.maximum(lengths - min_prefix, 0)
    sess_of_pair = np.repeat(np.arange(len(sessions)), n_pairs_per)
    # k-th pair of a session (0-based) has prefix length (len-1-k): longest first
    first = np.repeat(np.cumsum(n_pairs_per) - n_pairs_per, n_pairs_per)
    k = np.arange(len(sess_of_pair)) - first
    prefix_len = lengths[sess_of_pair] - 1 - k
    starts = sessions.indptr[sess_of_pair]
    targets = sessions.items[starts + prefix_len].astype(np.int32)
    if max_prefix:
        cut = np.maximum(prefix_len - max_prefix, 0)
        starts, prefix_len = starts + cut, prefix_len - cut
    return starts, prefix_len, targets


def gather_prefixes(sessions: Sessions, starts: np.ndarray, lengths: np.ndarray,
                    timestamps: bool = False) -> Sessions:
    """Rows items[starts[r] : starts[r] + lengths[r]] of `sessions` as `Sessions` (vectorised
    gather; with `timestamps`, theirs come along)."""
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    click = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
    times = sessions.timestamps[click] if timestamps and sessions.timestamps is not None else None
    return Sessions(indptr, sessions.items[click], sessions.n_items, timestamps=times)


def sessionize(row_codes: np.ndarray, timestamps: np.ndarray, gap_seconds: float) -> np.ndarray:
    """Split each user's clicks into sessions at inactivity gaps.

    row_codes (n,) user codes and timestamps (n,) int64 seconds, already sorted
    by (user, time). Returns (n,) int64 session codes 0..S-1 in that order.
    """
    new = np.ones(len(row_codes), dtype=bool)
    if len(row_codes) > 1:
        new[1:] = (row_codes[1:] != row_codes[:-1]) | (np.diff(timestamps) > gap_seconds)
    return np.cumsum(new) - 1


def srgnn_filter(sessions: Sessions, min_item_support: int = 5, min_session_length: int = 2,
                 drop_single_first: bool = True) -> Sessions:
    """The SR-GNN preprocessing filters, parameterised.

    1. drop sessions of length 1 (if drop_single_first),
    2. drop clicks on items seen fewer than `min_item_support` times,
    3. drop sessions now shorter than `min_session_length`.
    """
    s = sessions
    if drop_single_first:
        s = s.take(s.lengths > 1)
    counts = s.item_counts()
    s = s.filter_clicks(counts[s.items] >= min_item_support)
    return s.take(s.lengths >= min_session_length)


def session_end_times(sessions: Sessions) -> np.ndarray:
    """(n_rows,) int64 timestamp of each session's last click."""
    if sessions.timestamps is None:
        raise ValueError("sessions have no timestamps")
    return np.maximum.reduceat(sessions.timestamps, sessions.indptr[:-1]) \
        if sessions.nnz else np.zeros(0, np.int64)


def time_split(sessions: Sessions, test_days: float = 7.0) -> tuple[Sessions, Sessions]:
    """SR-GNN protocol: sessions ending in the last `test_days` days are test.

    Test clicks on items that never occur in train are dropped and test
    sessions shorter than 2 removed, as in SR-GNN's preprocessing.
    """
    end = session_end_times(sessions)
    split_at = end.max() - int(test_days * 86400)
    train = sessions.take(end <= split_at)
    test = sessions.take(end > split_at)
    in_train = train.item_counts() > 0
    test = test.filter_clicks(in_train[test.items])
    return train, test.take(test.lengths >= 2)


def validation_split(train: Sessions, share: float = 0.1) -> tuple[Sessions, Sessions]:
    """Last `share` of training sessions (by end time, else by row order) -> validation."""
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share}")
    order = np.argsort(session_end_times(train), kind="stable") \
        if train.timestamps is not None else np.arange(len(train))
    n_valid = int(round(len(train) * share))
    return train.take(np.sort(order[:-n_valid])), train.take(np.sort(order[-n_valid:]))


def user_holdout(histories: Sessions, test_share: float = 0.2, min_items: int = 5,
                 seed: int = 0) -> tuple[Sessions, Sessions, np.ndarray]:
    """Top-k protocol: per user, a seeded random `test_share` of items is the target.

    Users with fewer than `min_items` distinct items are dropped. Returns
    (inputs, targets, kept_rows) with rows aligned; every kept user has at
    least one input and one target item. Vectorised over all clicks.
    """
    dedup = _dedupe_rows(histories)
    kept = np.flatnonzero(dedup.lengths >= min_items)
    inputs, targets = random_holdout(dedup.take(kept), test_share, np.random.default_rng(seed))
    return inputs, targets, kept


def random_holdout(histories: Sessions, share: float, rng: np.random.Generator
                   ) -> tuple[Sessions, Sessions]:
    """Every row's clicks split at random: round(share · length) to the target, at least one
    click on each side where the row has two or more (rows stay aligned; a one-click row
    gives an empty target). Vectorised: one lexsort of random keys within rows."""
    rows = histories.row_of_click()
    order = np.lexsort((rng.random(histories.nnz), rows))       # random order within each row
    rank = np.empty(histories.nnz, dtype=np.int64)
    rank[order] = histories.position_of_click()
    lengths = histories.lengths
    n_test = np.minimum(np.maximum(1, np.round(lengths * share)), lengths - 1).astype(np.int64)
    is_test = rank < n_test[rows]
    return histories.filter_clicks(~is_test), histories.filter_clicks(is_test)


def _dedupe_rows(s: Sessions) -> Sessions:
    """Keep the first occurrence of each item in each row (order preserved)."""
    rows = s.row_of_click()
    key = rows * np.int64(s.n_items) + s.items
    _, first = np.unique(key, return_index=True)
    keep = np.zeros(s.nnz, dtype=bool)
    keep[first] = True
    return s.filter_clicks(keep)
