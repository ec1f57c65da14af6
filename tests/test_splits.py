"""Evaluation splits (`sketchrec.data.splits`): deterministic, disjoint, covering; hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from sketchrec.data.sessions import Sessions
from sketchrec.data.splits import (history_future_split, identity_split, query_split, rated_holdout_split,
                                   user_holdout_split, whole_sessions_sample)

LABELS = np.repeat(np.array(["a", "b", "c", "d", "e"]), [4, 8, 1, 5, 2])


def test_identity_split_halves_identities_deterministically():
    train, test = identity_split(LABELS, seed=3)
    assert np.array_equal((train, test), identity_split(LABELS, seed=3))
    assert not (train & test).any() and (train | test).all()               # disjoint, covering
    assert len(np.unique(LABELS[test])) == 2 and len(np.unique(LABELS[train])) == 3
    assert not set(LABELS[test]) & set(LABELS[train])                      # no identity on both sides
    assert any(not np.array_equal(test, identity_split(LABELS, seed=s)[1]) for s in range(10))


def test_query_split_share_per_identity():
    query = query_split(LABELS, share=0.25, seed=0)
    assert np.array_equal(query, query_split(LABELS, share=0.25, seed=0))
    counts = {label: int(query[LABELS == label].sum()) for label in "abcde"}
    # floor(0.25 n), at least one: a 4 -> 1, b 8 -> 2, c 1 -> 1, d 5 -> 1, e 2 -> 1
    assert counts == {"a": 1, "b": 2, "c": 1, "d": 1, "e": 1}
    with pytest.raises(ValueError, match="share"):
        query_split(LABELS, share=1.5)


def histories() -> Sessions:
    rng = np.random.default_rng(0)
    rows = [list(rng.choice(30, size=n, replace=False)) for n in (2, 6, 10, 5, 3, 8)]
    s = Sessions.from_lists(rows, 30)
    return Sessions(s.indptr, s.items, 30, weights=rng.choice([1.0, 2.0, 4.0, 5.0], size=s.nnz).astype(np.float32))


def items_of(s: Sessions, r: int) -> set:
    return set(s.row(r).tolist())


def test_user_holdout_split_disjoint_covering_and_deterministic():
    h = histories()
    train, inputs, targets = user_holdout_split(h, seed=1)
    again = user_holdout_split(h, seed=1)
    assert all(np.array_equal(a.items, b.items) for a, b in zip((train, inputs, targets), again))
    evaluated = [r for r in range(len(h)) if h.lengths[r] >= 5]
    assert len(inputs) == len(targets) == len(evaluated) and len(train) == len(h)
    for row, r in enumerate(evaluated):
        assert not items_of(inputs, row) & items_of(targets, row)
        assert items_of(inputs, row) | items_of(targets, row) == items_of(h, r)
        assert items_of(train, row) == items_of(inputs, row)               # targets never train
    assert train.nnz == inputs.nnz + sum(int(h.lengths[r]) for r in range(len(h)) if r not in evaluated)


def test_rated_holdout_split_keeps_disliked_as_input_never_target():
    h = histories()
    train, inputs, targets, disliked = rated_holdout_split(h, seed=0, like=4.0)
    liked = h.filter_clicks(h.weights >= 4.0)
    evaluated = [r for r in range(len(h)) if liked.lengths[r] >= 5]
    assert len(inputs) == len(targets) == len(disliked) == len(evaluated)
    for row, r in enumerate(evaluated):
        assert items_of(inputs, row) | items_of(targets, row) == items_of(liked, r)
        assert not items_of(inputs, row) & items_of(targets, row)
        assert items_of(disliked, row) == set(h.row(r)[h.weights[h.indptr[r]:h.indptr[r + 1]] < 4.0].tolist())
        assert items_of(train, row) == items_of(inputs, row) | items_of(disliked, row)
    with pytest.raises(ValueError, match="weights"):
        rated_holdout_split(Sessions.from_lists([[1, 2]], 3), seed=0)


def test_history_future_split_by_position():
    rows = Sessions.from_lists([list(range(10)), list(range(3)), list(range(20))], 30)
    history, future = history_future_split(rows, share=0.7, horizon=2, min_length=10)
    assert history.to_lists() == [list(range(7)), list(range(14))]         # the short row is dropped
    assert future.to_lists() == [[7, 8], [14, 15]]


def test_whole_sessions_sample_reaches_the_pairs_with_whole_sessions():
    s = Sessions.from_lists([[0, 1, 2], [3, 4], [5, 6, 7, 8], [9, 10]], 11)   # 2, 1, 3, 1 pairs
    part = whole_sessions_sample(s, n_pairs=3, seed=0)
    assert np.array_equal(part.items, whole_sessions_sample(s, 3, seed=0).items)
    pairs = int(np.maximum(part.lengths - 1, 0).sum())
    assert pairs >= 3 and all(row in s.to_lists() for row in part.to_lists())
    assert whole_sessions_sample(s, n_pairs=100, seed=0).to_lists() == s.to_lists()
