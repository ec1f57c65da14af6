"""Session logs read from Parquet files a block at a time: training and profiles for logs larger
than memory.

A `SessionStream` is a list of Parquet files of events (session id, item id, optional click
weight). Required order — the one `sketchrec.data.synthetic` writes, and any "ORDER BY session,
time" export gives: **every session's events are contiguous and in click order, and no session
spans two row groups** (row groups are the blocks read, shuffled and sharded; a new session starts
where the session id changes). The first pass (`scan`, run once and cached) checks the row-group
boundaries, counts the events of every item and the sessions, and maps item ids to dense
internal ids (sorted external ids -> 0..n_items-1).

Memory: one block (a row group) and the buffer of `buffer_events` events at a time, plus
O(n_items) for the id map and counts; nothing grows with the log.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow.parquet as pq

from sketchrec.data.sessions import Sessions, concat


@dataclass
class StreamScan:
    """What the first pass learns: item_ids (n_items,) sorted external ids (the dense id of an item
    is its position), item_counts (n_items,) int64 events per item, n_rows sessions, n_events,
    first_row (n_blocks,) int64 global index of every block's first session (in file order)."""

    item_ids: np.ndarray
    item_counts: np.ndarray
    n_rows: int
    n_events: int
    first_row: np.ndarray


