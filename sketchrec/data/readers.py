"""Read interaction events from files or SQL into `Interactions`, validated at the edge.

Everything goes through DuckDB (parallel parsing, typed casts, predicate
evaluation) and pyarrow (hash-based id factorisation): there is no Python loop
per row. Bad rows are found in one SQL pass that computes a reason bitmask per
row; they either raise a `DataValidationError` naming the file, row and column,
or (with ``on_bad_rows="skip"``) are dropped and reported in `Interactions.report`.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sketchrec.data.idmap import IdMap
from sketchrec.data.interactions import Interactions

log = logging.getLogger(__name__)

ROLES = ("user", "item", "timestamp", "event", "weight")
# bit per problem; a row's reason mask is the OR of the bits that apply
_PROBLEMS = {
    1: ("user", "empty or missing id"),
    2: ("item", "empty or missing id"),
    4: ("timestamp", "missing or unparseable timestamp"),
    8: ("weight", "missing, non-numeric, NaN or negative weight"),
    16: ("event", "missing event type"),
}


class DataValidationError(ValueError):
    """A row of an input does not fit the expected schema.

    Attributes: source (file or query), row (1-based data row, or None),
    line (1-based line in a text file, or None), column, value, problem.
    """

    def __init__(self, source, problem, row=None, line=None, column=None, value=None, n_bad=None):
        self.source, self.problem, self.row, self.line = source, problem, row, line
        self.column, self.value, self.n_bad = column, value, n_bad
        where = []
        if line is not None:
            where.append(f"line {line}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        msg = f"{source}: {', '.join(where) + ': ' if where else ''}{problem}"
        if value is not None:
            msg += f" (value {value!r})"
        if n_bad and n_bad > 1:
            msg += f"; {n_bad:,} bad rows in all. Pass on_bad_rows='skip' to drop and report them"
        super().__init__(msg)


@dataclass
class IngestReport:
    """What happened while reading: counts, and every skipped row.

    bad_rows: (n_bad,) int64 1-based data-row numbers that were skipped.
    bad_lines: (n_bad,) int64 1-based file line numbers (text formats, else -1).
    reasons: (n_bad,) int8 bitmask of problems per skipped row (0 = malformed line).
    """

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    bad_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bad_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    reasons: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    malformed: list = field(default_factory=list)  # (line, error text) from the parser

    @property
    def n_bad(self) -> int:
        return len(self.bad_rows) + len(self.malformed)

    def counts_by_column(self) -> dict[str, int]:
        out = {}
        for bit, (column, _) in _PROBLEMS.items():
            n = int(np.count_nonzero(self.reasons & bit))
            if n:
                out[column] = n
        if self.malformed:
            out["<malformed line>"] = len(self.malformed)
        return out

    def summary(self) -> str:
        if not self.n_bad:
            return f"{self.source}: {self.rows_kept:,} rows, no bad rows"
        first = ", ".join(str(x) for x in sorted(
            [int(v) for v in self.bad_lines[:5] if v > 0] + [m[0] for m in self.malformed[:5]])[:5])
        return (f"{self.source}: kept {self.rows_kept:,} rows, skipped {self.n_bad:,} bad rows "
                f"{self.counts_by_column()} (first lines: {first})")


# -- public entry point ---------------------------------------------------------

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
    source : path or glob of CSV/TSV (optionally .gz), Parquet or JSON-lines files.
    user, item, timestamp, event, weight : column names for each role (user may
        be a session id). Only user and item are required.
    sql : instead of `source`, any DuckDB query (files, attached databases, ...).
    delimiter : CSV delimiter; default from the extension (.tsv = tab) or sniffed.
    timestamp_unit : "s", "ms" or "us" for numeric timestamps; default guesses
        from magnitude (logged). Text timestamps are parsed as ISO dates/times.
    on_bad_rows : "raise" (default) or "skip" (drop and report in `.report`).
    """
    if on_bad_rows not in ("raise", "skip"):
        raise ValueError(f"on_bad_rows must be 'raise' or 'skip', got {on_bad_rows!r}")
    if (source is None) == (sql is None):
        raise ValueError("give exactly one of source= or sql=")
    roles = {"user": user, "item": item, "timestamp": timestamp, "event": event, "weight": weight}
    roles = {r: c for r, c in roles.items() if c is not None}
    con = connection or duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    label = str(source) if source is not None else "query"
    report = IngestReport(source=label)

    relation_sql, is_text = _relation_sql(con, source, sql, delimiter, on_bad_rows, report)
    columns = {r[0]: r[1] for r in con.sql(f"DESCRIBE SELECT * FROM {relation_sql}").fetchall()}
    missing = [c for c in roles.values() if c not in columns]
    if missing:
        raise DataValidationError(label, f"missing column(s) {missing}; the input has {list(columns)}")

    exprs, checks = _typed_columns(roles, columns, timestamp_unit)
    query = (f"SELECT {', '.join(f'{e} AS {r}' for r, e in exprs.items())}, "
             f"({' | '.join(checks) if checks else '0'})::TINYINT AS _bad FROM {relation_sql}")
    try:
        table = con.sql(query).arrow()
    except duckdb.Error as exc:  # malformed text (wrong column count, bad quoting, encoding)
        raise _parser_error(label, exc) from None
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    if on_bad_rows == "skip" and is_text:
        _collect_rejects(con, report)

    bad = table.column("_bad").to_numpy()
    bad_idx = np.flatnonzero(bad)
    report.rows_read = table.num_rows + len(report.malformed)
    if len(bad_idx):
        lines = _data_row_lines(bad_idx, report, is_text)
        if on_bad_rows == "raise":
            i = int(bad_idx[0])
            bit = int(bad[i]) & -int(bad[i])  # lowest problem bit of the first bad row
            role, problem = _PROBLEMS[bit]
            raw = con.sql(f"SELECT * FROM {relation_sql} LIMIT 1 OFFSET {i}").fetchall()[0] if is_text else None
            value = raw[list(columns).index(roles[role])] if raw is not None else None
            raise DataValidationError(label, problem, row=i + 1, line=int(lines[0]) if is_text else None,
                                      column=roles[role], value=value, n_bad=len(bad_idx))
        report.bad_rows, report.bad_lines, report.reasons = bad_idx + 1, lines, bad[bad_idx].astype(np.int8)
        table = table.filter(pc.equal(table.column("_bad"), 0))
    report.rows_kept = table.num_rows
    if report.n_bad:
        log.warning(report.summary())
    if connection is None:
        con.close()  # frees DuckDB's buffers now rather than at garbage collection
    return _to_interactions(table, roles, report)


