"""Read interaction events from files or SQL into `Interactions`, validated at the edge.

Everything goes through DuckDB (parallel parsing, typed casts, predicate
evaluation) and pyarrow (hash-based id factorisation): there is no Python loop
per row. Bad rows are found in one SQL pass that computes a reason bitmask per
row; they either raise a `DataValidationError` naming the file, line, column and
value, or (with ``on_bad_rows="skip"``) are dropped and reported in `Interactions.report`.

Reading is right or says why; what that means, input by input:

- Rows in = rows kept + rows reported, in both modes. A row is a record: one line of a
  CSV/TSV file, or several when a quoted value holds line breaks (RFC 4180), so a quoted
  text column with line breaks stays one row; blank lines are not rows. A record whose
  user, item or event value holds a line break is a stray quote that merged lines: one bad
  row, reported with its first line and the lines it covers (a merged time or weight does
  not parse, so it is a bad row too). An unterminated quote makes one bad row that runs to
  the end of the file. In JSON lines a row is a non-blank line; in Parquet and queries, a row.
- Line numbers are physical lines of each file (1 = the header), blank lines and every
  line of a multi-line record included. They are worked out only when there is something
  to report: a byte scan of the file for blank lines, then one walk over its records.
- A glob or a folder is read file by file, columns matched by name; a file that lacks a
  column is refused with its own header, and lines are counted per file.
- Timestamps: text with an offset or ``Z`` is converted to UTC; text without one is taken
  as UTC; numbers are Unix time (unit given, or guessed from magnitude). Times outside
  0001-01-01..9999-12-31 and weights beyond float32 are bad rows, not a failed read.
- UTF-8 is read with or without a byte-order mark; UTF-16 with a BOM is transcoded first;
  a line that is not UTF-8 is a malformed row. gzip is told from the bytes, not the name.

The parts, in the order a read goes through them: `inputs` (what a file is), `columns`
(typing and checking one input's rows), `locate` (where its bad rows are), `errors`
(`DataValidationError`, `IngestReport`); this module holds the two entry points.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from sketchrec.data.idmap import IdMap
from sketchrec.data.interactions import Interactions
from sketchrec.data.readers.columns import _describe, _read_input, _require_columns
from sketchrec.data.readers.errors import DataValidationError, IngestReport, InputNotFoundError
from sketchrec.data.readers.inputs import _FORGET_REJECTS, _expand, _Input, _open_input, _q, _relation, _run, _session
from sketchrec.data.readers.locate import _first_error, _locate, _rejects

log = logging.getLogger(__name__)

ROLES = ("user", "item", "timestamp", "event", "weight")

__all__ = ["ROLES", "DataValidationError", "IngestReport", "InputNotFoundError", "read_columns", "read_interactions"]


# -- public entry points ----------------------------------------------------------

def read_interactions(
    source: str | Path | None = None,
    *,
    user: str,
    item: str,
    timestamp: str | None = None,
    event: str | None = None,
    weight: str | None = None,
    sql: str | None = None,
    delimiter: str | None = None,
    timestamp_unit: str | None = None,
    on_bad_rows: str = "raise",
    connection: duckdb.DuckDBPyConnection | None = None,
    threads: int | None = None,
) -> Interactions:
    """Read events into `Interactions` with internal ids.

    Parameters
    ----------
    source : file, folder or glob of CSV/TSV (optionally gzipped), Parquet or JSON-lines files.
    user, item, timestamp, event, weight : column names for each role (user may
        be a session id). Only user and item are required.
    sql : instead of `source`, any DuckDB query (files, attached databases, ...).
    delimiter : CSV delimiter; default from the extension (.tsv = tab) or sniffed per file.
    timestamp_unit : "s", "ms" or "us" for numeric timestamps; default guesses
        from magnitude. Text timestamps are ISO dates/times, UTC unless they carry an offset.
    on_bad_rows : "raise" (default) or "skip" (drop and report in `.report`).

    Raises `DataValidationError` (naming file, line, column and value) for any input it
    cannot read right; `InputNotFoundError` (also a `FileNotFoundError`) for a missing path.
    """
    if on_bad_rows not in ("raise", "skip"):
        raise ValueError(f"on_bad_rows must be 'raise' or 'skip', got {on_bad_rows!r}")
    if (source is None) == (sql is None):
        raise ValueError("give exactly one of source= or sql=")
    if timestamp_unit not in (None, "s", "ms", "us"):
        raise ValueError(f"timestamp_unit must be 's', 'ms' or 'us', got {timestamp_unit!r}")
    roles = {"user": user, "item": item, "timestamp": timestamp, "event": event, "weight": weight}
    roles = {r: c for r, c in roles.items() if c is not None}
    report = IngestReport(source=str(source) if source is not None else "query")
    with _session(connection, threads) as (con, scratch):
        inputs = [_Input("query", "query", f"({sql})")] if sql is not None else \
            (_open_input(path, delimiter, scratch) for path in _expand(source))
        tables = []
        for inp in inputs:
            table, rows_read, bad = _read_input(con, inp, roles, timestamp_unit, on_bad_rows)
            report._add(inp.label, rows_read, table.num_rows, bad)
            tables.append(table)
    if report.n_bad:
        log.warning(report.summary())
    return _to_interactions(_concat(tables), roles, report)


def read_columns(source: str | Path | None = None, *, columns: list[str], sql: str | None = None,
                 delimiter: str | None = None, threads: int | None = None) -> pa.Table:
    """Named columns of a file, glob or query as an Arrow table (CSV/TSV read as strings).

    For inputs that are not events: entity columns for graphs, item tables, ...
    Missing columns and malformed lines raise a `DataValidationError` naming the file.
    """
    if (source is None) == (sql is None):
        raise ValueError("give exactly one of source= or sql=")
    with _session(None, threads) as (con, scratch):
        inputs = [_Input("query", "query", f"({sql})")] if sql is not None else \
            (_open_input(path, delimiter, scratch, json_lines=False) for path in _expand(source))
        tables = []
        for inp in inputs:
            relation = _relation(inp, {})
            _require_columns(inp, _describe(con, inp, relation), columns)
            query = f"SELECT {', '.join(_q(c) for c in columns)} FROM {relation}"
            table = _run(con, inp, _FORGET_REJECTS + query)
            rejects = _rejects(con) if inp.kind == "csv" else []
            if rejects:
                bad = _locate(con, inp, relation, np.zeros(0, np.int64), np.zeros(0, np.int8),
                              table.num_rows, rejects)
                raise _first_error(con, inp, relation, bad, {})
            tables.append(table)
    return _concat(tables)


# -- assembling ------------------------------------------------------------------------

def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table from per-file tables; id columns whose type differs between files become text."""
    if len(tables) == 1:
        return tables[0]
    for name in tables[0].column_names:
        if len({t.schema.field(name).type for t in tables}) > 1:
            tables = [t.set_column(t.column_names.index(name), name, t.column(name).cast(pa.string()))
                      for t in tables]
    return pa.concat_tables(tables)


def _to_interactions(table: pa.Table, roles: dict, report: IngestReport) -> Interactions:
    user_ids, user = IdMap.factorize(table.column("user"), name=roles["user"])
    item_ids, item = IdMap.factorize(table.column("item"), name=roles["item"])
    kwargs = {}
    if "timestamp" in roles:
        kwargs["timestamp"] = table.column("timestamp").to_numpy().astype(np.int64, copy=False)
    if "weight" in roles:
        kwargs["weight"] = table.column("weight").to_numpy().astype(np.float32, copy=False)
    if "event" in roles:
        kwargs["event_ids"], codes = IdMap.factorize(table.column("event"), name=roles["event"])
        kwargs["event"] = codes.astype(np.int16)
    return Interactions(user=user, item=item, user_ids=user_ids, item_ids=item_ids,
                        report=report, **kwargs)
