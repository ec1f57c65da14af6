"""The synthetic session-log generator (sketchrec.data.synthetic): schema, order, determinism,
resumability and the fitted length / popularity distributions."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from sketchrec.data.synthetic import SCHEMA, ZipfItems, generate_sessions, session_lengths


def _read(files):
    t = pq.ParquetDataset([str(f) for f in files]).read()
    return {c: t.column(c).to_numpy() for c in t.column_names}


def test_log_layout_order_and_size(tmp_path):
    files = generate_sessions(tmp_path / "log", 200_000, 5_000, chunk_events=20_000, events_per_file=50_000)
    assert [f.name for f in files] == [f"part-0000{i}.parquet" for i in range(4)]
    meta = pq.ParquetFile(files[0]).metadata
    assert pq.ParquetFile(files[0]).schema_arrow == SCHEMA and meta.num_row_groups == 3
    log = _read(files)
    s, t = log["session_id"], log["timestamp"]
    assert abs(len(s) - 200_000) < 5_000
    assert np.all(np.diff(s) >= 0)                                   # contiguous sessions, in order
    same = np.diff(s) == 0
    assert np.all(np.diff(t)[same] >= 0)                             # time order inside a session
    starts = t[np.r_[0, np.flatnonzero(~same) + 1]]
    assert np.all(np.diff(starts) >= 0)                              # sessions start in time order
    lengths = np.bincount(s - s.min())
    assert lengths.min() >= 2 and abs(lengths.mean() - 4.854) < 0.1
    assert 0 <= log["item_id"].min() and log["item_id"].max() < 5_000
    # no row group splits a session: a row group's last session is not the next one's first
    f = pq.ParquetFile(files[0])
    firsts = [f.read_row_group(g, columns=["session_id"]).column(0)[0].as_py() for g in range(3)]
    lasts = [f.read_row_group(g, columns=["session_id"]).column(0)[-1].as_py() for g in range(3)]
    assert all(lasts[g] < firsts[g + 1] for g in range(2))


def test_deterministic_and_resumable(tmp_path):
    a = generate_sessions(tmp_path / "a", 60_000, 1_000, seed=3, chunk_events=10_000, events_per_file=20_000)
    b = generate_sessions(tmp_path / "b", 60_000, 1_000, seed=3, chunk_events=10_000, events_per_file=20_000)
    first = _read(a)
    assert all(np.array_equal(first[c], _read(b)[c]) for c in first)
    other = _read(generate_sessions(tmp_path / "c", 60_000, 1_000, seed=4, chunk_events=10_000,
                                    events_per_file=20_000))
    assert not np.array_equal(first["item_id"][:1000], other["item_id"][:1000])
    # a killed run: part 1 truncated; the next call rewrites only that part
    a[1].write_bytes(a[1].read_bytes()[:100])
    mtime0 = a[0].stat().st_mtime_ns
    generate_sessions(tmp_path / "a", 60_000, 1_000, seed=3, chunk_events=10_000, events_per_file=20_000)
    assert a[0].stat().st_mtime_ns == mtime0
    assert all(np.array_equal(first[c], _read(a)[c]) for c in first)
    with pytest.raises(ValueError, match="other settings"):
        generate_sessions(tmp_path / "a", 60_000, 1_000, seed=5, chunk_events=10_000, events_per_file=20_000)


def test_distributions():
    rng = np.random.default_rng(0)
    lengths = session_lengths(200_000, rng)
    assert lengths.min() == 2 and abs(lengths.mean() - 4.854) < 0.05
    z = ZipfItems(10_000, 1.0, seed=0)
    counts = np.bincount(z.ranks(500_000, rng), minlength=10_000)
    # P(rank 0) / P(rank 9) = 10 for exponent 1
    assert 8 < counts[0] / counts[9] < 12
    with pytest.raises(ValueError, match="mean_length"):
        session_lengths(3, rng, mean_length=1.5)
    with pytest.raises(ValueError, match="n_items"):
        ZipfItems(0)
