"""Vectorised text parsing shared by the loaders (pyarrow's multithreaded CSV reader).

No loader walks a large file line by line in Python: lines are read as string
columns by pyarrow, split with arrow compute kernels and cast in bulk.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv


def read_string_columns(path: str | Path, n_columns: int = 1, *, header: bool = False,
                        delimiter: str = "\t", skip_rows: int = 0, encoding: str = "utf8") -> pa.Table:
    """Every column as a string (no quoting); `.gz` is decompressed by extension.

    With header=False the columns are named c0..c{n-1}; with header=True the
    file's header names are kept and `n_columns` is ignored.
    """
    if header:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8" if encoding == "utf8" else encoding) as fh:
            for _ in range(skip_rows):
                fh.readline()
            names = fh.readline().rstrip("\r\n").split(delimiter)
        skip_rows += 1
    else:
        names = [f"c{i}" for i in range(n_columns)]
    read = pcsv.ReadOptions(column_names=names, block_size=1 << 24, skip_rows=skip_rows,
                            encoding=encoding)
    parse = pcsv.ParseOptions(delimiter=delimiter, quote_char=False)
    convert = pcsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                  strings_can_be_null=False)
    return pcsv.read_csv(str(path), read_options=read, parse_options=parse, convert_options=convert)


def read_csv(path: str | Path, *, delimiter: str = ",", column_types: dict | None = None,
             quote: bool = True, skip_rows: int = 0, names: list[str] | None = None,
             encoding: str = "utf8") -> pa.Table:
    """A typed CSV read (header row unless `names` is given)."""
    read = pcsv.ReadOptions(block_size=1 << 24, skip_rows=skip_rows, column_names=names,
                            encoding=encoding)
    parse = pcsv.ParseOptions(delimiter=delimiter, quote_char='"' if quote else False,
                              newlines_in_values=quote)
    convert = pcsv.ConvertOptions(column_types=column_types or {})
    return pcsv.read_csv(str(path), read_options=read, parse_options=parse, convert_options=convert)


def split_int_lists(column) -> tuple[np.ndarray, np.ndarray]:
    """Whitespace-separated integers per row -> (indptr (n+1,) int64, values (nnz,) int64)."""
    lists = pc.utf8_split_whitespace(column)
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    values = pc.cast(pc.list_flatten(lists), pa.int64()).to_numpy(zero_copy_only=False)
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return indptr, values


def read_int_lines(path: str | Path, *, skip_rows: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A file of one whitespace-separated integer list per line -> CSR (indptr, values)."""
    table = read_string_columns(path, 1, delimiter="\x1f", skip_rows=skip_rows)
    return split_int_lists(table.column(0))


def count_comment_lines(path: str | Path, prefix: str = "#") -> int:
    """Number of leading lines that start with `prefix` (e.g. SNAP's '#' header)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    n = 0
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith(prefix):
                break
            n += 1
    return n


def read_int_pairs(path: str | Path, *, delimiter: str, header: bool) -> np.ndarray:
    """Two integer columns (edge list, node-label list) -> (n, 2) int64.

    Leading '#' comment lines are skipped; blank lines (e.g. from '\\r\\r\\n'
    endings) are ignored.
    """
    skip = count_comment_lines(path)
    read = pcsv.ReadOptions(block_size=1 << 24, skip_rows=skip + int(header), column_names=["a", "b"])
    parse = pcsv.ParseOptions(delimiter=delimiter)
    table = pcsv.read_csv(str(path), read_options=read, parse_options=parse,
                          convert_options=pcsv.ConvertOptions(column_types={"a": pa.int64(), "b": pa.int64()}))
    return np.stack([table.column("a").to_numpy(), table.column("b").to_numpy()], axis=1)


def undirected_unique(edges: np.ndarray) -> np.ndarray:
    """(E, 2) edges -> unique undirected edges as (min, max) rows, sorted; self-loops kept."""
    lo, hi = np.minimum(edges[:, 0], edges[:, 1]), np.maximum(edges[:, 0], edges[:, 1])
    key = np.unique(lo.astype(np.int64) * (int(hi.max(initial=0)) + 1) + hi)
    n = int(hi.max(initial=0)) + 1
    return np.stack([key // n, key % n], axis=1).astype(np.int64)
