import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sketchrec.eval import topk, topk_chunked


def ref_topk(scores, k, exclude=None):
    """Reference: full stable argsort on -scores (ties -> lower index first)."""
    s = np.array(scores, dtype=np.float64)
    if exclude is not None:
        indptr, indices = exclude
        for r in range(s.shape[0]):
            s[r, indices[indptr[r]:indptr[r + 1]]] = -np.inf
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, axis=1).astype(np.float32)


def test_hand_computed():
    s = np.array([[0.1, 0.5, 0.3, 0.5],
                  [4.0, 3.0, 2.0, 1.0]])
    items, values = topk(s, 2)
    # row 0: 0.5 at items 1 and 3 (tie -> lower index first); row 1: descending
    np.testing.assert_array_equal(items, [[1, 3], [0, 1]])
    np.testing.assert_array_equal(values, np.array([[0.5, 0.5], [4.0, 3.0]], np.float32))
    assert items.dtype == np.int64 and values.dtype == np.float32


def test_tie_order_by_index_at_boundary():
    # k=3: 5 is first; then three 3's tie for two slots -> items 2 and 3 (not 4)
    s = np.array([[5.0, 1.0, 3.0, 3.0, 3.0, 0.0]])
    items, values = topk(s, 3)
    np.testing.assert_array_equal(items, [[0, 2, 3]])
    np.testing.assert_array_equal(values, [[5.0, 3.0, 3.0]])
    # all equal -> first k indices
    items, _ = topk(np.zeros((2, 7)), 4)
    np.testing.assert_array_equal(items, [[0, 1, 2, 3]] * 2)


def test_k_larger_than_n_and_single_item_and_k0():
    s = np.array([[0.2, 0.9, 0.1]])
    items, values = topk(s, 10)
    assert items.shape == (1, 3)
    np.testing.assert_array_equal(items, [[1, 0, 2]])
    items, values = topk(np.array([[7.0]]), 5)
    np.testing.assert_array_equal(items, [[0]])
    np.testing.assert_array_equal(values, [[7.0]])
    items, values = topk(s, 0)
    assert items.shape == (1, 0) and values.shape == (1, 0)


def test_exclude_does_not_mutate_and_pads_with_minus_inf():
    s = np.array([[0.9, 0.8, 0.7],
                  [0.1, 0.2, 0.3]])
    before = s.copy()
    # row 0 excludes items 0 and 1; row 1 excludes everything
    exclude = (np.array([0, 2, 5]), np.array([0, 1, 0, 1, 2]))
    items, values = topk(s, 2, exclude=exclude)
    np.testing.assert_array_equal(s, before)
    np.testing.assert_array_equal(items, [[2, 0], [0, 1]])
    np.testing.assert_array_equal(values, np.array([[0.7, -np.inf], [-np.inf, -np.inf]], np.float32))


@pytest.mark.parametrize("k", [1, 3, 10, 49, 50, 80])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32])
def test_matches_full_argsort_with_many_ties(k, dtype):
    rng = np.random.default_rng(k)
    s = rng.integers(0, 5, size=(64, 50)).astype(dtype)  # heavy ties
    items, values = topk(s, k)
    ref_items, ref_values = ref_topk(s, k)
    np.testing.assert_array_equal(items, ref_items)
    np.testing.assert_array_equal(values, ref_values)


def test_matches_reference_with_exclude_random():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, size=(40, 30)).astype(np.float32)
    counts = rng.integers(0, 6, size=40)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.concatenate([rng.choice(30, c, replace=False) for c in counts])
    for k in (1, 5, 30):
        items, values = topk(s, k, exclude=(indptr, indices))
        ref_items, ref_values = ref_topk(s, k, (indptr, indices))
        np.testing.assert_array_equal(items, ref_items)
        np.testing.assert_array_equal(values, ref_values)


def test_chunked_equals_topk():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 6, size=(103, 40)).astype(np.float64)
    counts = rng.integers(0, 4, size=103)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.concatenate([rng.choice(40, c, replace=False) for c in counts])
    exp_i, exp_v = topk(s, 7, exclude=(indptr, indices))
    for chunk in (1, 10, 103, 500):
        it, va = topk_chunked(lambda a, b: s[a:b], 103, 7, chunk_rows=chunk,
                              exclude=(indptr, indices), progress=(chunk == 10))
        np.testing.assert_array_equal(it, exp_i)
        np.testing.assert_array_equal(va, exp_v)
    it, va = topk_chunked(lambda a, b: s[a:b], 0, 7)
    assert it.shape == (0, 0)


