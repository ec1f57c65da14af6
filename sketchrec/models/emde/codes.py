"""EMDE's item codes: DLSH buckets of item vectors, one coder per embedding source.

A source is ``cleora:<steps>`` (Cleora propagation over the training rows' row-item graph,
built here) or the name of item vectors added to the model (`EMDE.add_embeddings`).
"""

from __future__ import annotations

import numpy as np

from sketchrec.data.sessions import Sessions
from sketchrec.data.stream import SessionStream
from sketchrec.sketch.dlsh import DLSHCoder


def row_item_embeddings(train: Sessions | SessionStream, steps: int, dim: int = 256, seed: int = 0,
                        clicks: np.ndarray | None = None) -> np.ndarray:
    """(n_items, dim) Cleora vectors of items over the bipartite row-item graph of `train`.

    One step averages a node's neighbours (rows for an item, items for a row)
    and L2-normalises. Items absent from the graph get zero vectors. Zero steps
    give Cleora's random start vectors: codes that only identify items (a
    count-min sketch of item identity), so the network can learn item-level
    transitions that similarity-based codes blur.
    clicks: optional (nnz,) bool mask of the clicks that make edges.
    `train` may be a `SessionStream` (a log larger than memory): the same vectors, to float
    rounding, from passes over the log (`sketchrec.graph.streaming`).
    """
    from sketchrec.graph.build import Graph
    from sketchrec.graph.cleora import Cleora, initial_vectors
    if steps == 0:
        return initial_vectors(train.n_items, dim, seed)
    if isinstance(train, SessionStream):        # a log read in buffers: one pass per two steps
        if clicks is not None:
            raise ValueError("row_item_embeddings: a click mask needs in-memory Sessions")
        from sketchrec.graph.streaming import stream_row_item_cleora
        return stream_row_item_cleora(train.buffers, len(train), train.n_items, steps, dim, seed)
    rows, items = train.row_of_click(), train.items
    if clicks is not None:
        rows, items = rows[clicks], items[clicks]
    n_rows = len(train)
    graph = Graph.from_edges(rows, n_rows + items.astype(np.int64), n_nodes=n_rows + train.n_items)
    vectors = Cleora(dim=dim, iterations=steps, seed=seed, progress=False).fit(graph).vectors_
    return np.ascontiguousarray(vectors[n_rows:])


def source_codes(train: Sessions | SessionStream, sources: list[str], embeddings: dict[str, np.ndarray], *, n_sketches: int,
                 n_bits: int, bias: str, cleora_dim: int, seed: int) -> dict[str, np.ndarray]:
    """{source: (n_items, n_sketches) DLSH bucket of every item} (int16 below 15 bits, else int32).
    Source i's coder is seeded ``seed * 7919 + i``; Cleora vectors are seeded `seed`."""
    codes = {}
    for i, source in enumerate(sources):
        if source.startswith("cleora"):
            vectors = row_item_embeddings(train, int(source.split(":")[1]), cleora_dim, seed=seed)
        elif source in embeddings:
            vectors = embeddings[source]
            if len(vectors) < train.n_items:
                raise ValueError(f"source {source!r} has {len(vectors)} item vectors for "
                                 f"{train.n_items} items")
            vectors = vectors[:train.n_items]
        else:
            raise ValueError(f"unknown source {source!r}: use 'cleora:<steps>' or call "
                             f"add_embeddings({source!r}, vectors) before fit")
        coder = DLSHCoder(n_sketches, n_bits, bias, seed=seed * 7919 + i)
        codes[source] = coder.fit_encode(vectors).astype(np.int16 if n_bits < 15 else np.int32)
    return codes
