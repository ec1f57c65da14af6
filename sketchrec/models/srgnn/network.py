"""SR-GNN's gated graph network, with TAGNN's target-aware attention as an option."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sketchrec.models._table_adam import TableAdam
from sketchrec.models.srgnn.functions import ItemTable, PackedTargetAttention, TargetAttention


class GatedGraphNet(nn.Module):
    """SR-GNN's network: GRU-style propagation `step` times, soft-attention readout
    s = W3 [v_last ; s_g], scores s . v_i. With `target_aware` (TAGNN), every candidate
    item i adds its own session vector sum_t beta_it h_t, beta_i = softmax_t(v_i . W_t h_t)."""

    def __init__(self, n_items: int, hidden: int = 100, step: int = 1, target_aware: bool = False,
                 bf16_attention: bool = False, init_std: float | None = None):
        super().__init__()
        self.hidden, self.step, self.target_aware = hidden, step, target_aware
        self.bf16_attention = bf16_attention      # training only: scoring in eval mode stays float32
        self.n_items = n_items
        self.table_optimiser: TableAdam | None = None       # set by SRGNN.fit while it trains
        self.embedding = nn.Embedding(n_items, hidden)     # no padding row: see node_states
        self.edge_in = nn.Linear(hidden, hidden)
        self.edge_out = nn.Linear(hidden, hidden)
        self.w_ih = nn.Linear(2 * hidden, 3 * hidden)
        self.w_hh = nn.Linear(hidden, 3 * hidden)
        self.att_last = nn.Linear(hidden, hidden)
        self.att_all = nn.Linear(hidden, hidden)
        self.att_q = nn.Linear(hidden, 1, bias=False)
        self.transform = nn.Linear(2 * hidden, hidden)
        if target_aware:
            self.target_att = nn.Linear(hidden, hidden, bias=False)
        # init_std None: U(-1/sqrt(hidden), 1/sqrt(hidden)), as the published SR-GNN code;
        # else N(0, init_std), as the SR-GNN paper and the thesis's appendix A.2 state (0.1)
        std = 1.0 / np.sqrt(hidden)
        for p in self.parameters():
            if init_std is None:
                nn.init.uniform_(p, -std, std)
            else:
                nn.init.normal_(p, 0.0, init_std)

    def gnn_cell(self, adj, h):
        n = h.shape[1]
        msg = torch.cat([adj[:, :, :n] @ self.edge_in(h), adj[:, :, n:] @ self.edge_out(h)], dim=2)
        gi, gh = self.w_ih(msg), self.w_hh(h)
        i_r, i_z, i_n = gi.chunk(3, dim=2)
        h_r, h_z, h_n = gh.chunk(3, dim=2)
        reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + reset * h_n)
        return candidate + update * (h - candidate)

    def node_states(self, node_items, adj, rows=None):
        """(B, n, d) node states after propagation; `rows`: the nodes' embeddings, if looked up already."""
        # Padded nodes (id n_items) start as exact zeros. The table has no padding row on purpose:
        # scoring against `weight[:-1]` made autograd zero-fill and copy a second (N, d) gradient
        # every batch (~8 ms of 46), and a padding row kept in the table decays under Adam's
        # weight decay into denormal floats that make every GNN matmul ~5x slower on x86.
        real = node_items < self.n_items
        if rows is None:
            rows = self.embedding(torch.where(real, node_items, 0))
        h = rows * real.unsqueeze(2)
        for _ in range(self.step):
            h = self.gnn_cell(adj, h)
        return h

    def session_vectors(self, node_items, alias, mask, adj, node_clicks=None, h=None):
        """(B, d) s_h = W3 [v_last ; s_g]."""
        if h is None:
            h = self.node_states(node_items, adj)
        seq = torch.gather(h, 1, alias.unsqueeze(2).expand(-1, -1, h.shape[2]))      # (B, L, d)
        last_idx = mask.sum(1) - 1
        last = seq[torch.arange(len(seq)), last_idx]                                  # (B, d)
        alpha = self.att_q(torch.sigmoid(self.att_last(last).unsqueeze(1) + self.att_all(seq)))
        global_ = (alpha * seq * mask.unsqueeze(2)).sum(1)
        return self.transform(torch.cat([last, global_], dim=1))

    def forward(self, node_items, alias, mask, adj, node_clicks):
        items, rows = self.embedding.weight, None                                     # (N, d)
        if self.training and torch.is_grad_enabled():       # one gradient for the table's two uses
            dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else items.dtype
            items, rows = ItemTable.apply(items, torch.where(node_items < self.n_items, node_items, 0), dtype,
                                          self.table_optimiser)
        h = self.node_states(node_items, adj, rows)
        s = self.session_vectors(node_items, alias, mask, adj, h=h)
        scores = s @ items.T                                                          # (B, N)
        if self.target_aware:
            # softmax over a session's clicks = softmax over its nodes with log(clicks) added
            bias = torch.where(node_clicks > 0, torch.log(node_clicks.clamp(min=1)),
                               torch.full_like(node_clicks, -torch.inf))
            if self.bf16_attention and self.training and torch.is_grad_enabled():
                real = node_clicks > 0                                               # packed nodes
                starts = torch.cat([torch.zeros(1, dtype=torch.int64), real.sum(1).cumsum(0)])
                scores = scores + PackedTargetAttention.apply(self.target_att(h)[real], h[real], items,
                                                              bias[real], starts)
            else:
                scores = scores + TargetAttention.apply(self.target_att(h), h, items, bias,
                                                        torch.is_autocast_enabled("cpu"))
        return scores
