"""What an input is: the files a path, folder or glob names, each one's format, compression,
encoding, line ending and header told from its bytes (`_open_input`), and the DuckDB
relation that reads it (`_relation`), inside a connection with the settings reading relies
on (`_session`).
"""

from __future__ import annotations

import codecs
import csv
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
import pyarrow as pa

from sketchrec.data.readers.errors import _NOT_JSON_OBJECT, _ROLE_BITS, DataValidationError, InputNotFoundError

log = logging.getLogger("sketchrec.data.readers")

_STORE_REJECTS = ("ignore_errors=true, store_rejects=true, rejects_table='sketchrec_rejects', "
                  "rejects_scan='sketchrec_reject_scans'")
# run before a scan: a clean scan leaves the rejects of the one before in place
_FORGET_REJECTS = "DROP TABLE IF EXISTS sketchrec_rejects; DROP TABLE IF EXISTS sketchrec_reject_scans; "
_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".json", ".jsonl", ".ndjson")
_ARCHIVES = {b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd",
             b"7z\xbc\xaf": "7z"}


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


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
