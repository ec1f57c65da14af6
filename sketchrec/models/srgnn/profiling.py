"""Profiling SR-GNN's training step on CPU (benchmarks/srgnn_batch_profile.py, tagnn_batch_speed.py):
the network as plain autograd sees it, one timed training step, the four precision x training-path
variants, and one epoch of `SRGNN(bf16=True).fit` with or without the padded batch shapes.
"""

from __future__ import annotations

import math
import time

import torch

from sketchrec.data.sessions import expand_prefixes
from sketchrec.data.splits import whole_sessions_sample
from sketchrec.models import srgnn
from sketchrec.models.srgnn import GatedGraphNet, softmax_cross_entropy


class PlainNet(GatedGraphNet):
    """SR-GNN's network as plain autograd sees it: the lookup and the scoring are two uses of the
    item table, each with its own (N, d) gradient."""

    def forward(self, node_items, alias, mask, adj, node_clicks):
        h = self.node_states(node_items, adj)
        return self.session_vectors(node_items, alias, mask, adj, h=h) @ self.embedding.weight.T


def train_step(net, opt, graphs, targets, bf16: bool, fused: bool = True, losses: list | None = None) -> float:
    """Seconds for one forward + loss + backward + optimiser step (the loss appended to `losses`)."""
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        scores = net(*graphs)
    loss = softmax_cross_entropy(scores, targets) if fused else torch.nn.functional.cross_entropy(
        scores.float(), targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    seconds = time.perf_counter() - t0
    if losses is not None:
        losses.append(loss.item())
    return seconds


PLAIN = "plain autograd"
VARIANTS = [  # (precision, bf16 autocast, fused training path, label)
    ("float32", False, False, PLAIN), ("float32", False, True, "fused (ItemTable)"),
    ("bf16 autocast", True, False, PLAIN),
    ("bf16 autocast", True, True, "fused (ItemTable, SoftmaxCrossEntropy, TableAdam)")]


def fit_run(bench, n_batches: int, threads: int, padded: bool) -> dict:
    """One epoch of SRGNN(bf16=True).fit over a seeded set of whole training sessions giving
    n_batches batches, after a 20-batch warm-up fit (thread pools, numba's compiled kernels)."""
    if not padded:
        srgnn.SRGNN._pad_multiple = 1

    def model():
        return srgnn.SRGNN(epochs=1, bf16=True, threads=threads, progress=False)
    model().fit(whole_sessions_sample(bench.train, 20 * 100, 1))
    part = whole_sessions_sample(bench.train, n_batches * 100, 0)
    history = model().fit(part).history_[-1]
    batches = math.ceil(len(expand_prefixes(part)[1]) / 100)
    return {"padded": padded, "batches": batches,
            **{k: v / batches * 1000 for k, v in history.items() if k == "seconds" or k.endswith("_s")}}
