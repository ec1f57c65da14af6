"""SR-GNN's batch graphs, built for a whole batch in one vectorised pass (no Python loop per
session): the unique items of every session (padded to the batch's largest), the position of
every click among them, and the dense (B, n, 2n) adjacency [A_in | A_out] of consecutive clicks
with SR-GNN's normalisation — incoming edges divided by the node's in-degree, outgoing by its
out-degree. During training an `AdjacencyAugmentation` may re-weight the edges before the
normalisation and blur the result (sketchrec/augment/adjacency.py). Also: the training batches'
order (`batch_order`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from sketchrec.augment.adjacency import AdjacencyAugmentation
from sketchrec.data.sessions import Sessions

# SR-GNN pads a batch's nodes and clicks to a multiple of 8. oneDNN builds a GEMM kernel for every
# new shape, and a batch's shapes follow its largest session (1..50 nodes and clicks), so a fresh
# training run kept meeting new ones: fresh 301-batch bf16 runs took 30.3 ms per batch unpadded
# and 25.5 ms padded (docs/benchmarks/srgnn_batch_profile.md).
# TAGNN does not pad: its evaluation attention costs nodes x items, padding included.
PAD_MULTIPLE = 8


class SessionGraphs(NamedTuple):
    """One batch: node_items (B, n) int64 [pad = n_items], alias (B, L) int64 click -> node
    [pad 0], click_mask (B, L) bool, adjacency (B, n, 2n) float32 [A_in | A_out],
    node_clicks (B, n) float32 clicks per node (0 = padding)."""
    node_items: np.ndarray
    alias: np.ndarray
    click_mask: np.ndarray
    adjacency: np.ndarray
    node_clicks: np.ndarray

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(a) for a in self)


def session_graphs(histories: Sessions, max_len: int | None = None,
                   augment: AdjacencyAugmentation | None = None,
                   rng: np.random.Generator | None = None, multiple: int = 1) -> SessionGraphs:
    """The batch's session graphs; `augment` (training only) re-weights and blurs them.
    `multiple`: pad the node and click dimensions up to a multiple of it (see PAD_MULTIPLE)."""
    h = histories if max_len is None else histories.tail(max_len)
    n_rows, lengths = len(h), h.lengths
    if np.any(lengths == 0):
        raise ValueError("SR-GNN needs non-empty sessions")
    rows = h.row_of_click()
    key = rows * np.int64(h.n_items + 1) + h.items
    uniq, inverse, clicks = np.unique(key, return_inverse=True, return_counts=True)  # by row, then item
    u_rows = uniq // (h.n_items + 1)
    n_nodes = np.bincount(u_rows, minlength=n_rows)
    first = np.concatenate([[0], np.cumsum(n_nodes)[:-1]])
    local = np.arange(len(uniq)) - first[u_rows]
    width = _round_up(int(n_nodes.max()), multiple)
    node_items = np.full((n_rows, width), h.n_items, dtype=np.int64)
    node_items[u_rows, local] = uniq % (h.n_items + 1)
    node_clicks = np.zeros((n_rows, width), dtype=np.float32)
    node_clicks[u_rows, local] = clicks
    click_node = local[inverse]
    pos = h.position_of_click()
    length = _round_up(int(lengths.max()), multiple)
    alias = np.zeros((n_rows, length), dtype=np.int64)
    alias[rows, pos] = click_node
    mask = np.zeros((n_rows, length), dtype=bool)
    mask[rows, pos] = True
    # consecutive clicks inside a session: edge node(t) -> node(t+1)
    nxt = np.flatnonzero(pos[1:] > 0)             # click i+1 continues click i's session
    e_row, e_src, e_dst = rows[nxt + 1], click_node[nxt], click_node[nxt + 1]
    weight = 1.0
    if augment is not None:
        weight = augment.edge_weights(e_row, h.items[nxt], h.items[nxt + 1], n_rows, rng)
    adj = np.zeros((n_rows, width, width), dtype=np.float32)
    adj[e_row, e_src, e_dst] = weight
    in_deg = adj.sum(axis=1, keepdims=True)       # (B, 1, n): column sums
    out_deg = adj.sum(axis=2, keepdims=True)      # (B, n, 1)
    a_in = np.divide(adj, in_deg, out=np.zeros_like(adj), where=in_deg > 0).transpose(0, 2, 1)
    a_out = np.divide(adj, out_deg, out=np.zeros_like(adj), where=out_deg > 0)
    adjacency = np.concatenate([a_in, a_out], axis=2)
    if augment is not None:
        augment.blur_(adjacency, n_nodes, rng)
    return SessionGraphs(node_items, alias, mask, adjacency, node_clicks)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def node_counts(prefixes: Sessions) -> np.ndarray:
    """(n_rows,) distinct items per row."""
    key = prefixes.row_of_click() * np.int64(prefixes.n_items) + prefixes.items
    return np.bincount(np.unique(key) // prefixes.n_items, minlength=len(prefixes))


def batch_order(rng: np.random.Generator, n: int, batch_size: int, sizes: np.ndarray | None):
    """Shuffled batches of row indices. With `sizes`, rows are shuffled, sorted by size within
    windows of 50 batches and cut there, and the batches shuffled: little padding, still random."""
    order = rng.permutation(n)
    if sizes is not None:
        window = 50 * batch_size
        win = np.arange(n) // window
        order = order[np.lexsort((sizes[order], win))]
    batches = [order[s:s + batch_size] for s in range(0, n, batch_size)]
    if sizes is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches
