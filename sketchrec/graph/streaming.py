"""Cleora over the session-item graph of a log read in buffers: item vectors without the graph.

The graph EMDE's ``cleora:<steps>`` codes use is bipartite (sessions on one side, items on the
other; an edge per click, repeated clicks adding up), so Cleora's step alternates sides: item
vectors at step t come from session vectors at step t-1, which come from item vectors at step
t-2, ... down to the random start vectors T0. A session's vector only needs that session's
clicks, so each step pair is one pass over the log: per buffer, session vectors = rownorm(A ·
items_prev) and items_next += Aᵀ · sessions, with A the buffer's session x item click counts;
at the end of the pass items_next is row-normalised. `steps` steps take ceil(steps / 2) passes.

Node numbering is that of the in-memory graph (`sketchrec.models.emde.codes.row_item_embeddings`):
session r is node r (r counted over the whole log in file order), item i is node n_rows + i, so
T0 — a pure function of (seed, node, column) — is the same, and the vectors equal the in-memory
Cleora's to float rounding.

Memory: two (n_items, dim) float32 matrices and one buffer's (sessions, dim) vectors; the
gather and the scatter are numba kernels over the buffer's clicks, so no (items in the buffer,
dim) temporary is made (at 1M items that would be 1 GB a buffer).
"""

from __future__ import annotations

from typing import Callable, Iterable

import numba
import numpy as np

from sketchrec.data.sessions import Sessions
from sketchrec.graph.cleora import initial_vectors


@numba.njit(cache=True, nogil=True)
def _accumulate(indptr, items, src, out, to_items):
    # over every click c of row r, item i = items[c]: to_items False, out[r] += src[i] (A · src);
    # to_items True, out[i] += src[r] (Aᵀ · src, accumulated over buffers). O(clicks · dim)
    for r in range(len(indptr) - 1):
        for c in range(indptr[r], indptr[r + 1]):
            i = items[c]
            a, b = (i, r) if to_items else (r, i)
            for d in range(out.shape[1]):
                out[a, d] += src[b, d]


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    x /= np.where(norms > 0, norms, 1.0).astype(np.float32)[:, None]
    return x


def stream_row_item_cleora(buffers: Callable[[], Iterable[Sessions]], n_rows: int, n_items: int, steps: int,
                           dim: int = 256, seed: int = 0) -> np.ndarray:
    """(n_items, dim) float32 Cleora vectors of the items after `steps` steps on the session-item
    graph of the log. buffers() yields the log's sessions in file order, each buffer with
    meta["first_row"], the global index of its first session (`SessionStream.buffers`)."""
    if steps < 0 or dim < 1:
        raise ValueError(f"steps must be >= 0 and dim >= 1, got {steps}, {dim}")
    if steps == 0:
        return initial_vectors(n_items, dim, seed, row_start=n_rows)
    # even steps start from the items' T0, odd steps from the sessions' T0 (made per buffer)
    items = initial_vectors(n_items, dim, seed, row_start=n_rows) if steps % 2 == 0 else None
    for _ in range((steps + 1) // 2):
        nxt = np.zeros((n_items, dim), np.float32)
        for buf in buffers():
            if items is None:
                rows = initial_vectors(len(buf), dim, seed, row_start=buf.meta["first_row"])
            else:
                rows = np.zeros((len(buf), dim), np.float32)
                _accumulate(buf.indptr, buf.items, items, rows, False)
                _normalise_rows(rows)
            _accumulate(buf.indptr, buf.items, rows, nxt, True)
        items = _normalise_rows(nxt)
    return items
