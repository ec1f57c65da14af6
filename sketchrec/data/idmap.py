"""Stable maps between external ids (strings or integers) and internal ids 0..n-1.

Internal ids are assigned in order of first appearance, so the same input in
the same order always gives the same map. A map is saved next to a model and
used at inference time, where unknown external ids are reported rather than
crashed on.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def _parallel_dictionary_encode(values: pa.Array, min_slice: int = 1_000_000) -> list:
    """Dictionary-encode slices of `values` in threads (arrow releases the GIL)."""
    n_slices = max(1, min(os.cpu_count() or 1, len(values) // min_slice))
    if n_slices == 1:
        return [pc.dictionary_encode(values)]
    bounds = np.linspace(0, len(values), n_slices + 1).astype(int)
    slices = [values.slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(n_slices) as pool:
        return list(pool.map(pc.dictionary_encode, slices))


@dataclass(frozen=True)
class Lookup:
    """Result of mapping external ids to internal ids.

    internal: (n,) int64, -1 where the id is unknown.
    unknown: the external ids that were not found (unique, in input order).
    """

    internal: np.ndarray
    unknown: list

    @property
    def known(self) -> np.ndarray:
        return self.internal >= 0


class IdMap:
    """Bidirectional map external id <-> internal id (0..n-1).

    Parameters
    ----------
    keys : pyarrow.Array or sequence
        External ids in internal-id order; must be unique.
    name : str
        What the ids are ("item", "session", ...), used in messages.
    """

    def __init__(self, keys, name: str = "id"):
        if not isinstance(keys, (pa.Array, pa.ChunkedArray)):
            keys = pa.array(np.asarray(keys) if not isinstance(keys, list) else keys)
        if isinstance(keys, pa.ChunkedArray):
            keys = keys.combine_chunks()
        if pa.types.is_dictionary(keys.type):
            keys = keys.dictionary
        if pa.types.is_large_string(keys.type):
            keys = keys.cast(pa.string())
        self.keys = keys
        self.name = name

    # -- construction -----------------------------------------------------
    @classmethod
    def factorize(cls, values, name: str = "id") -> tuple["IdMap", np.ndarray]:
        """Encode `values` (arrow array / numpy array) into internal ids.

        Returns the map and the (n,) int32 codes, first appearance = 0.
        Hash-based (arrow dictionary encoding, one slice per core, then the
        slices' dictionaries unified in order): O(n), no sort.
        """
        if isinstance(values, np.ndarray):
            values = pa.array(values)
        if isinstance(values, pa.ChunkedArray):
            # one contiguous array: per-chunk dictionaries would need unifying
            values = values.combine_chunks()
        if pa.types.is_large_string(values.type):
            values = values.cast(pa.string())
        parts = _parallel_dictionary_encode(values)
        if len(parts) == 1:
            dictionary = parts[0].dictionary
            codes = parts[0].indices.to_numpy(zero_copy_only=False)
        else:
            unified = pa.chunked_array(parts).unify_dictionaries()
            dictionary = unified.chunk(0).dictionary
            codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in unified.chunks])
        return cls(dictionary, name=name), codes.astype(np.int32, copy=False)

    # -- queries ----------------------------------------------------------
    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"IdMap(name={self.name!r}, n={len(self)}, type={self.keys.type})"

    def lookup(self, external) -> Lookup:
        """Map external ids to internal ids; unknown ids give -1 and are listed."""
        values = external if isinstance(external, (pa.Array, pa.ChunkedArray)) else pa.array(external)
        keys = self.keys
        if values.type != keys.type:
            try:
                values = values.cast(keys.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                # e.g. "abc" asked of an integer map: compare as text instead.
                keys, values = keys.cast(pa.string()), values.cast(pa.string())
        idx = pc.index_in(values, value_set=keys)
        internal = pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        missing = internal < 0
        unknown = []
        if missing.any():
            unknown = pc.unique(pc.filter(values, pa.array(missing))).to_pylist()
        return Lookup(internal, unknown)

    def to_external(self, internal) -> list:
        """Internal ids (array-like of int) -> list of external ids."""
        return self.keys.take(pa.array(np.asarray(internal, dtype=np.int64))).to_pylist()

    def external_array(self) -> np.ndarray:
        return self.keys.to_numpy(zero_copy_only=False)

    # -- persistence ------------------------------------------------------
    def save(self, path: str | Path) -> None:
        pq.write_table(pa.table({self.name: self.keys}), str(path))

    @classmethod
    def load(cls, path: str | Path) -> "IdMap":
        table = pq.read_table(str(path))
        return cls(table.column(0), name=table.column_names[0])

    def __eq__(self, other) -> bool:
        return isinstance(other, IdMap) and self.keys.equals(other.keys)
