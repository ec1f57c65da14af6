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
"""

from __future__ import annotations

import codecs
import csv
import functools
import glob
import gzip
import io
import json
import logging
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from sketchrec.data.idmap import IdMap
from sketchrec.data.interactions import Interactions

log = logging.getLogger(__name__)

ROLES = ("user", "item", "timestamp", "event", "weight")
# bit per problem; a row's reason mask is the OR of the bits that apply (0 = malformed record)
_PROBLEMS = {
    1: ("user", "empty, missing or invalid id"),
    2: ("item", "empty, missing or invalid id"),
    4: ("timestamp", "missing, unparseable or out-of-range timestamp (0001..9999 UTC)"),
    8: ("weight", "missing, non-numeric, NaN, negative or out-of-range weight"),
    16: ("event", "missing or invalid event type"),
    32: (None, "value holds a line break: a quote opened here closes on a later line"),
}
_ROLE_BITS = {role: bit for bit, (role, _) in _PROBLEMS.items() if role}
_LINE_BREAK = 32
_NOT_JSON_OBJECT = 64  # internal: becomes a malformed row (reason 0) with the JSON error
_TS_RANGE = (-62135596800, 253402300799)  # 0001-01-01 .. 9999-12-31 UTC, Python datetime's range
_FLOAT32_MAX = 3.4028234663852886e38
_INTS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
_WIDE_IDS = {"UBIGINT", "HUGEINT", "UHUGEINT", "UUID"}  # read as text: may not fit int64
_FLOATS = {"FLOAT", "DOUBLE"}
_NUMBERS = _INTS | _FLOATS | {"UBIGINT", "HUGEINT", "UHUGEINT"}
_BLANKS = "' \t\r\n'"
_STORE_REJECTS = ("ignore_errors=true, store_rejects=true, rejects_table='sketchrec_rejects', "
                  "rejects_scan='sketchrec_reject_scans'")
# run before a scan: a clean scan leaves the rejects of the one before in place
_FORGET_REJECTS = "DROP TABLE IF EXISTS sketchrec_rejects; DROP TABLE IF EXISTS sketchrec_reject_scans; "
_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".json", ".jsonl", ".ndjson")
_ARCHIVES = {b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd",
             b"7z\xbc\xaf": "7z"}


class DataValidationError(ValueError):
    """A row of an input does not fit the expected schema, or the input cannot be read.

    Attributes: source (file or query), row (1-based row of that file, or None),
    line (1-based first line in a text file, or None), span (lines the row covers),
    column, value, problem, n_bad (bad rows in that file).
    """

    def __init__(self, source, problem, row=None, line=None, column=None, value=None, n_bad=None,
                 span=1):
        self.source, self.problem, self.row, self.line, self.span = source, problem, row, line, span
        self.column, self.value, self.n_bad = column, value, n_bad
        where = []
        if line is not None:
            where.append(f"line {line}" if span <= 1 else f"lines {line}-{line + span - 1}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        msg = f"{source}: {', '.join(where) + ': ' if where else ''}{problem}"
        if value is not None:
            msg += f" (value {value!r})"
        if n_bad and n_bad > 1:
            msg += f"; {n_bad:,} bad rows in this file. Pass on_bad_rows='skip' to drop and report them"
        super().__init__(msg)


class InputNotFoundError(DataValidationError, FileNotFoundError):
    """No file at the path, or none matching the glob."""


@dataclass
class IngestReport:
    """What happened while reading: counts, and every bad row.

    ``rows_read == rows_kept + n_bad`` always (the module docstring says what a row is).
    files: the files read, in order (["query"] for a query).
    bad_files: (n_bad,) int32 index into `files`.
    bad_rows: (n_bad,) int64 1-based row number within its file.
    bad_lines: (n_bad,) int64 1-based first line within its file (-1 where there are no lines).
    bad_spans: (n_bad,) int64 lines the row covers (more than 1 when a quote merged lines).
    reasons: (n_bad,) int8 bitmask of problems per row (0 = malformed record, see `messages`).
    messages: {index into the arrays: the parser's message} for malformed records.
    """

    source: str
    files: list = field(default_factory=list)
    rows_read: int = 0
    rows_kept: int = 0
    bad_files: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    bad_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bad_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bad_spans: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    reasons: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    messages: dict = field(default_factory=dict)

    @property
    def n_bad(self) -> int:
        return len(self.bad_rows)

    def counts_by_column(self) -> dict[str, int]:
        out = {}
        for bit, (column, _) in _PROBLEMS.items():
            n = int(np.count_nonzero(self.reasons & bit))
            if n:
                out[column or "<line break in value>"] = n
        n = int(np.count_nonzero(self.reasons == 0))
        if n:
            out["<malformed line>"] = n
        return out

    def where(self, i: int) -> str:
        """Where bad row i is: 'file line 3', 'file lines 3-5' or 'file row 7'."""
        name = self.files[self.bad_files[i]] if len(self.files) > 1 else ""
        line, span = int(self.bad_lines[i]), int(self.bad_spans[i])
        at = (f"row {self.bad_rows[i]}" if line < 0 else
              f"line {line}" if span <= 1 else f"lines {line}-{line + span - 1}")
        return f"{name} {at}".strip()

    def problem(self, i: int) -> str:
        """What is wrong with bad row i: the parser's message, or the problems of its columns."""
        if self.reasons[i] == 0:
            return self.messages.get(i, "malformed line")
        return "; ".join(f"{column}: {problem}" if column else problem
                         for bit, (column, problem) in _PROBLEMS.items() if self.reasons[i] & bit)

    def summary(self) -> str:
        if not self.n_bad:
            return f"{self.source}: {self.rows_kept:,} rows, no bad rows"
        first = ", ".join(self.where(i) for i in range(min(5, self.n_bad)))
        return (f"{self.source}: read {self.rows_read:,} rows, kept {self.rows_kept:,}, skipped "
                f"{self.n_bad:,} bad rows {self.counts_by_column()} (first: {first})")

    def _add(self, label: str, rows_read: int, rows_kept: int, bad: "_Bad") -> None:
        offset = self.n_bad
        self.messages.update({offset + i: m for i, m in bad.messages.items()})
        self.bad_files = np.r_[self.bad_files, np.full(len(bad.rows), len(self.files), np.int32)]
        self.bad_rows = np.r_[self.bad_rows, bad.rows]
        self.bad_lines = np.r_[self.bad_lines, bad.lines]
        self.bad_spans = np.r_[self.bad_spans, bad.spans]
        self.reasons = np.r_[self.reasons, bad.reasons].astype(np.int8)
        self.files.append(label)
        self.rows_read += rows_read
        self.rows_kept += rows_kept


@dataclass
class _Bad:
    """The bad rows of one input, sorted by position; the same fields as `IngestReport`."""

    rows: np.ndarray
    lines: np.ndarray
    spans: np.ndarray
    reasons: np.ndarray
    messages: dict
    columns: dict  # index -> column named by the parser (malformed records)
    values: dict  # index -> raw text of a malformed record
    table_rows: np.ndarray  # row in the scan's output (-1 for rejected records)


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


# -- inputs ------------------------------------------------------------------------

@dataclass
class _Input:
    """One file (or a query) as DuckDB will read it."""

    label: str  # as the user named it, for messages
    kind: str  # "csv", "jsonl", "json", "parquet" or "query"
    relation: str = ""  # FROM-clause (csv, json, parquet, query); jsonl builds its own per roles
    path: str = ""  # the bytes DuckDB reads: the file, or its UTF-8 copy
    gzipped: bool = False
    newline: bytes = b"\n"
    delimiter: str = ","
    header: list = field(default_factory=list)
    duplicated: set = field(default_factory=set)


class _session:
    """A DuckDB connection with the settings reading relies on (restored after); scratch files removed.

    TimeZone UTC: text times without an offset are UTC. No statistics propagation: Parquet
    statistics do not count NaN, so with it DuckDB folds ``isnan(weight)`` to false.
    """

    SETTINGS = {"TimeZone": "UTC", "disabled_optimizers": "statistics_propagation"}

    def __init__(self, connection, threads):
        self.connection, self.threads = connection, threads

    def __enter__(self):
        self.con = self.connection or duckdb.connect()
        if self.connection is not None:
            names = ", ".join(f"current_setting({_lit(k)})" for k in self.SETTINGS)
            self.before = dict(zip(self.SETTINGS, self.con.sql(f"SELECT {names}").fetchall()[0]))
        self._apply(self.SETTINGS)
        if self.threads:
            self.con.execute(f"SET threads = {int(self.threads)}")
        self.scratch = []
        return self.con, self.scratch

    def __exit__(self, *exc):
        for path in self.scratch:
            Path(path).unlink(missing_ok=True)
        if self.connection is None:
            self.con.close()  # frees DuckDB's buffers now rather than at garbage collection
        else:
            self._apply(self.before)

    def _apply(self, settings: dict) -> None:
        self.con.execute("; ".join(f"SET {k} = {_lit(str(v))}" for k, v in settings.items()))


def _expand(source) -> list[str]:
    """The files a path, folder or glob names, sorted; an error when there are none."""
    path = str(source)
    p = Path(path)
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*")
                       if f.is_file() and f.name.lower().removesuffix(".gz").endswith(_SUFFIXES))
        if not files:
            raise InputNotFoundError(path, f"a folder with no {'/'.join(_SUFFIXES)} files in it")
        return files
    if p.exists() or not any(ch in path for ch in "*?["):
        if not p.exists():
            raise InputNotFoundError(path, "no such file")
        return [path]
    files = sorted(f for f in glob.glob(path, recursive=True) if Path(f).is_file())
    if not files:
        raise InputNotFoundError(path, "no file matches this pattern")
    return files