def read_columns(source: str | Path | None = None, *, columns: list[str], sql: str | None = None,
                 delimiter: str | None = None, threads: int | None = None) -> pa.Table:
    """Named columns of a file or query as an Arrow table (text formats read as strings).

    For inputs that are not events: entity columns for graphs, item tables, ...
    Missing columns raise a `DataValidationError` naming the input.
    """
    if (source is None) == (sql is None):
        raise ValueError("give exactly one of source= or sql=")
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    label = str(source) if source is not None else "query"
    relation_sql, _ = _relation_sql(con, source, sql, delimiter, "raise", IngestReport(source=label))
    available = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {relation_sql}").fetchall()]
    missing = [c for c in columns if c not in available]
    if missing:
        raise DataValidationError(label, f"missing column(s) {missing}; the input has {available}")
    try:
        table = con.sql(f"SELECT {', '.join(_q(c) for c in columns)} FROM {relation_sql}").arrow()
    except duckdb.Error as exc:
        raise _parser_error(label, exc) from None
    return table.read_all() if isinstance(table, pa.RecordBatchReader) else table


# -- helpers ---------------------------------------------------------------------

def _relation_sql(con, source, sql, delimiter, on_bad_rows, report) -> tuple[str, bool]:
    """A FROM-clause for the input; text formats are read all-VARCHAR so casts can be checked."""
    if sql is not None:
        return f"({sql})", False
    path = str(source)
    lower = path.lower().removesuffix(".gz")
    quoted = path.replace("'", "''")
    if lower.endswith((".parquet", ".pq")) or ".parquet" in lower:
        return f"read_parquet('{quoted}')", False
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return f"read_json('{quoted}', format='newline_delimited')", False
    if not any(ch in path for ch in "*?[") and not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file")
    header, delim = _sniff_header(path, delimiter)
    cols = ", ".join(f"'{c.replace(chr(39), chr(39) * 2)}': 'VARCHAR'" for c in header)
    esc_delim = delim.replace("'", "''")
    opts = (f"header=true, auto_detect=false, delim='{esc_delim}', quote='\"', escape='\"', "
            f"columns={{{cols}}}, strict_mode=true, null_padding=false")
    if on_bad_rows == "skip":
        opts += ", ignore_errors=true, store_rejects=true"
    return f"read_csv('{quoted}', {opts})", True


