"""Top-k benchmarks with fixed splits (Gowalla, ML-1M, Last.fm): loading, per-user holdout."""

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sketchrec.data import registry
from sketchrec.data.loaders.topk import TopkBenchmark, holdout_per_row, load_topk_benchmark, union_rows
from sketchrec.data.sessions import Sessions


def _write(path, lines):
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def test_files_become_per_user_rows(tmp_path):
    d = tmp_path / "topk-benchmarks" / "toy"
    d.mkdir(parents=True)
    _write(d / "train.txt.gz", ["0 1 2 3", "2 0 4"])        # user 1 has no training line
    _write(d / "valid.txt.gz", ["0 5", "1 2"])
    _write(d / "test.txt.gz", ["0 6", "2 1 3"])
    paths = {f"topk-benchmarks/toy/{p}.txt.gz": d / f"{p}.txt.gz" for p in ("train", "valid", "test")}
    b = load_topk_benchmark(paths, name="toy")
    assert (b.n_users, b.n_items) == (3, 7)
    assert b.train.to_lists() == [[1, 2, 3], [], [0, 4]]
    assert b.fit_rows().to_lists() == [[1, 2, 3, 5], [2], [0, 4]]
    inputs, targets = b.evaluation()                       # users 0 and 2 have test items
    assert inputs.to_lists() == [[1, 2, 3, 5], [0, 4]]
    assert targets.to_lists() == [[6], [1, 3]]
    v = b.validation()
    assert v.valid is None and v.test.to_lists() == [[5], [2], []]


def test_union_refuses_other_users():
    with pytest.raises(ValueError, match="not the same users"):
        union_rows(Sessions.from_lists([[1]], n_items=3), Sessions.from_lists([[1], [2]], n_items=3))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=30), min_size=1, max_size=20),
       st.floats(0.05, 0.95), st.integers(0, 10))
def test_holdout_per_row_partitions_every_row(rows, share, seed):
    s = Sessions.from_lists(rows, n_items=41)
    keep, held = holdout_per_row(s, share, seed)
    for row, k, h in zip(rows, keep.to_lists(), held.to_lists()):
        assert sorted(k + h) == sorted(row)            # a partition of the row
        if len(row) >= 2:
            assert 1 <= len(h) <= len(row) - 1                      # never empty, never all
            assert abs(len(h) - share * len(row)) <= 0.5 + 1e-9 or len(h) in (1, len(row) - 1)
        else:
            assert len(h) == 0
    again = holdout_per_row(s, share, seed)[1]
    assert np.array_equal(again.items, held.items)                  # seeded


def test_holdout_refuses_bad_share():
    with pytest.raises(ValueError, match="share"):
        holdout_per_row(Sessions.from_lists([[1, 2]], n_items=3), 1.0, 0)


@pytest.mark.needs_dataset("gowalla", "ml-1m", "lastfm")
@pytest.mark.parametrize("name", ["gowalla", "ml-1m", "lastfm"])
def test_counts_match_the_readme(name):
    b = registry.load(name)
    c = registry.get_spec(name).counts
    assert (b.n_users, b.n_items) == (c["users"], c["items"])
    assert (b.train.nnz, b.test.nnz) == (c["train"], c["test"])
    assert (b.valid is None) == ("valid" not in c)
    if b.valid is not None:
        assert b.valid.nnz == c["valid"]
        # no training pair is also a validation pair or a test pair
        for other in (b.valid, b.test):
            pairs = lambda s: set(zip(np.repeat(np.arange(len(s)), np.diff(s.indptr)).tolist(), s.items.tolist()))
            assert not pairs(b.train) & pairs(other)