def _open_input(path: str, delimiter: str | None, scratch: list, json_lines: bool = True) -> _Input:
    """Format, compression, encoding, line ending and CSV header of one file, from its bytes."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(8)
    except OSError as exc:
        raise DataValidationError(path, f"cannot open: {exc.strerror or exc}") from None
    for sig, name in _ARCHIVES.items():
        if magic.startswith(sig):
            raise DataValidationError(path, f"is a {name} archive; decompress it (gzip is read as is)")
    name = Path(path).name.lower().removesuffix(".gz")
    if magic.startswith(b"PAR1") or name.endswith((".parquet", ".pq")):
        if not magic.startswith(b"PAR1"):
            raise DataValidationError(path, f"not a Parquet file (starts with {magic!r}, not b'PAR1')")
        return _Input(path, "parquet", f"read_parquet({_lit(path)})", path)
    gzipped = magic.startswith(b"\x1f\x8b")
    if name != Path(path).name.lower() and not gzipped:
        log.info("%s: named .gz but not gzip-compressed; read as plain text", path)
    head = _head(path, gzipped)
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        if name.endswith((".json", ".jsonl", ".ndjson")):
            head = b""
        else:
            raise DataValidationError(path, "the file is empty (no header line)")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        with tempfile.NamedTemporaryFile(prefix="sketchrec-utf8-", suffix="-" + name, delete=False) as fh:
            scratch.append(fh.name)
        _transcode(path, gzipped, fh.name)
        inp = _open_input(fh.name, delimiter, scratch, json_lines)
        inp.label = path
        return inp
    newline = b"\n" if b"\n" in head or b"\r" not in head else b"\r"
    inp = _Input(path, "csv", path=path, gzipped=gzipped, newline=newline)
    compression = "'gzip'" if gzipped else "'none'"
    if name.endswith((".json", ".jsonl", ".ndjson")):
        if name.endswith(".json") and head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
            inp.kind, inp.relation = "json", f"read_json({_lit(path)}, format='array', compression={compression})"
        elif not json_lines:
            inp.kind = "json"
            inp.relation = f"read_json({_lit(path)}, format='newline_delimited', compression={compression})"
        else:
            inp.kind = "jsonl"
        return inp
    inp.header, inp.delimiter = _sniff_header(path, head, delimiter, name.endswith(".tsv"))
    seen = {}
    for i, col in enumerate(inp.header):
        seen[col] = seen.get(col, 0) + 1
        if seen[col] > 1:
            inp.duplicated.add(col)
            inp.header[i] = f"{col}_{seen[col]}"
    cols = ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in inp.header)
    inp.relation = (f"read_csv({_lit(path)}, header=true, auto_detect=false, delim={_lit(inp.delimiter)}, "
                    f"quote='\"', escape='\"', columns={{{cols}}}, strict_mode=true, null_padding=false, "
                    f"compression={compression}, {_STORE_REJECTS})")
    return inp


def _head(path: str, gzipped: bool, size: int = 1 << 16) -> bytes:
    try:
        with (gzip.open if gzipped else open)(path, "rb") as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataValidationError(path, f"cannot decompress (gzip): {exc}") from None


def _transcode(path: str, gzipped: bool, copy: str) -> None:
    """A UTF-8 copy of a UTF-16 file (the BOM tells the byte order), in 1 MiB blocks."""
    try:
        with (gzip.open if gzipped else open)(path, "rb") as raw, open(copy, "w", encoding="utf-8",
                                                                        newline="") as out:
            text = io.TextIOWrapper(raw, encoding="utf-16", newline="")
            while block := text.read(1 << 20):
                out.write(block)
    except (UnicodeError, OSError, EOFError, zlib.error) as exc:
        raise DataValidationError(path, f"starts with a UTF-16 byte-order mark but is not UTF-16: {exc}") from None


def _sniff_header(path: str, head: bytes, delimiter: str | None, tsv: bool) -> tuple[list[str], str]:
    """Header columns and delimiter from the first (decoded) bytes of a text file."""
    text = head.decode("utf-8-sig", errors="replace")
    first = text.splitlines()[0] if text else ""
    if not first.strip():
        raise DataValidationError(path, "line 1 is blank; expected the header", line=1)
    if delimiter is None:  # the header's commonest separator: data rows may be the broken ones
        delimiter = "\t" if tsv else max(",\t;|", key=first.count)
    header = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    return [h.strip() or f"column{i}" for i, h in enumerate(header)], delimiter


def _relation(inp: _Input, roles: dict) -> str:
    """FROM-clause of an input; JSON lines are read as text lines and parsed per role column."""
    if inp.kind != "jsonl":
        return inp.relation
    compression = "'gzip'" if inp.gzipped else "'none'"
    lines = (f"read_csv({_lit(inp.path)}, header=false, auto_detect=false, delim='\x01', quote='', "
             f"escape='', columns={{'_line': 'VARCHAR'}}, strict_mode=true, compression={compression}, "
             f"{_STORE_REJECTS})")
    bits = {c: 0 for c in roles.values()}
    for role, col in roles.items():
        bits[col] |= _ROLE_BITS[role]
    paths = {c: _lit("$." + json.dumps(c)) for c in bits}
    values = ", ".join(f"_o->>{paths[c]} AS {_q(c)}" for c in bits)
    nested = " | ".join(f"CASE WHEN json_type(_o->{paths[c]}) IN ('ARRAY', 'OBJECT') THEN {b} ELSE 0 END"
                        for c, b in bits.items()) or "0"
    return (f"(SELECT {values + ', ' if values else ''}({nested}) AS _nested, _line IS NULL AS _blank, "
            f"CASE WHEN _line IS NOT NULL AND _o IS NULL THEN {_NOT_JSON_OBJECT} ELSE 0 END AS _shape, "
            f"CASE WHEN _line IS NOT NULL AND _o IS NULL THEN _line END AS _raw FROM "
            f"(SELECT _line, CASE WHEN json_type(_v) = 'OBJECT' THEN _v END AS _o FROM "
            f"(SELECT _line, CASE WHEN json_valid(_line) THEN _line END AS _v FROM {lines})))")


# -- reading one input ---------------------------------------------------------------

def _read_input(con, inp: _Input, roles: dict, timestamp_unit, on_bad_rows) -> tuple[pa.Table, int, _Bad]:
    """Kept rows (role columns), rows read and bad rows of one input; raises in raise mode."""
    relation = _relation(inp, roles)
    types = dict.fromkeys(roles.values(), "VARCHAR") if inp.kind == "jsonl" else _describe(con, inp, relation)
    _require_columns(inp, types, list(roles.values()))
    derived, exprs, checks = _typed_columns(inp.label, roles, types, timestamp_unit,
                                             inp.newline.decode() if inp.kind == "csv" else None)
    if inp.kind == "jsonl":
        checks += ["_nested", "_shape"]
    extra = ", _blank, _raw" if inp.kind == "jsonl" else ""
    inner = f"(SELECT *{''.join(f', {e} AS {name}' for name, e in derived.items())} FROM {relation})"
    query = (f"SELECT {', '.join(f'{e} AS {r}' for r, e in exprs.items())}, "
             f"({' | '.join(checks)})::TINYINT AS _bad{extra} FROM {inner}")
    table = _run(con, inp, _FORGET_REJECTS + query)
    rejects = _rejects(con) if inp.kind in ("csv", "jsonl") else []
    bad = table.column("_bad").to_numpy()
    blank = table.column("_blank").to_numpy(zero_copy_only=False) if inp.kind == "jsonl" else None
    if blank is not None:
        bad = np.where(blank, 0, bad)  # a blank line is not a row
    bad_idx = np.flatnonzero(bad)
    rows_read = table.num_rows + len(rejects) - (int(blank.sum()) if blank is not None else 0)
    raw = table.column("_raw").take(pa.array(bad_idx)).to_pylist() if inp.kind == "jsonl" else None
    located = _locate(con, inp, relation, bad_idx, bad[bad_idx], table.num_rows, rejects, blank, raw)
    if located.reasons.size and on_bad_rows == "raise":
        raise _first_error(con, inp, relation, located, roles)
    if located.reasons.size or (blank is not None and blank.any()):
        table = table.filter(pa.array((bad == 0) if blank is None else (bad == 0) & ~blank))
    table = table.select(list(exprs))
    return table, rows_read, located


def _describe(con, inp: _Input, relation: str) -> dict:
    if inp.kind == "csv":
        return dict.fromkeys(inp.header, "VARCHAR")
    try:
        return {r[0]: r[1] for r in con.sql(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
    except duckdb.Error as exc:
        raise _read_error(inp.label, exc) from None


def _require_columns(inp: _Input, types: dict, wanted: list) -> None:
    if inp.kind == "jsonl":
        return  # keys are per line: a missing one is a missing value on that line
    missing = [c for c in wanted if c not in types]
    if missing:
        hint = f" (delimiter {inp.delimiter!r}; pass delimiter= if that is wrong)" if inp.kind == "csv" else ""
        raise DataValidationError(inp.label, f"missing column(s) {missing}; the file has "
                                             f"{list(types)}{hint}")
    twice = [c for c in wanted if c in inp.duplicated]
    if twice:
        raise DataValidationError(inp.label, f"column(s) {twice} appear more than once in the header",
                                  line=1)


def _run(con, inp: _Input, query: str) -> pa.Table:
    try:
        table = con.sql(query).arrow()
        return table.read_all() if isinstance(table, pa.RecordBatchReader) else table
    except duckdb.Error as exc:  # unreadable input: a broken gzip stream, a truncated Parquet file...
        raise _read_error(inp.label, exc) from None


def _read_error(label: str, exc: Exception) -> DataValidationError:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return DataValidationError(label, f"cannot read: {first.split('Error: ', 1)[-1]}")


def _typed_columns(label, roles, types, timestamp_unit, newline=None):
    """SQL expression per role and SQL bit-checks that flag bad rows; unusable column types raise.

    newline: the line break of a CSV/TSV file (None for other inputs), flagged inside values.
    Returns (derived, exprs, checks): `derived` are columns computed once in an inner SELECT
    (seconds, weight as DOUBLE) that `exprs` and `checks` use several times each.
    """
    derived, exprs, checks = {}, {}, []

    def refuse(role, expected):
        col = roles[role]
        raise DataValidationError(label, f"the {role} column has type {types[col]}; expected {expected}",
                                  column=col)

    for role, bit in (("user", 1), ("item", 2)):
        col, kind = _q(roles[role]), types[roles[role]]
        if kind == "VARCHAR":
            exprs[role] = col
            checks.append(_blank_check(col, bit))
        elif kind in _INTS or kind in _WIDE_IDS:
            exprs[role] = col if kind in _INTS else f"{col}::VARCHAR"
            checks.append(f"(CASE WHEN {col} IS NULL THEN {bit} ELSE 0 END)")
        elif kind in _FLOATS or kind.startswith("DECIMAL"):  # integer ids stored as floats (pandas NaN)
            exprs[role] = f"TRY_CAST({col} AS BIGINT)"
            checks.append(f"(CASE WHEN {col} = trunc({col}) AND TRY_CAST({col} AS BIGINT) IS NOT NULL "
                          f"THEN 0 ELSE {bit} END)")
        else:
            refuse(role, "text or integer ids")
    if "timestamp" in roles:
        col, kind = _q(roles["timestamp"]), types[roles["timestamp"]]
        if kind.startswith("TIMESTAMP") or kind == "DATE":
            seconds = f"epoch({col})"  # a naive TIMESTAMP is UTC; TIMESTAMPTZ is an instant
        elif kind == "VARCHAR" or kind in _NUMBERS or kind.startswith("DECIMAL"):
            number = f"TRY_CAST({col} AS DOUBLE)"
            scale = {"s": 1, "ms": 1e-3, "us": 1e-6, None: None}[timestamp_unit]
            if scale is None:  # guess per value: > 1e14 us, > 1e11 ms, else s
                number = (f"(CASE WHEN {number} > 1e14 THEN {number} * 1e-6 "
                          f"WHEN {number} > 1e11 THEN {number} * 1e-3 ELSE {number} END)")
            else:
                number = f"({number} * {scale})"
            seconds = f"COALESCE({number}, epoch(TRY_CAST({col} AS TIMESTAMPTZ)))" if kind == "VARCHAR" \
                else number
        else:
            refuse("timestamp", "text, numbers, TIMESTAMP or DATE")
        derived["_seconds"] = seconds
        ok = f"(_seconds BETWEEN {_TS_RANGE[0]} AND {_TS_RANGE[1]} AND NOT isnan(_seconds))"
        exprs["timestamp"] = f"CASE WHEN {ok} THEN CAST(floor(_seconds) AS BIGINT) END"
        checks.append(f"(CASE WHEN {ok} THEN 0 ELSE 4 END)")
    if "weight" in roles:
        col, kind = _q(roles["weight"]), types[roles["weight"]]
        if not (kind == "VARCHAR" or kind in _NUMBERS or kind.startswith("DECIMAL")):
            refuse("weight", "numbers")
        derived["_weight"] = f"TRY_CAST({col} AS DOUBLE)"
        ok = f"(_weight BETWEEN 0 AND {_FLOAT32_MAX!r} AND NOT isnan(_weight))"
        exprs["weight"] = f"CASE WHEN {ok} THEN CAST(_weight AS FLOAT) END"
        checks.append(f"(CASE WHEN {ok} THEN 0 ELSE 8 END)")
    if "event" in roles:
        col, kind = _q(roles["event"]), types[roles["event"]]
        if kind != "VARCHAR" and kind not in _INTS | _WIDE_IDS:
            refuse("event", "text or integer event types")
        exprs["event"] = f"{col}::VARCHAR"
        checks.append(_blank_check(f"{col}::VARCHAR", 16))
    if newline:  # a line break inside an id or event type is a quote that swallowed lines
        breaks = [f"contains({_q(roles[r])}, chr({ord(newline)}))" for r in ("user", "item", "event")
                  if r in roles and types[roles[r]] == "VARCHAR"]
        if breaks:
            checks.append(f"(CASE WHEN {' OR '.join(breaks)} THEN {_LINE_BREAK} ELSE 0 END)")
    return derived, exprs, checks


def _blank_check(col: str, bit: int) -> str:
    """`bit` where the text is missing or only blanks; trims only values below '!' (empty or blank-led)."""
    return f"(CASE WHEN {col} IS NULL OR ({col} < '!' AND trim({col}, {_BLANKS}) = '') THEN {bit} ELSE 0 END)"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- where the bad rows are ------------------------------------------------------------

def _rejects(con) -> list[tuple]:
    """(parser line, column, error, raw text) of each record the last scan rejected, in order."""
    try:
        # one entry per record (a record can fail several checks)
        return con.sql("SELECT line, min(column_name), min(error_message), min(csv_line) FROM sketchrec_rejects "
                       "WHERE scan_id = (SELECT max(scan_id) FROM sketchrec_rejects) "
                       "GROUP BY line ORDER BY line").fetchall()
    except duckdb.Error:
        return []


def _locate(con, inp: _Input, relation: str, bad_idx, reasons, n_rows: int, rejects: list,
            blank=None, raw_json=None) -> _Bad:
    """Row number, first line and line span of every bad row and rejected record of one input.

    bad_idx: (n_bad,) rows of the scan's output with a nonzero reason mask `reasons`.
    blank: (n_rows,) bool, JSON lines only: the row is a blank line. raw_json: text of each bad
    row of a JSON-lines file (None where it is a JSON object).
    """
    n_rej = len(rejects)
    if not len(bad_idx) and not n_rej:
        empty = np.zeros(0, np.int64)
        return _Bad(empty, empty, empty, np.zeros(0, np.int8), {}, {}, {}, empty)
    if inp.kind == "csv":
        row_line, row_no, nl, rej_at, rej_no, rej_span = _csv_lines(con, inp, relation, n_rows, rejects)
        spans = np.r_[nl[bad_idx], rej_span] + 1
    elif inp.kind == "jsonl":
        row_line, row_no, rej_at, rej_no = _jsonl_lines(n_rows, rejects, blank)
        spans = np.ones(len(bad_idx) + n_rej, np.int64)
    else:  # no lines: Parquet, JSON arrays, queries
        row_line, row_no = np.full(n_rows, -1, np.int64), np.arange(1, n_rows + 1)
        rej_at = rej_no = np.zeros(0, np.int64)
        spans = np.ones(len(bad_idx), np.int64)
    reasons = np.r_[reasons, np.zeros(n_rej, np.int8)].astype(np.int8)
    messages, columns, values = {}, {}, {}
    for i in np.flatnonzero(reasons & _NOT_JSON_OBJECT):  # per bad line, for the report only
        messages[i], values[i] = _json_problem(raw_json[i]), raw_json[i]
        reasons[i] = 0
    for j, (_, column, message, raw) in enumerate(rejects, start=len(bad_idx)):
        messages[j], values[j] = f"malformed line: {message}", raw
        if column:
            columns[j] = column
    lines, rows = np.r_[row_line[bad_idx], rej_at], np.r_[row_no[bad_idx], rej_no]
    order = np.lexsort((rows, lines))
    new = {int(old): i for i, old in enumerate(order)}
    return _Bad(rows=rows[order].astype(np.int64), lines=lines[order].astype(np.int64),
                spans=spans[order].astype(np.int64), reasons=reasons[order],
                messages={new[i]: m for i, m in messages.items()}, columns={new[i]: c for i, c in columns.items()},
                values={new[i]: v for i, v in values.items()},
                table_rows=np.r_[bad_idx, np.full(n_rej, -1)][order])


def _csv_lines(con, inp: _Input, relation: str, n_rows: int, rejects: list) -> tuple:
    """First line and row number of every kept and rejected record of a CSV file, and their extra lines."""
    nl_char = inp.newline.decode()
    rej_line = np.array([r[0] for r in rejects], np.int64)
    rej_span = np.array([-1 if "unterminated" in (r[2] or "") else (r[3] or "").strip("\r\n").count(nl_char)
                         for r in rejects], np.int64)
    blank = _blank_lines(inp)
    data_lines = int(len(blank) - 1 - np.count_nonzero(blank[1:]))
    if data_lines == n_rows + len(rejects) and not rej_span.any():
        nl = np.zeros(n_rows, np.int64)  # one line per record: no need to count breaks in values
    else:
        nl = _line_breaks_per_row(con, inp, relation, n_rows)
    row_line, row_no, rej_at, rej_no, rej_span = _walk_kernel()(blank, nl, rej_line, rej_span)
    return row_line, row_no, nl, rej_at, rej_no, rej_span


def _jsonl_lines(n_rows: int, rejects: list, blank: np.ndarray) -> tuple:
    """Line and row number of every row and rejected line of a JSON-lines file.

    The scan has one row per physical line (blank ones too) except the lines the parser rejected.
    """
    rej_at = np.array([r[0] for r in rejects], np.int64)
    row_line = np.setdiff1d(np.arange(1, n_rows + len(rejects) + 1), rej_at, assume_unique=True)
    is_row = np.ones(n_rows + len(rejects), bool)
    is_row[row_line - 1] = ~blank
    number = np.cumsum(is_row)
    return row_line, number[row_line - 1], rej_at, number[rej_at - 1]


def _first_error(con, inp: _Input, relation: str, bad: _Bad, roles: dict) -> DataValidationError:
    """The error for the first bad row of an input (raise mode)."""
    line = int(bad.lines[0]) if bad.lines[0] > 0 else None
    where = dict(row=int(bad.rows[0]), line=line, span=int(bad.spans[0]), n_bad=len(bad.rows))
    reason = int(bad.reasons[0])
    if reason == 0:
        raw = bad.values.get(0)
        value = raw if raw is None or len(raw) <= 200 else raw[:200] + "..."
        return DataValidationError(inp.label, bad.messages.get(0, "malformed line"), column=bad.columns.get(0),
                                   value=value, **where)
    columns = list(dict.fromkeys(roles.values()))
    raw = dict(zip(columns, _raw_values(con, relation, int(bad.table_rows[0]), columns)))
    if reason & _LINE_BREAK:
        column = next((c for c, v in raw.items() if isinstance(v, str) and ("\n" in v or "\r" in v)), None)
        problem = _PROBLEMS[_LINE_BREAK][1]
    else:
        role, problem = _PROBLEMS[reason & -reason]
        column = roles[role]
    return DataValidationError(inp.label, problem, column=column, value=raw.get(column), **where)


def _raw_values(con, relation: str, row: int, columns: list) -> tuple:
    return con.sql(f"SELECT {', '.join(_q(c) for c in columns)} FROM {relation} "
                   f"LIMIT 1 OFFSET {row}").fetchall()[0]


def _json_problem(line: str) -> str:
    try:
        value = json.loads(line)
    except ValueError as exc:
        return f"malformed line: not valid JSON ({exc})"
    return f"malformed line: a JSON {type(value).__name__}, not an object"


def _blank_lines(inp: _Input) -> np.ndarray:
    """(n_lines,) bool: physical line i+1 of a text file is empty; numpy over 16 MiB blocks of bytes."""
    newline = inp.newline[0]
    flags, line_start, offset, previous = [], 0, 0, 0
    with (gzip.open if inp.gzipped else open)(inp.path, "rb") as fh:
        while block := fh.read(1 << 24):
            b = np.frombuffer(block, np.uint8)
            ends = np.flatnonzero(b == newline)
            starts = np.r_[line_start, ends[:-1] + offset + 1] if len(ends) else np.zeros(0, np.int64)
            length = ends + offset - starts
            before = np.where(ends > 0, b[np.maximum(ends - 1, 0)], previous)
            flags.append((length == 0) | ((length == 1) & (before == 13)))  # "\r\n" alone is blank too
            if len(ends):
                line_start = int(ends[-1]) + offset + 1
            previous, offset = b[-1], offset + len(b)
    if offset > line_start:
        flags.append(np.zeros(1, bool))  # a last line without a line break
    return np.concatenate(flags) if flags else np.zeros(0, bool)


def _line_breaks_per_row(con, inp: _Input, relation: str, n_rows: int) -> np.ndarray:
    """(n_rows,) int64 line breaks inside each record's values (all columns): a second scan."""
    char = "chr(13)" if inp.newline == b"\r" else "chr(10)"
    count = " + ".join(f"coalesce(length({_q(c)}) - length(replace({_q(c)}, {char}, '')), 0)"
                       for c in inp.header)
    nl = _run(con, inp, f"SELECT ({count})::BIGINT AS nl FROM {relation}").column("nl").to_numpy()
    if len(nl) != n_rows:
        raise DataValidationError(inp.label, "the file changed while it was read")
    return nl.astype(np.int64)


