"""Where the bad rows are: the row number, first line and line span of every bad row and
rejected record of one input, worked out only when there is something to report (a byte
scan for blank lines, then one walk over the records), and the error for the first one.
"""

from __future__ import annotations

import functools
import gzip
import json

import duckdb
import numpy as np

from sketchrec.data.readers.errors import _LINE_BREAK, _NOT_JSON_OBJECT, _PROBLEMS, DataValidationError, _Bad
from sketchrec.data.readers.inputs import _Input, _q, _run

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
