"""What went wrong while reading: `DataValidationError` for one bad input, `IngestReport` for
every bad row skipped (see `sketchrec.data.readers` for what counts as a row and a line).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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
