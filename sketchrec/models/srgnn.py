"""SR-GNN (Wu et al., AAAI 2019): a gated graph network over each session's item graph.

Issue 5 starts here: the model and its vectorised batching. Not yet in
`MODELS`, not yet benchmarked; augmentation and TAGNN come next.

A batch of session prefixes becomes, in one vectorised pass (no Python loop
per session): the unique items of every session (padded to the batch's
largest), the position of every click among them, and the dense (B, n, n)
adjacency of consecutive clicks with SR-GNN's normalisation — incoming edges
divided by the node's in-degree, outgoing by its out-degree.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from sketchrec.data.sessions import Sessions, expand_prefixes
from sketchrec.models.base import Recommender


def session_graphs(histories: Sessions, max_len: int | None = None):
    """(node_items (B, n) int64 [pad = n_items], alias (B, L) int64 [pad = 0], click_mask (B, L) bool,
    adjacency (B, n, 2n) float32 = [A_in | A_out]) for a batch of non-empty sessions."""
    h = histories if max_len is None else histories.tail(max_len)
    n_rows, lengths = len(h), h.lengths
    if np.any(lengths == 0):
        raise ValueError("SR-GNN needs non-empty sessions")
    rows = h.row_of_click()
    key = rows * np.int64(h.n_items + 1) + h.items
    uniq, inverse = np.unique(key, return_inverse=True)       # sorted by row, then item
    u_rows = uniq // (h.n_items + 1)
    n_nodes = np.bincount(u_rows, minlength=n_rows)
    first = np.concatenate([[0], np.cumsum(n_nodes)[:-1]])
    local = np.arange(len(uniq)) - first[u_rows]
    width = int(n_nodes.max())
    node_items = np.full((n_rows, width), h.n_items, dtype=np.int64)
    node_items[u_rows, local] = uniq % (h.n_items + 1)
    click_node = local[inverse]
    pos = h.position_of_click()
    length = int(lengths.max())
    alias = np.zeros((n_rows, length), dtype=np.int64)
    alias[rows, pos] = click_node
    mask = np.zeros((n_rows, length), dtype=bool)
    mask[rows, pos] = True
    # consecutive clicks inside a session: edge node(t) -> node(t+1), binary
    nxt = np.flatnonzero(pos[1:] > 0)             # click i+1 continues click i's session
    adj = np.zeros((n_rows, width, width), dtype=np.float32)
    adj[rows[nxt + 1], click_node[nxt], click_node[nxt + 1]] = 1.0
    in_deg = adj.sum(axis=1, keepdims=True)       # (B, 1, n): column sums
    out_deg = adj.sum(axis=2, keepdims=True)      # (B, n, 1)
    a_in = np.divide(adj, in_deg, out=np.zeros_like(adj), where=in_deg > 0).transpose(0, 2, 1)
    a_out = np.divide(adj, out_deg, out=np.zeros_like(adj), where=out_deg > 0)
    return node_items, alias, mask, np.concatenate([a_in, a_out], axis=2)


class GatedGraphNet(nn.Module):
    """SR-GNN's network: GRU-style propagation `step` times, soft-attention readout."""

    def __init__(self, n_items: int, hidden: int = 100, step: int = 1):
        super().__init__()
        self.hidden, self.step = hidden, step
        self.embedding = nn.Embedding(n_items + 1, hidden, padding_idx=n_items)
        self.edge_in = nn.Linear(hidden, hidden)
        self.edge_out = nn.Linear(hidden, hidden)
        self.w_ih = nn.Linear(2 * hidden, 3 * hidden)
        self.w_hh = nn.Linear(hidden, 3 * hidden)
        self.att_last = nn.Linear(hidden, hidden)
        self.att_all = nn.Linear(hidden, hidden)
        self.att_q = nn.Linear(hidden, 1, bias=False)
        self.transform = nn.Linear(2 * hidden, hidden)
        std = 1.0 / np.sqrt(hidden)
        for p in self.parameters():
            nn.init.uniform_(p, -std, std)

    def gnn_cell(self, adj, h):
        n = h.shape[1]
        msg = torch.cat([adj[:, :, :n] @ self.edge_in(h), adj[:, :, n:] @ self.edge_out(h)], dim=2)
        gi, gh = self.w_ih(msg), self.w_hh(h)
        i_r, i_z, i_n = gi.chunk(3, dim=2)
        h_r, h_z, h_n = gh.chunk(3, dim=2)
        reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + reset * h_n)
        return candidate + update * (h - candidate)

    def session_vectors(self, node_items, alias, mask, adj):
        h = self.embedding(node_items)
        for _ in range(self.step):
            h = self.gnn_cell(adj, h)
        seq = torch.gather(h, 1, alias.unsqueeze(2).expand(-1, -1, self.hidden))     # (B, L, d)
        last_idx = mask.sum(1) - 1
        last = seq[torch.arange(len(seq)), last_idx]                                  # (B, d)
        alpha = self.att_q(torch.sigmoid(self.att_last(last).unsqueeze(1) + self.att_all(seq)))
        global_ = (alpha * seq * mask.unsqueeze(2)).sum(1)
        return self.transform(torch.cat([last, global_], dim=1))

    def forward(self, node_items, alias, mask, adj):
        s = self.session_vectors(node_items, alias, mask, adj)
        return s @ self.embedding.weight[:-1].T                                       # (B, n_items)


