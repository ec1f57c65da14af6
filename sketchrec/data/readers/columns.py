"""Reading one input: the role columns typed and checked in one SQL pass (a reason bitmask per
row), bad rows located and either raised or dropped.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from sketchrec.data.readers.errors import _LINE_BREAK, DataValidationError, _Bad
from sketchrec.data.readers.inputs import _FORGET_REJECTS, _Input, _q, _read_error, _relation, _run
from sketchrec.data.readers.locate import _first_error, _locate, _rejects

_TS_RANGE = (-62135596800, 253402300799)  # 0001-01-01 .. 9999-12-31 UTC, Python datetime's range
_FLOAT32_MAX = 3.4028234663852886e38
_INTS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
_WIDE_IDS = {"UBIGINT", "HUGEINT", "UHUGEINT", "UUID"}  # read as text: may not fit int64
_FLOATS = {"FLOAT", "DOUBLE"}
_NUMBERS = _INTS | _FLOATS | {"UBIGINT", "HUGEINT", "UHUGEINT"}
_BLANKS = "' \t\r\n'"


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
