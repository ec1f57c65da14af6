"""Evaluation splits, one function per split; every one seeded and deterministic.

- `identity_split`: half of the identities (classes) train, the other half test (retrieval of
  identities never seen in training).
- `query_split`: within each identity, a share of its rows are queries, the rest its gallery.
- `user_holdout_split`: the top-k protocol, per user a seeded share of items held out; users too
  short to evaluate still train.
- `rated_holdout_split`: the same on ratings: liked items (weight >= `like`) are held out and
  input, disliked items an extra input modality that is never a target.
- `history_future_split`: each row cut in time order into a known history and the next items.
- `whole_sessions_sample`: a seeded set of whole sessions giving a number of (prefix, next item)
  pairs (timed training runs on real, uncut sessions).

Session benchmarks' own splits (SR-GNN's by time, the last share of training sessions for
validation) are `sketchrec.data.sessions.time_split` and `validation_split`.
"""

from __future__ import annotations

import numpy as np

from sketchrec.data.sessions import Sessions, concat, merge_rows, user_holdout

__all__ = ["history_future_split", "identity_split", "query_split", "rated_holdout_split",
           "user_holdout_split", "whole_sessions_sample"]


def identity_split(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train mask, test mask) over rows: a seeded half of the distinct labels (rounded down)
    are test identities, the others train. labels: (n,) any sortable dtype."""
    ids = np.unique(labels)
    perm = np.random.default_rng(seed).permutation(ids)
    test = np.isin(labels, np.sort(perm[: len(ids) // 2]))
    return ~test, test


def query_split(labels: np.ndarray, share: float = 0.25, seed: int = 0) -> np.ndarray:
    """(n,) bool mask of query rows: floor(`share` x rows) of each label's rows, at least one,
    chosen at random (seeded); the other rows are the gallery. Vectorised: one stable sort."""
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share}")
    rng = np.random.default_rng(seed)
    query = np.zeros(len(labels), dtype=bool)
    order = rng.permutation(len(labels))
    rank = np.empty(len(labels), dtype=np.int64)
    sorted_rows = order[np.argsort(labels[order], kind="stable")]     # random order within a label
    _, starts, counts = np.unique(labels[sorted_rows], return_index=True, return_counts=True)
    rank[sorted_rows] = np.arange(len(labels)) - np.repeat(starts, counts)
    n_query = np.maximum(1, np.floor(counts * share)).astype(np.int64)
    query[sorted_rows] = rank[sorted_rows] < np.repeat(n_query, counts)
    return query


def user_holdout_split(histories: Sessions, seed: int, test_share: float = 0.2,
                       min_items: int = 5) -> tuple[Sessions, Sessions, Sessions]:
    """Per-user holdout (`sessions.user_holdout`): (train, inputs, targets). Users with at least
    `min_items` distinct items are evaluated: their inputs train and their targets are held out;
    the others train whole. train's first rows are `inputs`, row for row."""
    inputs, targets, kept = user_holdout(histories, test_share=test_share, min_items=min_items, seed=seed)
    others = histories.take(np.setdiff1d(np.arange(len(histories)), kept))
    return concat([inputs, others]), inputs, targets


def rated_holdout_split(rows: Sessions, seed: int, like: float = 4.0, test_share: float = 0.2,
                        min_items: int = 5) -> tuple[Sessions, Sessions, Sessions, Sessions]:
    """Per-user holdout of liked items: (train, inputs, targets, disliked).

    rows: one row per user with click weights (ratings). Liked = weight >= `like`. Users with at
    least `min_items` distinct liked items are evaluated: a seeded `test_share` of their liked
    items are the targets, the rest the inputs; `disliked` are their items below `like`, all
    known at test time (never targets). train: the evaluated users' inputs and disliked items
    (first rows, aligned with `inputs`), then every other user's whole row.
    """
    if rows.weights is None:
        raise ValueError("rows need click weights (ratings) to tell liked from disliked items")
    liked = rows.filter_clicks(rows.weights >= like)
    disliked = rows.filter_clicks(rows.weights < like)
    inputs, targets, kept = user_holdout(liked, test_share=test_share, min_items=min_items, seed=seed)
    others = np.setdiff1d(np.arange(len(rows)), kept)
    train = concat([merge_rows([inputs, disliked.take(kept)]), rows.take(others)])
    return train, inputs, targets, disliked.take(kept)


def history_future_split(rows: Sessions, share: float = 0.7, horizon: int = 10,
                         min_length: int = 10) -> tuple[Sessions, Sessions]:
    """(history, future) of every row with at least `min_length` clicks: the first
    floor(`share` x length) clicks in row order, and the `horizon` clicks after them."""
    rows = rows.take(np.flatnonzero(rows.lengths >= min_length))
    split_at = np.floor(rows.lengths * share).astype(np.int64)
    pos = rows.position_of_click()
    own = np.repeat(split_at, rows.lengths)
    return rows.filter_clicks(pos < own), rows.filter_clicks((pos >= own) & (pos < own + horizon))


def whole_sessions_sample(sessions: Sessions, n_pairs: int, seed: int) -> Sessions:
    """A seeded random set of whole sessions, in their original order, whose (prefix, next item)
    pairs just reach `n_pairs` (all sessions when they have fewer)."""
    order = np.random.default_rng(seed).permutation(len(sessions))
    pairs = np.cumsum(np.maximum(sessions.lengths[order] - 1, 0))
    return sessions.take(np.sort(order[:int(np.searchsorted(pairs, n_pairs)) + 1]))
