"""Structural item alignment between two copies of the same sessions (sketchrec.data.align)."""

import numpy as np
import pytest

from sketchrec.data import registry
from sketchrec.data.align import (
    RAW_TEST, align_items, diginetica_categories, read_raw_test, refine_colours,
    session_multisets_agree,
)
from sketchrec.data.sessions import Sessions


def relabel_and_shuffle(s: Sessions, seed: int) -> tuple[Sessions, np.ndarray]:
    """Copy of `s` with items renamed by a random permutation, rows and clicks shuffled.

    Returns (copy, perm): item i of `s` is item perm[i] of the copy.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(s.n_items)
    rows = rng.permutation(len(s))
    t = s.take(rows)
    order = np.lexsort((rng.random(t.nnz), t.row_of_click()))   # shuffle inside rows
    return Sessions(t.indptr, perm[t.items[order]], s.n_items), perm


def random_sessions(n_sessions=400, n_items=300, seed=0) -> Sessions:
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    rows = [rng.choice(n_items, size=rng.integers(2, 9), p=popularity / popularity.sum())
            for _ in range(n_sessions)]
    return Sessions.from_lists(rows, n_items)


def twins(s: Sessions) -> set[int]:
    """Items with the same (session, clicks) neighbourhood as another item: interchangeable."""
    groups = {}
    for r, row in enumerate(s.to_lists()):
        for i in set(row):
            groups.setdefault(i, []).append((r, row.count(i)))
    by_nbhd = {}
    for i, nb in groups.items():
        by_nbhd.setdefault(tuple(nb), []).append(i)
    return {i for g in by_nbhd.values() if len(g) > 1 for i in g}


def test_recovers_random_permutation_without_wrong_pairs():
    s = random_sessions()
    copy, perm = relabel_and_shuffle(s, seed=1)
    a, b = align_items(s, copy)
    assert len(a) == len(np.unique(a)) and len(b) == len(np.unique(b))
    np.testing.assert_array_equal(b, perm[a])                  # every pair is right
    seen = set(np.flatnonzero(s.item_counts() > 0).tolist())
    tw = twins(s)
    assert not tw & set(a.tolist())                            # twins are never matched
    assert len(a) >= 0.9 * len(seen - tw)                      # and most of the rest is
    checked, agree = session_multisets_agree(s, copy, a, b)
    assert checked > 0 and agree == checked


def test_refinement_needs_neighbours_and_leaves_twins_alone():
    # items 0 and 1: one click in one session each, told apart only by their session-mates
    # (item 2 is clicked 3 times, item 3 twice); 4 and 5 always occur together: twins.
    s = Sessions.from_lists([[0, 2], [2, 2, 6], [1, 3], [3, 6], [4, 5, 6], [5, 4, 2], [6, 7]], 8)
    copy, perm = relabel_and_shuffle(s, seed=3)
    a, b = align_items(s, copy)
    np.testing.assert_array_equal(b, perm[a])
    assert set(a.tolist()) == {0, 1, 2, 3, 6, 7}
    col_a, col_b, rounds = refine_colours(s, copy)
    assert rounds >= 2 and col_a[4] == col_a[5] == col_b[perm[4]]


def test_consistency_check_catches_a_wrong_pair():
    s = random_sessions(seed=5)
    copy, perm = relabel_and_shuffle(s, seed=6)
    a, b = align_items(s, copy)
    bad = b.copy()
    bad[[0, 1]] = bad[[1, 0]]
    checked, agree = session_multisets_agree(s, copy, a, bad)
    assert agree < checked


def test_unused_items_and_empty_overlap():
    s = Sessions.from_lists([[0, 1, 1], [1, 2]], 5)            # items 3, 4 never occur
    copy, perm = relabel_and_shuffle(s, seed=0)
    a, b = align_items(s, copy)
    np.testing.assert_array_equal(b, perm[a])
    assert set(a.tolist()) == {0, 1, 2}


@pytest.mark.needs_dataset("diginetica", "diginetica-sample")
def test_diginetica_alignment_and_categories(shared):
    if not (shared / RAW_TEST).is_file():
        pytest.skip(f"{RAW_TEST} (optional file of 'diginetica') not staged under {shared}")
    b = registry.load("diginetica")
    raw, raw_ids = read_raw_test(shared)
    assert (len(raw), raw.nnz, raw.n_items) == (15_963, 76_821, 21_131)
    ours, theirs = align_items(b.test_sessions, raw)
    assert len(ours) >= 15_400                                   # measured: 15,487 of 21,131
    checked, agree = session_multisets_agree(b.test_sessions, raw, ours, theirs)
    assert checked >= 13_500 and agree == checked                # measured: 13,562

    category = diginetica_categories(b, shared)
    known = category >= 0
    assert known.sum() == len(ours)                              # every match has a category
    assert len(np.unique(category[known])) >= 720                # measured: 732
    assert known[b.train.items].mean() >= 0.60                   # train clicks: 60.5 %
    wide = diginetica_categories(b, shared, whole_classes=True)
    assert (wide >= 0).sum() >= 18_900                           # measured: 18,940
    assert np.array_equal(wide[known], category[known])