def _sniff_header(path: str, delimiter: str | None) -> tuple[list[str], str]:
    """Header columns and delimiter from the first lines of a (gzipped) text file."""
    first = path if not any(ch in path for ch in "*?[") else sorted(Path().glob(path))[0]
    opener = gzip.open if str(first).endswith(".gz") else open
    with opener(first, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        head = "".join(fh.readline() for _ in range(20))
    if not head:
        raise DataValidationError(path, "the file is empty")
    if delimiter is None:
        if str(first).lower().removesuffix(".gz").endswith(".tsv"):
            delimiter = "\t"
        else:
            try:
                delimiter = csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
            except csv.Error:
                delimiter = ","
    header = next(csv.reader(io.StringIO(head.splitlines()[0]), delimiter=delimiter))
    return [h.strip() for h in header], delimiter


def _typed_columns(roles, columns, timestamp_unit):
    """SQL expression per role and SQL bit-checks that flag bad rows."""
    exprs, checks = {}, []
    for role, bit in (("user", 1), ("item", 2)):
        col = _q(roles[role])
        if columns[roles[role]] == "VARCHAR":
            exprs[role] = col
            checks.append(f"(CASE WHEN {col} IS NULL OR trim({col}) = '' THEN {bit} ELSE 0 END)")
        else:
            exprs[role] = col
            checks.append(f"(CASE WHEN {col} IS NULL THEN {bit} ELSE 0 END)")
    if "timestamp" in roles:
        col, kind = _q(roles["timestamp"]), columns[roles["timestamp"]]
        if kind.startswith("TIMESTAMP") or kind == "DATE":
            seconds = f"epoch({col}::TIMESTAMP)"
        else:
            text = f"{col}::VARCHAR"
            scale = {"s": 1, "ms": 1e-3, "us": 1e-6, None: None}[timestamp_unit]
            numeric = f"TRY_CAST({text} AS DOUBLE)"
            if scale is None:  # guess per value: > 1e14 us, > 1e11 ms, else s
                numeric = (f"(CASE WHEN {numeric} > 1e14 THEN {numeric} * 1e-6 "
                           f"WHEN {numeric} > 1e11 THEN {numeric} * 1e-3 ELSE {numeric} END)")
            else:
                numeric = f"({numeric} * {scale})"
            seconds = f"COALESCE({numeric}, epoch(TRY_CAST({text} AS TIMESTAMP)))"
        exprs["timestamp"] = f"CAST(floor({seconds}) AS BIGINT)"
        checks.append(f"(CASE WHEN {seconds} IS NULL OR isnan({seconds}) THEN 4 ELSE 0 END)")
    if "weight" in roles:
        w = f"TRY_CAST({_q(roles['weight'])} AS DOUBLE)"
        exprs["weight"] = f"CAST({w} AS FLOAT)"
        checks.append(f"(CASE WHEN {w} IS NULL OR isnan({w}) OR {w} < 0 OR isinf({w}) THEN 8 ELSE 0 END)")
    if "event" in roles:
        col = _q(roles["event"])
        exprs["event"] = f"{col}::VARCHAR"
        checks.append(f"(CASE WHEN {col} IS NULL OR trim({col}::VARCHAR) = '' THEN 16 ELSE 0 END)")
    return exprs, checks


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _parser_error(label, exc) -> DataValidationError:
    text = str(exc)
    m = re.search(r"Line:\s*(\d+)", text)
    line = int(m.group(1)) if m else None
    lines = text.splitlines()
    detail = next((ln.strip() for ln in lines if "Expected" in ln), lines[0] if lines else text)
    orig = re.search(r"Original Line:\s*(.*)", text)
    return DataValidationError(label, f"malformed line: {detail}", line=line,
                               value=orig.group(1) if orig else None)


def _collect_rejects(con, report: IngestReport) -> None:
    try:
        # one entry per line (a line can fail several checks; scans may repeat)
        rows = con.sql("SELECT line, min(error_message) FROM reject_errors "
                       "WHERE scan_id = (SELECT max(scan_id) FROM reject_errors) "
                       "GROUP BY line ORDER BY line").fetchall()
    except duckdb.Error:
        return
    report.malformed = [(int(line), msg) for line, msg in rows]


def _data_row_lines(bad_idx: np.ndarray, report: IngestReport, is_text: bool) -> np.ndarray:
    """File line of each bad data row: row i is the i-th line after the header not rejected."""
    if not is_text:
        return np.full(len(bad_idx), -1, np.int64)
    rejected = np.array(sorted(line for line, _ in report.malformed), dtype=np.int64)
    lines = bad_idx + 2  # header is line 1; data row 0 is line 2
    if len(rejected):
        # shift past every rejected line at or before the candidate line (fixed point)
        for _ in range(len(rejected) + 1):
            shifted = bad_idx + 2 + np.searchsorted(rejected, lines, side="right")
            if np.array_equal(shifted, lines):
                break
            lines = shifted
    return lines


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