class SessionStream:
    """Sessions of Parquet files, read a row group at a time (see the module docstring).

    paths : a folder (its ``*.parquet``, sorted by name), a file, or a list of files.
    session_col, item_col : the columns of session and item ids (integers).
    weight_col : optional click weight column (float); None: unweighted clicks.
    buffer_events : events per buffer: blocks are gathered into buffers of about this many events;
        the trainer shuffles examples within a buffer (and the block order every epoch).
    n_items : optional: the item ids are already dense internal ids in [0, n_items) (e.g. a log
        written from `Sessions` by `write_session_log`, whose item universe may hold items no
        event mentions); None: ids are any integers, mapped by the scan.
    """

    def __init__(self, paths, *, session_col: str = "session_id", item_col: str = "item_id",
                 weight_col: str | None = None, buffer_events: int = 2_000_000, n_items: int | None = None):
        if isinstance(paths, (str, Path)):
            p = Path(paths)
            paths = sorted(p.glob("*.parquet")) if p.is_dir() else [p]
        self.files = [Path(f) for f in paths]
        if not self.files:
            raise ValueError("SessionStream: no Parquet files given (an empty folder?)")
        if buffer_events < 1:
            raise ValueError(f"buffer_events must be >= 1, got {buffer_events}")
        self.session_col, self.item_col, self.weight_col = session_col, item_col, weight_col
        self.buffer_events = buffer_events
        self.dense_n_items = n_items
        self.blocks: list[tuple[int, int]] = []
        for f, file in enumerate(self.files):
            meta = pq.ParquetFile(file).metadata
            names = set(pq.ParquetFile(file).schema_arrow.names)
            missing = [c for c in (session_col, item_col, weight_col) if c is not None and c not in names]
            if missing:
                raise ValueError(f"{file}: no column(s) {missing}; it has {sorted(names)}")
            self.blocks += [(f, g) for g in range(meta.num_row_groups)]
        self._scan: StreamScan | None = None

    # -- reading ----------------------------------------------------------------------------
    def _columns(self) -> list[str]:
        return [c for c in (self.session_col, self.item_col, self.weight_col) if c is not None]

    def read_block(self, b: int) -> dict[str, np.ndarray]:
        """Block b's columns as numpy arrays (external ids)."""
        f, g = self.blocks[b]
        table = pq.ParquetFile(self.files[f]).read_row_group(g, columns=self._columns())
        return {c: table.column(c).to_numpy() for c in self._columns()}

    def block_sessions(self, b: int) -> Sessions:
        """Block b as `Sessions` over the dense item ids; row_ids are the external session ids,
        meta["first_row"] the global index of its first session."""
        cols = self.read_block(b)
        sessions = cols[self.session_col]
        new = np.ones(len(sessions), bool)
        new[1:] = sessions[1:] != sessions[:-1]
        starts = np.flatnonzero(new)
        indptr = np.append(starts, len(sessions)).astype(np.int64)
        weights = None if self.weight_col is None else cols[self.weight_col].astype(np.float32)
        return Sessions(indptr, self.dense_items(cols[self.item_col]), self.n_items, weights=weights,
                        row_ids=sessions[starts], meta={"first_row": int(self.scan().first_row[b])})

    def dense_items(self, items: np.ndarray) -> np.ndarray:
        """External item ids -> (n,) int32 dense ids (ValueError on an id the scan never saw)."""
        ids = self.scan().item_ids
        if self.dense_n_items is not None or (len(ids) and ids[0] == 0 and ids[-1] == len(ids) - 1):
            return items.astype(np.int32)                       # already dense: 0..n-1
        pos = np.minimum(np.searchsorted(ids, items), len(ids) - 1)
        if not np.array_equal(ids[pos], items):
            raise ValueError(f"item id {items[ids[pos] != items][0]} is not in the scanned log")
        return pos.astype(np.int32)

    def buffers(self, order=None) -> Iterator[Sessions]:
        """Buffers of whole blocks (about `buffer_events` events each) in block order `order`
        (default: file order), as `Sessions`; a buffer's meta["first_row"] is that of its first
        block, meta["blocks"] the number of blocks it holds (a reader that stops after some
        buffers carries on with ``order[sum of their blocks:]``: the same buffers follow)."""
        order = range(len(self.blocks)) if order is None else order
        parts, n = [], 0
        for b in order:
            parts.append(self.block_sessions(int(b)))
            n += parts[-1].nnz
            if n >= self.buffer_events:
                yield _joined(parts)
                parts, n = [], 0
        if parts:
            yield _joined(parts)

    def shuffled_buffers(self, rng: np.random.Generator) -> Iterator[Sessions]:
        """One epoch's buffers: the block order drawn from `rng` (examples are shuffled inside a
        buffer by the trainer)."""
        return self.buffers(rng.permutation(len(self.blocks)))

    # -- the first pass ---------------------------------------------------------------------
    def scan(self) -> StreamScan:
        """Item ids and counts, session count, block offsets; checks the order (cached)."""
        if self._scan is not None:
            return self._scan
        ids, counts = np.zeros(0, np.int64), np.zeros(self.dense_n_items or 0, np.int64)
        pending, first_row, n_rows, n_events, last = [], [], 0, 0, None
        for b, (f, g) in enumerate(self.blocks):
            cols = self.read_block(b)
            s, items = cols[self.session_col], cols[self.item_col]
            if len(s) and last is not None and s[0] == last[0]:
                raise ValueError(f"session {s[0]} spans row groups: {self.files[last[1]]} row group {last[2]} "
                                 f"and {self.files[f]} row group {g}; a session must lie inside one row group "
                                 f"(sessions contiguous, written a chunk of whole sessions per row group)")
            runs = int(np.count_nonzero(s[1:] != s[:-1])) + 1 if len(s) else 0
            if len(s) and runs != len(np.unique(s)):
                raise ValueError(f"{self.files[f]} row group {g}: a session's events are not contiguous "
                                 f"(sort the log by session, then time)")
            first_row.append(n_rows)
            n_rows += runs
            n_events += len(s)
            if len(s):
                last = (s[-1], f, g)
            if self.dense_n_items is not None:
                if len(items) and (items.min() < 0 or items.max() >= self.dense_n_items):
                    raise ValueError(f"{self.files[f]} row group {g}: item ids must lie in [0, n_items="
                                     f"{self.dense_n_items}); got [{items.min()}, {items.max()}]")
                counts += np.bincount(items, minlength=self.dense_n_items)
                continue
            pending.append(np.unique(items, return_counts=True))
            if sum(len(u) for u, _ in pending) > 4_000_000:
                ids, counts = _merge_counts(ids, counts, pending)
                pending = []
        if self.dense_n_items is not None:
            ids = np.arange(self.dense_n_items, dtype=np.int64)
        else:
            ids, counts = _merge_counts(ids, counts, pending)
        self._scan = StreamScan(ids, counts, n_rows, n_events, np.asarray(first_row, np.int64))
        return self._scan

    @property
    def n_items(self) -> int:
        return len(self.scan().item_ids)

    @property
    def weights(self):
        """Stands for `Sessions.weights` in the "does the data have click weights" checks."""
        return None if self.weight_col is None else True

    def item_counts(self) -> np.ndarray:
        """(n_items,) int64 events per dense item id."""
        return self.scan().item_counts

    def __len__(self) -> int:
        return self.scan().n_rows

    def fingerprint(self) -> str:
        """Identity of the files (names, sizes, modification times) and the columns read."""
        h = hashlib.sha256(repr(self._columns()).encode())
        for file in self.files:
            st = file.stat()
            h.update(f"{file.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"SessionStream(files={len(self.files)}, blocks={len(self.blocks)})"


def _merge_counts(ids, counts, pending) -> tuple[np.ndarray, np.ndarray]:
    all_ids = np.concatenate([ids] + [u for u, _ in pending])
    all_counts = np.concatenate([counts] + [c for _, c in pending])
    merged, inverse = np.unique(all_ids, return_inverse=True)
    return merged, np.bincount(inverse, weights=all_counts, minlength=len(merged)).astype(np.int64)


def _joined(parts: list[Sessions]) -> Sessions:
    out = parts[0] if len(parts) == 1 else concat(parts)
    out.meta = {"first_row": parts[0].meta["first_row"], "blocks": len(parts)}
    return out


def write_session_log(sessions: Sessions, path: str | Path, sessions_per_group: int = 100_000,
                      sessions_per_file: int = 1_000_000) -> list[Path]:
    """Write `sessions` as a log a `SessionStream` reads (in the order it needs): columns
    session_id (the row index), item_id (the internal item id), timestamp when the rows have them;
    row groups of whole sessions. Read it back with ``SessionStream(path, n_items=sessions.n_items)``
    to keep the item universe."""
    import pyarrow as pa
    if sessions_per_group < 1 or sessions_per_file < 1:
        raise ValueError(f"sessions_per_group and sessions_per_file must be >= 1, got "
                         f"{sessions_per_group}, {sessions_per_file}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    files = []
    for part, lo in enumerate(range(0, max(len(sessions), 1), sessions_per_file)):
        files.append(path / f"part-{part:05d}.parquet")
        writer = None
        for g in range(lo, min(lo + sessions_per_file, len(sessions)), sessions_per_group):
            rows = sessions.take(np.arange(g, min(g + sessions_per_group, lo + sessions_per_file, len(sessions))))
            cols = {"session_id": rows.row_of_click() + g, "item_id": rows.items.astype(np.int64)}
            if rows.timestamps is not None:
                cols["timestamp"] = rows.timestamps.astype(np.int64)
            table = pa.table(cols)
            writer = writer or pq.ParquetWriter(files[-1], table.schema)
            writer.write_table(table, row_group_size=table.num_rows)
        if writer is not None:
            writer.close()
    return files
