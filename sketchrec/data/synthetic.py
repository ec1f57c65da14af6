"""Synthetic session logs for scale tests: Parquet files of (session_id, item_id, timestamp).

Quality figures always come from real data; these logs only measure time and memory at sizes
no real data set here reaches (up to 100M events and 1M items).

What a log looks like (`generate_sessions`):

- session lengths: 1 + Geometric(p), p = 1 / (mean_length - 1), so every session has at least
  two clicks (as after SR-GNN's filtering) and a long geometric tail. Fitted to Diginetica's
  training sessions (`registry.load("diginetica").train.lengths`: 186,670 sessions, mean 4.854,
  median 4, 99th percentile 18, max 70): the moment fit p = 1 / 3.854 = 0.2595 gives mean 4.85,
  90th / 99th percentiles 9 / 17 and a total variation distance of 0.030 to the real length
  histogram (a discretised lognormal, 1 + ceil(exp(N(0.65, 1.1))), fitted by grid search, was
  worse: 0.070);
- item popularity: Zipf, P(rank r) ∝ r^-zipf_exponent over n_items ranks; the default 0.73 is
  Diginetica's rank-frequency slope (least squares of log count on log rank over ranks 10 to
  n_items / 2 of the training clicks); ranks are mapped to item ids by a seeded permutation;
- co-occurrence: a session draws an anchor item; each click is, with probability `locality`,
  a uniform pick from the anchor's cluster of `cluster_size` consecutive ranks, else an
  independent popularity draw — so the item graph has structure for Cleora and EMDE to find;
- timestamps (int64 seconds): sessions start one after the other (exponential gaps of mean
  `session_gap` s), clicks inside a session follow at exponential gaps of mean `click_gap` s:
  the log is in time order of session starts, every session is contiguous and in time order.

Files: ``part-00000.parquet``, ... each of about `events_per_file` events, row groups of about
`chunk_events` events that never split a session (the order `sketchrec.data.stream` needs).
Generation is a loop over chunks with vectorised numpy inside: memory is O(chunk_events +
n_items), whatever the total. Deterministic by seed: chunk c draws from
``SeedSequence([seed, c])``, so a log can be extended or regenerated part by part.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

#: Diginetica's session length mean after SR-GNN filtering (see the module docstring)
DIGINETICA_MEAN_LENGTH = 4.854
#: Diginetica's rank-frequency slope of item clicks (see the module docstring)
DIGINETICA_ZIPF = 0.73

SCHEMA = pa.schema([("session_id", pa.int64()), ("item_id", pa.int64()), ("timestamp", pa.int64())])


def session_lengths(n: int, rng: np.random.Generator, mean_length: float = DIGINETICA_MEAN_LENGTH) -> np.ndarray:
    """(n,) int64 session lengths 1 + Geometric(1 / (mean_length - 1)): at least 2, mean `mean_length`."""
    if not mean_length > 2:
        raise ValueError(f"mean_length must be > 2 (sessions have at least two clicks), got {mean_length}")
    return 1 + rng.geometric(1.0 / (mean_length - 1.0), n).astype(np.int64)


class ZipfItems:
    """Draws item ids with P(rank r) ∝ r^-exponent; rank -> id by a seeded permutation.
    Memory: two (n_items,) arrays (8 MB each at 1M items)."""

    def __init__(self, n_items: int, exponent: float = DIGINETICA_ZIPF, seed: int = 0):
        if n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {n_items}")
        if exponent < 0:
            raise ValueError(f"zipf_exponent must be >= 0, got {exponent}")
        weights = np.arange(1, n_items + 1, dtype=np.float64) ** -exponent
        self.cdf = np.cumsum(weights)
        self.cdf /= self.cdf[-1]
        self.id_of_rank = np.random.default_rng([seed, 2**31]).permutation(n_items).astype(np.int64)

    def ranks(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n,) int64 popularity ranks (0 = most popular)."""
        return np.minimum(np.searchsorted(self.cdf, rng.random(n), side="right"), len(self.cdf) - 1)


