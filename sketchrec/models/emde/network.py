"""EMDE's network: a sparse input sketch -> per-depth log-probabilities over the buckets."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class SketchNet(nn.Module):
    """Sparse input sketch -> (depth, width) log-probabilities.

    EmbeddingBag (= a linear layer on the sparse input) -> [BN] -> LeakyReLU,
    then `n_blocks` residual blocks h + LeakyReLU(BN(Linear(h))), then a linear
    layer to depth x width logits, log-softmax over each depth row.
    """

    def __init__(self, n_inputs: int, hidden: int, depth: int, width: int, n_blocks: int = 1,
                 batch_norm: bool = True, dropout: float = 0.0):
        super().__init__()
        self.depth, self.width = depth, width
        self.input = nn.EmbeddingBag(n_inputs, hidden, mode="sum", include_last_offset=True)
        nn.init.normal_(self.input.weight, std=1.0 / np.sqrt(n_inputs / 8))
        self.input_bias = nn.Parameter(torch.zeros(hidden))
        norm = (lambda: nn.BatchNorm1d(hidden)) if batch_norm else nn.Identity
        self.input_norm = norm()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), norm(), nn.LeakyReLU(), nn.Dropout(dropout))
            for _ in range(n_blocks))
        self.act = nn.LeakyReLU()
        self.output = nn.Linear(hidden, depth * width)

    def forward(self, indices, offsets, weights):
        h = self.input(indices, offsets, per_sample_weights=weights) + self.input_bias
        h = self.act(self.input_norm(h))
        for block in self.blocks:
            h = h + block(h)
        logits = self.output(h).view(-1, self.depth, self.width)
        return torch.log_softmax(logits.float(), dim=-1)
