"""Profiling SR-GNN's training step on CPU (benchmarks/srgnn_batch_profile.py, tagnn_batch_speed.py):
the network as plain autograd sees it, one timed training step, the four precision x training-path
variants, and one epoch of `SRGNN(bf16=True).fit` with or without the padded batch shapes;
`variant_step_times` times the variants on the same batches, interleaved, and `top_operators`
lists the costliest operators of a training step under torch's profiler. For TAGNN
(benchmarks/tagnn_batch_speed.py), `tagnn_variant_times` times its target attention's
implementations (`TAGNN_VARIANTS`: plain autograd, chunked, padded, packed) the same way.
"""

from __future__ import annotations

import math
import time

import numpy as np

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


def variant_step_times(n_items: int, graphs: list, targets: torch.Tensor, batches: list, passes: int = 2):
    """Each of the `VARIANTS` (a `GatedGraphNet` or `PlainNet`, hidden 100, one step, all from the same
    weights; `TableAdam` on the fused path, torch's fused Adam on the plain one; lr 1e-3, weight decay
    1e-5) trained on the same `batches` (row indices into `targets`, with their session `graphs`),
    interleaved batch by batch, for `passes` passes: (seconds of shape (passes, variants, batches),
    the losses of pass 1 per variant, the (net, optimiser, bf16, fused) of each variant)."""
    from sketchrec.models._table_adam import TableAdam
    init = GatedGraphNet(n_items, 100, 1).state_dict()
    runs = []
    for _, bf16, fused, _ in VARIANTS:
        net = (GatedGraphNet if fused else PlainNet)(n_items, 100, 1)
        net.load_state_dict(init)
        if fused:
            opt = TableAdam(net.parameters(), net.embedding.weight, lr=1e-3, weight_decay=1e-5)
            net.table_optimiser = opt
        else:
            opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5, fused=True)
        runs.append((net, opt, bf16, fused))
    times = np.zeros((passes, len(VARIANTS), len(batches)))
    losses = [[] for _ in VARIANTS]
    for rep in range(passes):
        for b, rows in enumerate(batches):
            for v, (net, opt, bf16, fused) in enumerate(runs):
                times[rep, v, b] = train_step(net, opt, graphs[b], targets[rows], bf16, fused,
                                              losses[v] if rep == 0 else None)
    return times, losses, runs


def top_operators(net, opt, graphs: list, targets: torch.Tensor, batches: list, n: int, top: int = 12) -> list:
    """The `top` operators by self CPU time (torch.profiler's `key_averages()` events) over `n` bf16
    training steps of the fused path on the first `n` of `batches`."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in range(n):
            train_step(net, opt, graphs[b], targets[batches[b]], True, True)
    return sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]


def plain_target_attention(q, h, items, bias, bf16=False):
    """TAGNN's target attention as three (B, n, N) tensor expressions under plain autograd."""
    beta = torch.softmax(q @ items.T + bias.unsqueeze(2).to(q.dtype), dim=1)
    return (beta * (h @ items.T)).sum(1)


class PlainAttention:
    """A stand-in for `TargetAttention` that computes `plain_target_attention`."""
    apply = staticmethod(plain_target_attention)


class PaddedBF16Attention(srgnn.TargetAttention):
    """The padded chunked path with bf16 GEMM operands and nothing else in bf16."""
    @staticmethod
    def apply(q, h, items, bias, bf16=False):
        return torch.autograd.Function.apply.__func__(PaddedBF16Attention, q, h, items, bias, True)


TAGNN_VARIANTS = [  # (target attention, the class GatedGraphNet uses for it, precision)
    ("plain autograd", PlainAttention, "float32"), ("chunked", srgnn.TargetAttention, "float32"),
    ("plain autograd", PlainAttention, "bf16 autocast"), ("chunked", srgnn.TargetAttention, "bf16 autocast"),
    ("chunked, padded nodes", PaddedBF16Attention, "bf16 attention GEMMs"),
    ("packed nodes, numba kernels", srgnn.TargetAttention, "bf16 attention GEMMs")]


def tagnn_variant_times(n_items: int, prefixes, targets: torch.Tensor, epoch: list, sample: list) -> dict:
    """Each of `TAGNN_VARIANTS` (a target-aware `GatedGraphNet`, hidden 100, one step, all from the same
    weights, fused Adam lr 1e-3, weight decay 1e-5) warmed up on the last batch of `epoch`, then trained
    on the `sample` batches (rows of `prefixes` / `targets`), variants alternating batch by batch:
    {"times": seconds (variants, batches), "losses", "drift": max abs weight difference from the chunked
    float32 variant, "loss_gap": max abs loss difference from it, "load": load average before, after}."""
    import os
    from unittest import mock

    from sketchrec.models.srgnn import network        # GatedGraphNet finds TargetAttention here
    nets = [srgnn.GatedGraphNet(n_items, 100, 1, target_aware=True, bf16_attention=name.startswith("packed"))
            for name, _, _ in TAGNN_VARIANTS]
    for net in nets[1:]:
        net.load_state_dict(nets[0].state_dict())
    optimisers = [torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5, fused=True) for net in nets]
    times = np.zeros((len(TAGNN_VARIANTS), len(sample)))
    warm = srgnn.session_graphs(prefixes.take(epoch[-1])).tensors()      # numba compiles, caches fill
    for (_, impl, precision), net, opt in zip(TAGNN_VARIANTS, nets, optimisers):
        with mock.patch.object(network, "TargetAttention", impl):
            train_step(net, opt, warm, targets[epoch[-1]], precision == "bf16 autocast")
    load0 = os.getloadavg()[0]
    losses = [[] for _ in TAGNN_VARIANTS]
    for b, rows in enumerate(sample):
        graphs = srgnn.session_graphs(prefixes.take(rows)).tensors()
        for v, ((_, impl, precision), net, opt) in enumerate(zip(TAGNN_VARIANTS, nets, optimisers)):
            with mock.patch.object(network, "TargetAttention", impl):
                times[v, b] = train_step(net, opt, graphs, targets[rows], precision == "bf16 autocast",
                                         losses=losses[v])
    load1 = os.getloadavg()[0]
    # every variant trained from the same weights on the same batches: how far each drifted
    # from the float32 chunked one (rounding only; Adam turns tiny gradient differences into
    # whole steps for rarely seen items)
    reference = dict(nets[1].named_parameters())
    drift = [max((p - reference[k]).abs().max().item() for k, p in net.named_parameters()) for net in nets]
    loss_gap = [np.abs(np.array(run) - losses[1]).max() for run in losses]
    return {"times": times, "losses": losses, "drift": drift, "loss_gap": loss_gap, "load": (load0, load1)}
