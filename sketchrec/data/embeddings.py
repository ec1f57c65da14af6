"""`Embeddings`: ids + a float32 matrix + where it came from."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from sketchrec.data.idmap import IdMap


@dataclass
class Embeddings:
    """Row i of `vectors` embeds external id `ids.keys[i]`.

    vectors : (n, d) float32 (or a read-only memmap for out-of-core results)
    ids : IdMap of the n rows
    provenance : how they were made (method, parameters, graph size, timings)
    """

    vectors: np.ndarray
    ids: IdMap
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.vectors.ndim != 2:
            raise ValueError(f"vectors must be 2-D, got shape {self.vectors.shape}")
        if len(self.ids) != self.vectors.shape[0]:
            raise ValueError(f"{len(self.ids)} ids for {self.vectors.shape[0]} vectors")

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def __repr__(self) -> str:
        method = self.provenance.get("method", "?")
        return f"Embeddings(n={len(self):,}, dim={self.dim}, method={method!r})"

    def lookup(self, external) -> tuple[np.ndarray, list]:
        """Vectors of the given external ids; unknown ids get zero rows and are listed."""
        look = self.ids.lookup(external)
        out = np.zeros((len(look.internal), self.dim), dtype=np.float32)
        out[look.known] = self.vectors[look.internal[look.known]]
        return out, look.unknown

    def subset(self, rows: np.ndarray) -> "Embeddings":
        rows = np.asarray(rows)
        return Embeddings(np.ascontiguousarray(self.vectors[rows]),
                          IdMap(self.ids.keys.take(pa.array(rows)), self.ids.name),
                          dict(self.provenance))

    def most_similar(self, queries: np.ndarray, k: int = 10, exclude_self: bool = True):
        """Deprecated: cosine search is `sketchrec.retrieval.CentroidIndex`'s, answering a
        `SearchResult`: ``CentroidIndex("instance").fit(embeddings).search_rows(queries, k)``
        (groups: the row numbers; ``embeddings.ids.to_external(rows)`` names them).

        Cosine top-k for row indices `queries`: (items (B, min(k, n)), similarities (B, min(k, n))),
        a query's own row left out (at -inf, last, when k reaches it) with `exclude_self`."""
        import warnings

        from sketchrec.topk import inner_product_topk
        warnings.warn("Embeddings.most_similar() is deprecated: use sketchrec.retrieval.CentroidIndex(\"instance\")"
                      ".fit(embeddings).search_rows(rows, k), a SearchResult (the old method goes in the next release)",
                      DeprecationWarning, stacklevel=2)
        queries = np.asarray(queries)
        unit = self.vectors / np.maximum(np.linalg.norm(self.vectors, axis=1, keepdims=True), 1e-12)
        exclude = (np.arange(len(queries) + 1), queries) if exclude_self else None
        return inner_product_topk(unit[queries], unit, k, exclude=exclude, chunk_rows=max(1, len(queries)))

    # -- persistence: .npy + ids parquet + provenance json, no pickle ---------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "vectors.npy", np.asarray(self.vectors, dtype=np.float32))
        self.ids.save(directory / "ids.parquet")
        (directory / "provenance.json").write_text(json.dumps(self.provenance, indent=1, default=str))
        return directory

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = False) -> "Embeddings":
        directory = Path(directory)
        vectors = np.load(directory / "vectors.npy", mmap_mode="r" if mmap else None)
        provenance = json.loads((directory / "provenance.json").read_text())
        return cls(vectors, IdMap.load(directory / "ids.parquet"), provenance)
