"""DLSH coder, sketches, streaming sketches and readout (EMDE building blocks)."""

import numpy as np
import pytest

from sketchrec.data import Sessions
from sketchrec.sketch import DLSHCoder, StreamingSketch, concat_modalities, readout, sketch_histories


def vectors(n=2000, d=16, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("bias", ["quantile", "median"])
def test_codes_shape_range_and_every_cut_splits_the_data(bias):
    v = vectors()
    coder = DLSHCoder(n_sketches=6, n_bits=5, bias=bias, seed=1).fit(v)
    codes = coder.encode(v)
    assert codes.shape == (2000, 6) and codes.dtype == np.int32
    assert codes.min() >= 0 and codes.max() < 32
    z = (v - coder.mean_) * coder.scale_
    above = (z @ coder.directions_ > coder.thresholds_).mean(axis=0)
    assert np.all((above > 0) & (above < 1))          # both sides of every cut hold items
    if bias == "median":
        np.testing.assert_allclose(above, 0.5, atol=1e-3)
    np.testing.assert_array_equal(codes, DLSHCoder(6, 5, bias, seed=1).fit_encode(v))   # seeded
    again = DLSHCoder.from_state(coder.state())
    np.testing.assert_array_equal(again.encode(v[:10]), codes[:10])


def test_density_awareness_and_locality():
    v = vectors(4000, 8)
    codes = DLSHCoder(n_sketches=8, n_bits=6, seed=0).fit_encode(v)
    near = v + 0.01 * vectors(4000, 8, seed=1)
    far = vectors(4000, 8, seed=2)
    coder = DLSHCoder(n_sketches=8, n_bits=6, seed=0).fit(v)
    same_near = (coder.encode(near) == codes).mean()
    same_far = (coder.encode(far) == codes).mean()
    assert same_near > 0.9 and same_far < 0.2  # random pairs share a bucket only by chance


def test_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        DLSHCoder().encode(vectors(5))
    with pytest.raises(ValueError, match="bias"):
        DLSHCoder(bias="mean").fit(vectors())
    coder = DLSHCoder(2, 3).fit(vectors())
    with pytest.raises(ValueError, match=r"\(n, 16\)"):
        coder.encode(np.zeros((3, 4), np.float32))


def test_sketch_by_hand():
    # 3 items, depth 2, width 4; item codes: 0 -> (1, 3), 1 -> (1, 0), 2 -> (2, 0)
    codes = np.array([[1, 3], [1, 0], [2, 0]], dtype=np.int32)
    h = Sessions.from_lists([[0, 1, 2], [2], []], n_items=3)
    s = sketch_histories(h, codes, 4)
    third = 1 / 3
    np.testing.assert_allclose(s[0], [[0, 2 * third, third, 0], [2 * third, 0, 0, third]], rtol=1e-6)
    np.testing.assert_allclose(s[1], [[0, 0, 1, 0], [1, 0, 0, 0]])
    assert not s[2].any()
    np.testing.assert_allclose(sketch_histories(h, codes, 4, sparse=True).toarray(), s.reshape(3, -1))
    # decay 0.5: weights 0.25, 0.5, 1 (last item heaviest), normalised by 1.75
    d = sketch_histories(h.take([0]), codes, 4, decay=0.5)[0]
    np.testing.assert_allclose(d[0], [0, 0.75 / 1.75, 1 / 1.75, 0], rtol=1e-6)
    both = concat_modalities([s, sketch_histories(h, codes[:, :1], 4)])
    assert both.shape == (3, 12)


def test_streaming_equals_batch_with_decay():
    codes = DLSHCoder(4, 4, seed=0).fit_encode(vectors(100, 8))
    items = [5, 17, 5, 42, 99]
    stream = StreamingSketch(codes, 16, decay=0.8)
    for i in items:
        stream.update(i)
    batch = sketch_histories(Sessions.from_lists([items], n_items=100), codes, 16, decay=0.8)[0]
    np.testing.assert_allclose(stream.value(), batch, rtol=1e-5)
    assert not StreamingSketch(codes, 16).value().any()


def test_readout_is_geometric_mean_over_depth():
    codes = np.array([[0, 1], [1, 1], [1, 0]], dtype=np.int32)
    p = np.array([[[0.5, 0.5], [0.2, 0.8]]], dtype=np.float32)          # (B=1, N=2, width=2)
    scores = readout(p, codes)
    expected = np.log([np.sqrt(0.5 * 0.8), np.sqrt(0.5 * 0.8), np.sqrt(0.5 * 0.2)])
    np.testing.assert_allclose(scores[0], expected, rtol=1e-5)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 32, size=(500, 6)).astype(np.int32)
    p = rng.random((7, 6, 32)).astype(np.float32)
    ref = np.log(p)[np.arange(7)[:, None, None], np.arange(6)[None, None, :], codes[None]].mean(axis=2)
    np.testing.assert_allclose(readout(p, codes), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("depth", [1, 2, 5, 6])
def test_readout_pairs_equals_direct(depth):
    from sketchrec.sketch import Readout
    rng = np.random.default_rng(depth)
    codes = rng.integers(0, 16, (700, depth))
    log_p = np.log(rng.dirichlet(np.ones(16), size=(9, depth))).astype(np.float32)
    direct = Readout(codes, 16, method="direct").from_log(log_p)
    pairs = Readout(codes, 16, method="pairs").from_log(log_p)
    np.testing.assert_allclose(pairs, direct, rtol=1e-5, atol=1e-5)
    assert Readout(codes, 16).method == "pairs"          # 700 items >= 2 * 16²
    assert Readout(codes[:100], 16).method == "direct"


@pytest.mark.parametrize("method", ["direct", "pairs"])
def test_readout_topk_equals_scores_then_topk(method):
    from sketchrec.topk import topk
    from sketchrec.sketch.sketches import Readout
    rng = np.random.default_rng(0)
    depth, width, n_items = 5, 8, 300
    codes = rng.integers(0, width, (n_items, depth))
    codes[:20] = codes[20:40]                      # identical codes: tied scores
    log_p = np.log(rng.dirichlet(np.ones(width), (6, depth))).astype(np.float32)
    r = Readout(codes, width, method=method)
    bias = rng.normal(size=n_items).astype(np.float32)
    exclude = (np.array([0, 2, 2, 5, 5, 5, 6]), np.array([7, 3, 0, 299, 0, 150]))
    for kw in ({}, {"scale": 5.0, "bias": bias}):
        want = topk(r.from_log(log_p, **kw), 12, exclude=exclude)
        got = r.topk(log_p, 12, exclude=exclude, **kw)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    with pytest.raises(ValueError, match="bias"):
        r.topk(log_p, 3, bias=bias[:10])


@pytest.mark.parametrize("method", ["direct", "pairs"])
@pytest.mark.parametrize("depth", [1, 4, 5])
def test_readout_batch_path_gives_the_row_path_floats(method, depth):
    """Batch-first top-k (users in the SIMD lanes) against the row kernel: the same items and the
    same float scores, over blocks of users that do not fill the lanes, tied codes, -inf
    log-probabilities, exclusions with repeats, and rows whose k + exclusions exceed the items."""
    from sketchrec.sketch.sketches import _LANES, Readout
    rng = np.random.default_rng(depth)
    width, n_items, n_rows = 8, 90, 2 * _LANES + 7
    codes = rng.integers(0, width, (n_items, depth))
    codes[:10] = codes[10:20]
    log_p = np.log(rng.dirichlet(np.ones(width), (n_rows, depth))).astype(np.float32)
    log_p[3, 0, :3] = -np.inf
    counts = rng.integers(0, 9, n_rows)
    counts[5] = 85                                      # k + exclusions > items: the row kernel's case
    indptr = np.concatenate([[0], np.cumsum(counts)])
    cols = rng.integers(0, n_items, indptr[-1])
    bias = rng.normal(size=n_items).astype(np.float32)
    r = Readout(codes, width, method=method)
    for kw in ({}, {"scale": 3.0, "bias": bias}, {"exclude": (indptr, cols)}):
        for k in (1, 10, n_items):
            r.batch_rows = 10 ** 9
            want = r.topk(log_p, k, **kw)
            r.batch_rows = 1
            got = r.topk(log_p, k, **kw)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    log_p[40, 0, codes[7, 0]] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        r.topk(log_p, 5)


def test_min_readout_by_hand():
    from sketchrec.sketch.sketches import Readout
    codes = np.array([[0, 1], [1, 1], [1, 0]])                    # 3 items, depth 2, width 2
    log_p = np.log(np.array([[[0.9, 0.1], [0.3, 0.7]]], np.float32))
    got = Readout(codes, 2, method="direct").from_log(log_p, reduce="min")
    np.testing.assert_allclose(np.exp(got), [[0.7, 0.1, 0.1]], rtol=1e-6)   # min(0.9,0.7), min(0.1,0.7), min(0.1,0.3)
    with pytest.raises(ValueError, match="scale or bias"):
        Readout(codes, 2).from_log(log_p, reduce="min", scale=2.0)
    with pytest.raises(ValueError, match="reduce"):
        Readout(codes, 2).from_log(log_p, reduce="max")
