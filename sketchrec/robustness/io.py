"""Corrupt a text column of a CSV or Parquet file, streaming in record batches."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from sketchrec.robustness.aspects import Aspect


def _batches(path: Path, batch_rows: int):
    if path.suffix.lower() in (".parquet", ".pq"):
        pf = pq.ParquetFile(path)
        return pf.schema_arrow, pf.iter_batches(batch_size=batch_rows), pf.metadata.num_rows
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 22),
                            convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    return reader.schema, reader, None


def corrupt_file(source: str | Path, column: str, output: str | Path, aspect: Aspect, *,
                 batch_rows: int = 65_536, progress: bool = True) -> int:
    """Write `source` to `output` (CSV or Parquet by suffix) with `column` corrupted by `aspect`;
    other columns pass through unchanged. Written to a temporary file first and renamed, so a
    failure leaves no partial output. Returns the number of rows."""
    source, output = Path(source), Path(output)
    schema, batches, total = _batches(source, batch_rows)
    if column not in schema.names:
        raise ValueError(f"{source}: no column {column!r}; it has {schema.names}")
    tmp = output.with_name(output.name + ".tmp")
    writer, rows = None, 0
    try:
        with tqdm(total=total, desc=f"corrupting {column}", unit="row", disable=not progress) as bar:
            for batch in batches:
                table = pa.Table.from_batches([batch])
                idx = table.schema.get_field_index(column)
                texts = table.column(idx).cast(pa.string()).to_pylist()
                table = table.set_column(idx, pa.field(column, pa.string()), pa.array(aspect.apply_many(texts),
                                                                                      pa.string()))
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema) if output.suffix.lower() in (".parquet", ".pq") \
                        else pacsv.CSVWriter(tmp, table.schema)
                writer.write_table(table)
                rows += table.num_rows
                bar.update(table.num_rows)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    if writer is None:          # empty input: still write the header
        empty = pa.table({n: pa.array([], pa.string() if n == column else schema.field(n).type)
                          for n in schema.names})
        (pq.write_table(empty, tmp) if output.suffix.lower() in (".parquet", ".pq")
         else pacsv.write_csv(empty, tmp))
    else:
        writer.close()
    os.replace(tmp, output)
    return rows
