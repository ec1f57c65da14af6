"""Interaction-log corruptions: drop, duplicate, add random events."""

import numpy as np
import pytest

from sketchrec.data.sessions import Sessions
from sketchrec.robustness.events import CORRUPTIONS, add_random_events, drop_events, duplicate_events


def sessions(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    rows = [list(rng.integers(0, 50, rng.integers(1, 8))) for _ in range(n)]
    s = Sessions.from_lists(rows, n_items=50)
    s.timestamps = np.arange(s.nnz, dtype=np.int64) * 10
    return s


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_zero_is_identity_and_seeded(name):
    s = sessions()
    assert CORRUPTIONS[name](s, 0.0) is s
    a, b = CORRUPTIONS[name](s, 0.3, seed=4), CORRUPTIONS[name](s, 0.3, seed=4)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.indptr, b.indptr)
    assert len(a) == len(s)
    with pytest.raises(ValueError):
        CORRUPTIONS[name](s, 1.5)


def test_drop_keeps_an_ordered_subsequence_and_first_clicks():
    s = sessions()
    d = drop_events(s, 0.4, seed=1)
    assert abs(1 - d.nnz / s.nnz - 0.4 * (1 - len(s) / s.nnz)) < 0.03
    assert (d.lengths >= 1).all()
    for r in range(0, len(s), 97):
        orig, new = list(s.row(r)), list(d.row(r))
        assert new[0] == orig[0]
        it = iter(orig)
        assert all(x in it for x in new)                    # a subsequence, order kept
    assert np.all(np.diff(d.timestamps[d.indptr[1]:d.indptr[2]]) > 0) or d.lengths[1] < 2


def test_duplicate_repeats_clicks_in_place():
    s = sessions()
    d = duplicate_events(s, 0.5, seed=2)
    assert abs(d.nnz / s.nnz - 1.5) < 0.05
    same_as_previous = (d.items[1:] == d.items[:-1]) & (d.position_of_click()[1:] > 0)
    assert same_as_previous.sum() >= d.nnz - s.nnz           # every added click repeats the one before it
    for r in range(0, len(s), 101):
        out = list(d.row(r))
        assert set(out) == set(s.row(r)) and len(out) >= s.lengths[r]
    assert len(d.timestamps) == d.nnz


def test_add_inserts_clicks_and_keeps_the_originals_in_order():
    s = sessions()
    a = add_random_events(s, 0.3, seed=3)
    assert abs(a.nnz / s.nnz - 1.3) < 0.05
    source_ts = a.timestamps                         # inserted clicks copy their predecessor's time
    assert np.all(np.diff(source_ts) >= 0)
    for r in range(0, len(s), 89):
        orig, new = list(s.row(r)), list(a.row(r))
        it = iter(new)
        assert all(x in it for x in orig)
    uniform = add_random_events(s, 0.3, seed=3, by_popularity=False)
    assert uniform.nnz == a.nnz
