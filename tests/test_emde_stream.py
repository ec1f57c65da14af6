"""EMDE trained from a log read in buffers (sketchrec.data.stream, sketchrec.graph.streaming):
the stream's scan and order checks, streaming Cleora equal to the in-memory one, the compact
prefix pairs equal to expand_prefixes, and a streaming fit that learns what the in-memory fit learns."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sketchrec.data.sessions import Sessions, expand_prefixes, gather_prefixes, prefix_pairs
from sketchrec.data.stream import SessionStream, write_session_log
from sketchrec.eval.protocols import evaluate_next_item
from sketchrec.models.emde import EMDE, row_item_embeddings


def random_sessions(n=300, n_items=60, seed=0):
    rng = np.random.default_rng(seed)
    return Sessions.from_lists([list(rng.integers(0, n_items, rng.integers(2, 9))) for _ in range(n)], n_items)


def cycle_sessions(n_items=40, n_sessions=600, length=6, seed=0):
    starts = np.random.default_rng(seed).integers(0, n_items, n_sessions)
    return Sessions.from_lists(((starts[:, None] + np.arange(length)) % n_items).tolist(), n_items)


def _write(path, groups):
    """groups: list of (session ids, item ids) row groups of one file."""
    schema = pa.schema([("session_id", pa.int64()), ("item_id", pa.int64())])
    with pq.ParquetWriter(path, schema) as w:
        for s, i in groups:
            w.write_table(pa.table({"session_id": np.asarray(s, np.int64), "item_id": np.asarray(i, np.int64)}))


def test_scan_maps_ids_counts_items_and_checks_the_order(tmp_path):
    (tmp_path / "ok").mkdir()
    _write(tmp_path / "ok/a.parquet", [([5, 5, 9], [100, 107, 100]), ([2, 2, 2], [114, 107, 107])])
    stream = SessionStream(tmp_path / "ok")
    assert len(stream) == 3 and stream.n_items == 3
    assert stream.item_counts().tolist() == [2, 3, 1]                 # ids 100, 107, 114
    b = stream.block_sessions(1)
    assert b.to_lists() == [[2, 1, 1]] and b.row_ids.tolist() == [2] and b.meta["first_row"] == 2
    (tmp_path / "span").mkdir()
    _write(tmp_path / "span/a.parquet", [([1, 2], [0, 1]), ([2, 3], [1, 0])])
    with pytest.raises(ValueError, match="session 2 spans row groups"):
        SessionStream(tmp_path / "span").scan()
    (tmp_path / "mixed").mkdir()
    _write(tmp_path / "mixed/a.parquet", [([1, 2, 1], [0, 1, 0])])
    with pytest.raises(ValueError, match="not contiguous"):
        SessionStream(tmp_path / "mixed").scan()
    with pytest.raises(ValueError, match="no column"):
        SessionStream(tmp_path / "ok", item_col="product")
    with pytest.raises(ValueError, match=r"n_items=2"):
        SessionStream(tmp_path / "ok", n_items=2).scan()


def test_buffers_give_every_session_once_and_write_session_log_round_trips(tmp_path):
    s = random_sessions()
    write_session_log(s, tmp_path, sessions_per_group=40, sessions_per_file=120)
    stream = SessionStream(tmp_path, buffer_events=100, n_items=s.n_items)
    assert len(stream.files) == 3 and len(stream.blocks) == 8 and len(stream) == len(s)
    in_order = list(stream.buffers())
    assert [r for b in in_order for r in b.to_lists()] == s.to_lists()
    assert [b.meta["first_row"] for b in in_order][:2] == [0, len(in_order[0])]
    shuffled = [(int(i), r) for b in stream.shuffled_buffers(np.random.default_rng(0))
                for i, r in zip(b.row_ids, b.to_lists())]
    assert [i for i, _ in shuffled] != list(range(len(s)))                     # another order ...
    assert sorted(shuffled) == list(enumerate(s.to_lists()))                   # ... of the same sessions
    assert np.array_equal(stream.item_counts(), s.item_counts())


@pytest.mark.parametrize("max_prefix", [None, 3])
def test_prefix_pairs_are_expand_prefixes(max_prefix):
    s = random_sessions(50)
    prefixes, targets = expand_prefixes(s)
    if max_prefix:
        prefixes = prefixes.tail(max_prefix)
    starts, lengths, t = prefix_pairs(s, max_prefix=max_prefix)
    assert np.array_equal(t, targets)
    assert gather_prefixes(s, starts, lengths).to_lists() == prefixes.to_lists()


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_streaming_cleora_equals_in_memory(tmp_path, steps):
    s = random_sessions()
    write_session_log(s, tmp_path, sessions_per_group=35)
    stream = SessionStream(tmp_path, buffer_events=200, n_items=s.n_items)
    np.testing.assert_allclose(row_item_embeddings(stream, steps, 32, seed=3),
                               row_item_embeddings(s, steps, 32, seed=3), atol=1e-5)


def test_streaming_fit_learns_what_the_in_memory_fit_learns(tmp_path):
    train, test = cycle_sessions(), cycle_sessions(n_sessions=100, seed=1)
    write_session_log(train, tmp_path, sessions_per_group=50)
    params = dict(inputs=("all:cleora:1", "last:cleora:0"), outputs=("cleora:0",), n_sketches=4, n_bits=5,
                  hidden=64, epochs=4, batch_size=64, lr=3e-3, progress=False, threads=1)
    prefixes, targets = expand_prefixes(test)
    scores = {}
    for name, source in (("memory", train), ("stream", SessionStream(tmp_path, buffer_events=600, n_items=40))):
        model = EMDE(**params).fit(source)
        scores[name] = evaluate_next_item(model, prefixes, targets, progress=False)[0]["HR@10"]
        assert len(model.history_) == 4 and model.history_[-1]["loss"] < model.history_[0]["loss"]
    assert scores["stream"] > 0.9 and abs(scores["stream"] - scores["memory"]) < 0.05
    stream = SessionStream(tmp_path, n_items=40)
    with pytest.raises(ValueError, match="target='next'"):
        EMDE(**{**params, "target": "holdout"}).fit(stream)


class _KilledStream(SessionStream):
    """A stream whose reads fail (KeyboardInterrupt, as a kill) once `reads_left` blocks were read."""

    reads_left = 10**9

    def block_sessions(self, b):
        if self.reads_left == 0:
            raise KeyboardInterrupt("killed")
        self.reads_left -= 1
        return super().block_sessions(b)


def test_a_streaming_fit_killed_inside_an_epoch_resumes_from_its_last_buffer(tmp_path, monkeypatch):
    train = cycle_sessions(n_sessions=400)
    write_session_log(train, tmp_path / "log", sessions_per_group=25)           # 16 blocks
    params = dict(inputs=("all:cleora:1", "last:cleora:0"), outputs=("cleora:0",), n_sketches=4, n_bits=5,
                  hidden=32, epochs=2, batch_size=32, lr=3e-3, progress=False, threads=1, dropout=0.2)
    stream = lambda: SessionStream(tmp_path / "log", buffer_events=300, n_items=40)  # noqa: E731  ~2 blocks a buffer
    whole = EMDE(**params).fit(stream())
    ckpt = tmp_path / "fit.npz"
    killed = _KilledStream(tmp_path / "log", buffer_events=300, n_items=40)
    kill = lambda epoch, model, row: setattr(killed, "reads_left", 11)  # noqa: E731  11 blocks into epoch 2
    with pytest.raises(KeyboardInterrupt):
        EMDE(**params).fit(killed, checkpoint=ckpt, checkpoint_every=0, callback=kill)
    with np.load(ckpt) as z:
        within = json.loads(str(z["meta"]))["extra"]["within"]
    assert within["epoch"] == 1 and 0 < within["progress"]["blocks"] < 16
    assert (tmp_path / "fit.npz.codes.npz").exists()
    calls = []
    monkeypatch.setattr(EMDE, "_fit_codes", lambda self, train: calls.append(1))  # the codes come from the file
    resumed = EMDE(**params).fit(stream(), checkpoint=ckpt, checkpoint_every=0)
    assert not calls
    for a, b in zip(whole.net_.state_dict().values(), resumed.net_.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())        # the same steps as the run never killed
    assert [r["examples"] for r in resumed.history_] == [r["examples"] for r in whole.history_]
    assert resumed.history_[1]["loss"] == pytest.approx(whole.history_[1]["loss"], rel=1e-6)
    assert resumed.history_[1]["seconds"] >= within["seconds"]     # the killed run's part of the epoch counts