class SRGNN(Recommender):
    """Parameters: hidden, step, epochs, batch_size, lr, lr_decay_every (epochs), lr_decay,
    l2 (Adam weight decay), max_len (clicks kept per prefix), seed, threads, progress."""

    def __init__(self, hidden: int = 100, step: int = 1, epochs: int = 10, batch_size: int = 100,
                 lr: float = 1e-3, lr_decay_every: int = 3, lr_decay: float = 0.1, l2: float = 1e-5,
                 max_len: int = 50, seed: int = 0, threads: int | None = None, progress: bool = True):
        self.hidden = hidden
        self.step = step
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay_every = lr_decay_every
        self.lr_decay = lr_decay
        self.l2 = l2
        self.max_len = max_len
        self.seed = seed
        self.threads = threads
        self.progress = progress

    def _tensors(self, batch: Sessions):
        node_items, alias, mask, adj = session_graphs(batch, self.max_len)
        return (torch.from_numpy(node_items), torch.from_numpy(alias), torch.from_numpy(mask),
                torch.from_numpy(adj))

    def fit(self, train: Sessions) -> "SRGNN":
        torch.manual_seed(self.seed)
        torch.set_num_threads(self.threads or os.cpu_count() or 1)
        rng = np.random.default_rng(self.seed)
        self.n_items_ = train.n_items
        self.net_ = GatedGraphNet(train.n_items, self.hidden, self.step)
        optimiser = torch.optim.Adam(self.net_.parameters(), lr=self.lr, weight_decay=self.l2)
        scheduler = torch.optim.lr_scheduler.StepLR(optimiser, self.lr_decay_every, self.lr_decay)
        prefixes, targets = expand_prefixes(train)
        self.history_ = []
        for epoch in range(self.epochs):
            self.net_.train()
            t0, total = time.perf_counter(), 0.0
            order = rng.permutation(len(targets))
            for start in tqdm(range(0, len(order), self.batch_size), desc=f"srgnn epoch {epoch + 1}",
                              leave=False, disable=not self.progress):
                rows = order[start:start + self.batch_size]
                scores = self.net_(*self._tensors(prefixes.take(rows)))
                loss = nn.functional.cross_entropy(scores, torch.from_numpy(targets[rows].astype(np.int64)))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += loss.item() * len(rows)
            scheduler.step()
            self.history_.append({"epoch": epoch + 1, "loss": total / len(order),
                                  "seconds": time.perf_counter() - t0})
        self.net_.eval()
        return self

    def score(self, histories: Sessions) -> np.ndarray:
        self._check_histories(histories)
        with torch.inference_mode():
            return self.net_(*self._tensors(histories)).numpy().astype(np.float32, copy=False)