def session_chunk(chunk: int, sessions_per_chunk: int, items: ZipfItems, *, seed: int, mean_length: float,
                  locality: float, cluster_size: int, session_gap: float, click_gap: float,
                  start_time: int) -> pa.Table:
    """Chunk `chunk` of a log: sessions chunk·sessions_per_chunk .. +sessions_per_chunk, a pure
    function of (seed, chunk) and the settings. Session k starts at
    start_time + floor((k + U(0, 1)) · session_gap): increasing with k, chunk by chunk."""
    rng = np.random.default_rng([seed, chunk])
    first = chunk * sessions_per_chunk
    lengths = session_lengths(sessions_per_chunk, rng, mean_length)
    n = int(lengths.sum())
    session = np.repeat(np.arange(first, first + sessions_per_chunk, dtype=np.int64), lengths)
    anchor = np.repeat(items.ranks(sessions_per_chunk, rng), lengths)
    near = np.minimum(anchor - anchor % cluster_size + rng.integers(0, cluster_size, n), len(items.cdf) - 1)
    rank = np.where(rng.random(n) < locality, near, items.ranks(n, rng))
    k = np.arange(first, first + sessions_per_chunk, dtype=np.float64)
    starts = start_time + np.floor((k + rng.random(sessions_per_chunk)) * session_gap).astype(np.int64)
    # click offsets inside each session: a running sum of exponential gaps, restarted per session
    gaps = np.ceil(rng.exponential(click_gap, n)).astype(np.int64)
    running = np.cumsum(gaps)
    session_start = np.cumsum(lengths) - lengths
    within = running - np.repeat(running[session_start], lengths)      # the first click at the start
    return pa.table({"session_id": session, "item_id": items.id_of_rank[rank],
                     "timestamp": np.repeat(starts, lengths) + within}, schema=SCHEMA)


def generate_sessions(path: str | Path, n_events: int, n_items: int, *, seed: int = 0,
                      zipf_exponent: float = DIGINETICA_ZIPF, mean_length: float = DIGINETICA_MEAN_LENGTH,
                      locality: float = 0.5, cluster_size: int = 16, chunk_events: int = 1_000_000,
                      events_per_file: int = 10_000_000, session_gap: float = 2.0, click_gap: float = 60.0,
                      start_time: int = 1_464_000_000, progress: bool = False) -> list[Path]:
    """Write a synthetic log of about `n_events` events into folder `path`; returns its part files.

    The log has ceil(n_events / chunk_events) chunks (chunk_events capped at n_events) of
    round(chunk_events / mean_length) whole sessions each (so the event count is n_events to within sampling noise and one chunk), one
    Parquet row group per chunk, ceil(events_per_file / chunk_events) chunks per file.
    Resumable: a part file that exists and is complete (a readable footer) is kept; files are
    written under a temporary name and renamed when done. ``manifest.json`` records the settings;
    a folder written with other settings is refused (ValueError) rather than mixed.
    """
    if n_events < 1 or chunk_events < 1 or events_per_file < 1:
        raise ValueError(f"n_events, chunk_events and events_per_file must be >= 1, got "
                         f"{n_events}, {chunk_events}, {events_per_file}")
    if not 0 <= locality <= 1 or cluster_size < 1:
        raise ValueError(f"locality must be in [0, 1] and cluster_size >= 1, got {locality}, {cluster_size}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    settings = dict(n_events=n_events, n_items=n_items, seed=seed, zipf_exponent=zipf_exponent,
                    mean_length=mean_length, locality=locality, cluster_size=cluster_size,
                    chunk_events=chunk_events, events_per_file=events_per_file, session_gap=session_gap,
                    click_gap=click_gap, start_time=start_time)
    chunk_events = min(chunk_events, n_events)         # a small log is one chunk of its own size
    manifest = path / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()) != settings:
        raise ValueError(f"{path} holds a log written with other settings ({manifest}); use another folder")
    manifest.write_text(json.dumps(settings, indent=1))
    items = ZipfItems(n_items, zipf_exponent, seed)
    sessions_per_chunk = max(1, round(chunk_events / mean_length))
    n_chunks = -(-n_events // chunk_events)
    per_file = max(1, -(-events_per_file // chunk_events))
    files = []
    for part, first in enumerate(tqdm(range(0, n_chunks, per_file), desc="synthetic log", unit="part",
                                      leave=False, disable=not progress)):
        file = path / f"part-{part:05d}.parquet"
        files.append(file)
        if _complete(file):
            continue
        tmp = file.with_suffix(".tmp")
        with pq.ParquetWriter(tmp, SCHEMA) as writer:
            for chunk in range(first, min(first + per_file, n_chunks)):
                table = session_chunk(chunk, sessions_per_chunk, items, seed=seed, mean_length=mean_length,
                                      locality=locality, cluster_size=cluster_size, session_gap=session_gap,
                                      click_gap=click_gap, start_time=start_time)
                writer.write_table(table, row_group_size=table.num_rows)
        tmp.replace(file)
    return files


def _complete(file: Path) -> bool:
    try:
        pq.ParquetFile(file).metadata
    except (OSError, pa.ArrowInvalid):
        return False
    return True