def test_torch_path():
    rng = np.random.default_rng(2)
    s = rng.standard_normal((20, 15))  # continuous -> no ties, order is defined
    t = torch.from_numpy(s)
    ex = (np.array([0] + [1] * 20), np.array([3]))  # row 0 excludes item 3
    it, va = topk(t, 5, exclude=ex)
    ref_i, ref_v = ref_topk(s, 5, ex)
    assert isinstance(it, np.ndarray) and it.dtype == np.int64 and va.dtype == np.float32
    np.testing.assert_array_equal(it, ref_i)
    np.testing.assert_allclose(va, ref_v)
    assert t[0, 3].item() == s[0, 3]  # not mutated
    it2, _ = topk_chunked(lambda a, b: t[a:b], 20, 5, chunk_rows=6, exclude=ex)
    np.testing.assert_array_equal(it2, ref_i)


def test_errors_name_argument():
    with pytest.raises(ValueError, match="scores"):
        topk(np.zeros(5), 2)
    with pytest.raises(ValueError, match="k"):
        topk(np.zeros((2, 5)), -1)
    with pytest.raises(ValueError, match="NaN"):
        topk(np.array([[0.0, np.nan]]), 1)
    with pytest.raises(ValueError, match="exclude indptr"):
        topk(np.zeros((2, 5)), 1, exclude=(np.array([0, 1]), np.array([0])))
    with pytest.raises(ValueError, match="exclude indices"):
        topk(np.zeros((1, 5)), 1, exclude=(np.array([0, 1]), np.array([9])))
    with pytest.raises(ValueError, match="score_fn"):
        topk_chunked(lambda a, b: np.zeros((1, 3)), 5, 2, chunk_rows=2)
    with pytest.raises(ValueError, match="chunk_rows"):
        topk_chunked(lambda a, b: np.zeros((b - a, 3)), 5, 2, chunk_rows=0)


def test_kernel_with_unsorted_duplicate_excludes_infinities_and_nan():
    """The one-pass kernel: exclusions in any order (repeats allowed), -inf / +inf scores, NaN refused."""
    rng = np.random.default_rng(3)
    s = rng.integers(0, 3, size=(25, 60)).astype(np.float32)
    s[rng.random(s.shape) < 0.1] = -np.inf
    s[rng.random(s.shape) < 0.02] = np.inf
    counts = rng.integers(0, 8, size=25)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = rng.integers(0, 60, size=int(counts.sum()))          # unsorted, with repeats
    for k in (1, 7, 60):
        items, values = topk(s, k, exclude=(indptr, indices))
        ref_items, ref_values = ref_topk(s, k, (indptr, indices))
        np.testing.assert_array_equal(items, ref_items)
        np.testing.assert_array_equal(values, ref_values)
    s[4, 9] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        topk(s, 3)


@given(n=st.integers(1, 700), k=st.integers(1, 40), levels=st.integers(1, 50),
       n_excluded=st.integers(0, 30), nan_at=st.one_of(st.none(), st.integers(0, 699)),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=300, deadline=None)
def test_block_skipping_matches_reference(n, k, levels, n_excluded, nan_at, seed):
    """Rows longer than the kernel's skip block: ties across block edges, exclusions inside skipped
    blocks and a NaN anywhere (including after the heap is full) give the reference's answer."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, levels, size=(2, n)).astype(np.float32)
    s[1] = np.sort(s[1])                  # ascending: every block holds a candidate
    indices = np.concatenate([rng.choice(n, min(n_excluded, n), replace=False), rng.choice(n, min(n_excluded, n))])
    indptr = np.array([0, len(indices) // 2, len(indices)])
    if nan_at is not None and nan_at < n:
        s[0, nan_at] = np.nan
        if not np.isin(nan_at, indices[:indptr[1]]):
            with pytest.raises(ValueError, match="NaN"):
                topk(s, k, exclude=(indptr, indices))
            return
    items, values = topk(s, k, exclude=(indptr, indices))
    s[~np.isfinite(s) & np.isnan(s)] = -np.inf      # an excluded NaN is excluded; the reference cannot sort NaN
    ref_items, ref_values = ref_topk(s, k, (indptr, indices))
    np.testing.assert_array_equal(items, ref_items)
    np.testing.assert_array_equal(values, ref_values)