def _walk_records(blank, nl, rej_line, rej_span):
    """Physical first line and row number of every record of a CSV file, in one pass.

    blank: (n_lines,) bool per physical line; nl: (n_rows,) line breaks inside each kept
    record; rej_line: (n_rej,) ascending DuckDB line numbers of the rejected records (DuckDB
    counts a multi-line record as one line); rej_span: extra lines each rejected record
    covers (-1: to the end of the file). Line 1 is the header. O(n_lines).
    """
    n_lines, n_rows, n_rej = len(blank), len(nl), len(rej_line)
    row_line = np.zeros(n_rows, np.int64)
    row_no = np.zeros(n_rows, np.int64)
    rej_at = np.zeros(n_rej, np.int64)
    rej_no = np.zeros(n_rej, np.int64)
    spans = rej_span.copy()
    line, extra, i, r, number = 2, 0, 0, 0, 0
    while i < n_rows or r < n_rej:
        while line <= n_lines and blank[line - 1]:
            line += 1
        number += 1
        if r < n_rej and (i == n_rows or rej_line[r] <= line - extra):
            span = rej_span[r] if rej_span[r] >= 0 else max(n_lines - line, 0)
            rej_at[r], rej_no[r], spans[r] = line, number, span
            extra += span
            line += span + 1
            r += 1
        else:
            row_line[i], row_no[i] = line, number
            extra += nl[i]
            line += nl[i] + 1
            i += 1
    return row_line, row_no, rej_at, rej_no, spans


@functools.cache
def _walk_kernel():
    import numba  # compiled on first use only: clean files never need it
    return numba.njit(cache=True, nogil=True)(_walk_records)


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
