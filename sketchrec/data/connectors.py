"""Reading events from where they live: files and folders (DuckDB), SQLite, PostgreSQL.

`read_table(source, query=None)` returns an Arrow table from

- a file or folder DuckDB reads (Parquet, CSV/TSV, JSON; a folder means every such file in it,
  a glob works too): `query` may refer to it as `events`;
- `sqlite:///path/to.db` with `query` (Python's sqlite3, fetched in batches);
- `postgresql://user@host:port/db` (or any libpq connection string) with `query`: the server
  streams the result with `COPY (query) TO STDOUT` (CSV) into Arrow's CSV reader, so memory holds
  one block at a time, not the whole result as Python objects.

`to_parquet(source, query, path)` writes the same stream to a Parquet file, which is how a
database table is best handed to `Graph.read_edges` / `read_interactions` for large data.
DuckDB's own postgres / sqlite extensions are not used: they download at run time (no
internet here) and their PyPI builds trail the DuckDB release.
"""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FILE_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".gz")


class ConnectorError(ValueError):
    """A source that cannot be read: unknown scheme, missing file, failed query."""


def _kind(source: str) -> str:
    s = str(source)
    if s.startswith("sqlite://"):
        return "sqlite"
    if s.startswith(("postgresql://", "postgres://")) or "dbname=" in s:
        return "postgres"
    return "files"


def _duckdb_relation(source: str) -> str:
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(FILE_SUFFIXES))
        if not files:
            raise ConnectorError(f"{source}: no Parquet/CSV/JSON files in this folder")
        suffixes = {"parquet" if f.suffix.lower() in (".parquet", ".pq") else "csv" for f in files}
        if len(suffixes) > 1:
            raise ConnectorError(f"{source}: mixes Parquet and text files; point at one kind")
        listing = ", ".join(f"'{f.as_posix()}'" for f in files)
        return f"read_parquet([{listing}], union_by_name = true)" if suffixes == {"parquet"} else \
            f"read_csv([{listing}], union_by_name = true)"
    if not any(ch in str(source) for ch in "*?[") and not path.exists():
        raise ConnectorError(f"{source}: no such file or folder")
    lower = str(source).lower()
    if lower.endswith((".parquet", ".pq")):
        return f"read_parquet('{source}')"
    if lower.endswith((".json", ".jsonl", ".ndjson")):
        return f"read_json_auto('{source}')"
    return f"read_csv('{source}')"


def _postgres_reader(dsn: str, query: str, block_size: int):
    from sketchrec._optional import require
    psycopg = require("psycopg", "the PostgreSQL connector")
    try:
        conn = psycopg.connect(dsn.replace("postgres://", "postgresql://", 1) if dsn.startswith("postgres://")
                               else dsn)
    except psycopg.Error as err:
        raise ConnectorError(f"cannot connect to PostgreSQL: {err}".strip()) from None
    copy_sql = f"COPY ({query.rstrip().rstrip(';')}) TO STDOUT WITH (FORMAT csv, HEADER true)"

    class _Stream(io.RawIOBase):           # the COPY stream as a file for Arrow's CSV reader
        def __init__(self):
            self.cursor = conn.cursor()
            self.context = self.cursor.copy(copy_sql)     # kept: collecting it would cancel the COPY
            self.copy = self.context.__enter__()
            self.buffer = bytearray()

        def readable(self):
            return True

        def readinto(self, out):
            while len(self.buffer) < len(out):
                chunk = self.copy.read()
                if not chunk:
                    break
                self.buffer += chunk
            n = min(len(out), len(self.buffer))
            out[:n] = self.buffer[:n]
            del self.buffer[:n]
            return n

        def close(self):
            if not self.closed:
                try:
                    while self.copy.read():          # drain, so the COPY ends normally, not cancelled
                        pass
                    self.context.__exit__(None, None, None)
                except psycopg.Error:
                    pass
                finally:
                    conn.close()
            super().close()

    try:
        stream = _Stream()
    except psycopg.Error as err:
        conn.close()
        raise ConnectorError(f"PostgreSQL query failed: {str(err).strip()}") from None
    reader = pacsv.open_csv(io.BufferedReader(stream, buffer_size=block_size),
                            read_options=pacsv.ReadOptions(block_size=block_size),
                            convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    return reader, stream


def _sqlite_batches(path: str, query: str, batch_rows: int):
    file = path[len("sqlite:///"):] if path.startswith("sqlite:///") else path[len("sqlite://"):]
    if not Path(file).exists():
        raise ConnectorError(f"{file}: no such SQLite file")
    conn = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
    try:
        cur = conn.execute(query)
    except sqlite3.Error as err:
        conn.close()
        raise ConnectorError(f"SQLite query failed: {err}") from None
    names = [d[0] for d in cur.description]
    try:
        while True:
            rows = cur.fetchmany(batch_rows)
            if not rows:
                break
            columns = list(zip(*rows))
            yield pa.RecordBatch.from_arrays([pa.array(c) for c in columns], names=names)
    finally:
        conn.close()


def iter_batches(source, query: str | None = None, *, batch_rows: int = 100_000, block_size: int = 1 << 22):
    """Record batches of a source (see the module notes), streamed."""
    kind = _kind(str(source))
    if kind == "files":
        con = duckdb.connect()
        rel = _duckdb_relation(str(source))
        sql = f"SELECT * FROM {rel}" if query is None else f"WITH events AS (SELECT * FROM {rel}) {query}"
        try:
            reader = con.sql(sql).to_arrow_reader(batch_rows)
        except duckdb.Error as err:
            raise ConnectorError(f"{source}: {err}") from None
        yield from reader
        return
    if query is None:
        raise ConnectorError(f"{kind} sources need a query (e.g. 'SELECT user_id, item_id, ts FROM events')")
    if kind == "sqlite":
        yield from _sqlite_batches(str(source), query, batch_rows)
        return
    reader, stream = _postgres_reader(str(source), query, block_size)
    try:
        yield from reader
    finally:
        stream.close()


def read_table(source, query: str | None = None, **kw) -> pa.Table:
    """The whole result as one Arrow table."""
    batches = list(iter_batches(source, query, **kw))
    if not batches:
        raise ConnectorError(f"{source}: the query returned no rows")
    return pa.Table.from_batches(batches)


def to_parquet(source, query: str | None, path: str | Path, **kw) -> int:
    """Stream a source into a Parquet file (written to a temporary name, then renamed); returns rows."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    writer, rows = None, 0
    try:
        for batch in iter_batches(source, query, **kw):
            if writer is None:
                writer = pq.ParquetWriter(tmp, batch.schema)
            writer.write_batch(batch)
            rows += batch.num_rows
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    if writer is None:
        raise ConnectorError(f"{source}: the query returned no rows")
    writer.close()
    tmp.replace(path)
    return rows
