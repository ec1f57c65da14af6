"""Sessions container, prefix expansion, SR-GNN filters, time and user splits."""

import numpy as np
import pytest

from sketchrec.data import (Sessions, concat, expand_prefixes, srgnn_filter, time_split,
                            user_holdout, validation_split)
from sketchrec.data.sessions import session_end_times


def test_csr_basics_and_take():
    s = Sessions.from_lists([[1, 2, 3], [4], [], [5, 1]], n_items=6)
    assert len(s) == 4 and s.nnz == 6 and s.lengths.tolist() == [3, 1, 0, 2]
    assert s.take([3, 0]).to_lists() == [[5, 1], [1, 2, 3]]
    assert s.take(np.array([True, False, False, True])).to_lists() == [[1, 2, 3], [5, 1]]
    assert s.position_of_click().tolist() == [0, 1, 2, 0, 0, 1]
    assert s.take([0, 1, 3]).last_items().tolist() == [3, 4, 1]
    with pytest.raises(ValueError, match="non-empty"):
        s.last_items()
    with pytest.raises(ValueError, match="n_items"):
        Sessions.from_lists([[7]], n_items=3)
    m = Sessions.from_lists([[1, 1, 2]], n_items=3).to_csr()
    assert m.toarray().tolist() == [[0, 1, 1]]
    assert concat([s.take([0]), s.take([3])]).to_lists() == [[1, 2, 3], [5, 1]]


def test_expand_prefixes_longest_first():
    prefixes, targets = expand_prefixes(Sessions.from_lists([[1, 2, 3, 4], [5, 6], [7]], n_items=8))
    assert prefixes.to_lists() == [[1, 2, 3], [1, 2], [1], [5]]
    assert targets.tolist() == [4, 3, 2, 6]
    prefixes, targets = expand_prefixes(Sessions.from_lists([[1, 2, 3, 4]], n_items=8), min_prefix=2)
    assert prefixes.to_lists() == [[1, 2, 3], [1, 2]] and targets.tolist() == [4, 3]


def test_srgnn_filter_order_of_steps():
    # item 9 appears 5 times, item 8 four times, 7 once; session [7] (length 1) goes first,
    # so its click does not count towards support.
    rows = [[9, 8], [9, 8], [9, 8], [9, 8, 7], [9, 1], [7]]
    s = srgnn_filter(Sessions.from_lists(rows, n_items=10), min_item_support=5)
    # after dropping 8 (4 clicks), 7 (1 click in kept sessions) and 1: only single 9s remain
    assert len(s) == 0
    s = srgnn_filter(Sessions.from_lists(rows, n_items=10), min_item_support=4)
    assert s.to_lists() == [[9, 8], [9, 8], [9, 8], [9, 8]]


def test_time_split_and_validation_split():
    day = 86400
    s = Sessions.from_lists([[1, 2], [2, 3], [3, 4], [1, 5]], n_items=6)
    s.timestamps = np.array([0, 1, day, day + 1, 20 * day, 20 * day + 5, 25 * day, 25 * day + 1])
    train, test = time_split(s, test_days=7)
    assert train.to_lists() == [[1, 2], [2, 3]]
    # test sessions: [3, 4] and [1, 5]; items 4 and 5 never in train -> dropped -> too short
    assert len(test) == 0
    assert session_end_times(s).tolist() == [1, day + 1, 20 * day + 5, 25 * day + 1]
    fit, valid = validation_split(s, share=0.25)
    assert fit.to_lists() == [[1, 2], [2, 3], [3, 4]] and valid.to_lists() == [[1, 5]]


def test_user_holdout_is_seeded_disjoint_and_filters():
    rng = np.random.default_rng(0)
    rows = [list(rng.choice(50, size=n, replace=False)) for n in (2, 10, 25, 6, 4)]
    rows[1] = rows[1] + rows[1][:3]  # duplicates are collapsed before splitting
    h = Sessions.from_lists(rows, n_items=50)
    inputs, targets, kept = user_holdout(h, test_share=0.2, min_items=5, seed=7)
    assert kept.tolist() == [1, 2, 3]
    assert targets.lengths.tolist() == [2, 5, 1]  # round(0.2·n), at least 1
    for r in range(len(kept)):
        a, b = set(inputs.row(r).tolist()), set(targets.row(r).tolist())
        assert not a & b and a | b == set(rows[kept[r]])
    again = user_holdout(h, test_share=0.2, min_items=5, seed=7)
    assert again[1].to_lists() == targets.to_lists()
    other = user_holdout(h, test_share=0.2, min_items=5, seed=8)
    assert other[1].to_lists() != targets.to_lists()


def test_to_csr_leaves_click_order_alone():
    s = Sessions.from_lists([[3, 1, 2, 1]], n_items=4)
    s.items.setflags(write=False)  # loaders may hand out read-only arrays
    m = s.to_csr(binary=False)
    assert m.toarray().tolist() == [[0, 2, 1, 1]]
    assert s.to_lists() == [[3, 1, 2, 1]]


def test_merge_rows_keeps_row_alignment_and_order():
    from sketchrec.data.sessions import merge_rows
    a = Sessions.from_lists([[1, 2], [], [3]], n_items=10)
    b = Sessions.from_lists([[4], [5, 6], []], n_items=10)
    a.weights = np.array([5, 5, 4], np.float32)
    b.weights = np.array([1, 2, 1], np.float32)
    m = merge_rows([a, b])
    assert m.to_lists() == [[1, 2, 4], [5, 6], [3]]
    assert m.weights.tolist() == [5, 5, 1, 2, 1, 4]
    with pytest.raises(ValueError, match="different row counts"):
        merge_rows([a, Sessions.from_lists([[1]], n_items=10)])
