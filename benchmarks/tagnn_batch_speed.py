"""TAGNN training batches on CPU: the item-chunked TargetAttention against plain autograd
(the same formula as three (B, n, N) tensor expressions), float32 and bf16 autocast, and the
training path of `TAGNN(bf16_attention=True)` (bf16 GEMM operands only in the attention,
padded, or packed nodes with the numba kernels), on Diginetica (43,097 items, batch 100) in
the training loop's size-grouped batch order.

The batches are the first --batches of one epoch's shuffled order, a random sample of it, so
the mean time per batch times the epoch's batch count estimates an epoch. Variants alternate
batch by batch, so a busy machine slows them alike; the load average is recorded.

    python -m benchmarks.tagnn_batch_speed --batches 40 --threads 2   # -> docs/benchmarks/tagnn_batch_speed.md
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from sketchrec.eval.batch_profiles import training_batches
from sketchrec.eval.report import host_line, markdown_table, write_page
from sketchrec.models import srgnn
from sketchrec.models.srgnn import network        # GatedGraphNet finds TargetAttention here: variants patch it
from sketchrec.models.srgnn.profiling import train_step


def plain_target_attention(q, h, items, bias, bf16=False):
    beta = torch.softmax(q @ items.T + bias.unsqueeze(2).to(q.dtype), dim=1)
    return (beta * (h @ items.T)).sum(1)


class Plain:
    apply = staticmethod(plain_target_attention)


class PaddedBF16(srgnn.TargetAttention):
    """The padded chunked path with bf16 GEMM operands and nothing else in bf16."""
    @staticmethod
    def apply(q, h, items, bias, bf16=False):
        return torch.autograd.Function.apply.__func__(PaddedBF16, q, h, items, bias, True)


def main() -> None:
    args, bench, prefixes, targets = training_batches(__doc__, 40)
    sizes = srgnn.node_counts(prefixes)
    epoch = srgnn.batch_order(np.random.default_rng(0), len(targets), 100, sizes)
    sample = epoch[:args.batches]
    targets_t = torch.from_numpy(targets.astype(np.int64))
    chunked = srgnn.TargetAttention
    variants = [("plain autograd", Plain, "float32"), ("chunked", chunked, "float32"),
                ("plain autograd", Plain, "bf16 autocast"), ("chunked", chunked, "bf16 autocast"),
                ("chunked, padded nodes", PaddedBF16, "bf16 attention GEMMs"),
                ("packed nodes, numba kernels", chunked, "bf16 attention GEMMs")]
    nets = [srgnn.GatedGraphNet(bench.train.n_items, 100, 1, target_aware=True,
                                bf16_attention=name.startswith("packed")) for name, _, _ in variants]
    for net in nets[1:]:
        net.load_state_dict(nets[0].state_dict())
    optimisers = [torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5, fused=True) for net in nets]
    times = np.zeros((len(variants), len(sample)))
    warm = srgnn.session_graphs(prefixes.take(epoch[-1])).tensors()      # numba compiles, caches fill
    for (_, impl, precision), net, opt in zip(variants, nets, optimisers):
        with mock.patch.object(network, "TargetAttention", impl):
            train_step(net, opt, warm, targets_t[epoch[-1]], precision == "bf16 autocast")
    load0 = os.getloadavg()[0]
    losses = [[] for _ in variants]
    for b, rows in enumerate(sample):
        graphs = srgnn.session_graphs(prefixes.take(rows)).tensors()
        for v, ((_, impl, precision), net, opt) in enumerate(zip(variants, nets, optimisers)):
            with mock.patch.object(network, "TargetAttention", impl):
                times[v, b] = train_step(net, opt, graphs, targets_t[rows], precision == "bf16 autocast",
                                         losses=losses[v])
    load1 = os.getloadavg()[0]
    # every variant trained from the same weights on the same batches: how far each drifted
    # from the float32 chunked one (rounding only; Adam turns tiny gradient differences into
    # whole steps for rarely seen items)
    reference = dict(nets[1].named_parameters())
    drift = [max((p - reference[k]).abs().max().item() for k, p in net.named_parameters()) for net in nets]
    loss_gap = [np.abs(np.array(run) - losses[1]).max() for run in losses]
    mean_nodes = np.mean([sizes[r].max() for r in sample])
    lines = ["# TAGNN: one training batch on CPU", "",
             f"{host_line()}, {args.threads} threads; torch {torch.__version__}; load average {load0:.1f} -> {load1:.1f}. "
             f"Command: `python benchmarks/tagnn_batch_speed.py --batches {args.batches} --threads {args.threads}`. "
             f"Forward + loss + backward + fused Adam over {len(sample)} batches of one epoch's order "
             f"(mean padded graph size {mean_nodes:.1f} nodes; the epoch has {len(epoch):,} batches).", "",
             *markdown_table(["target attention", "precision", "median ms / batch", "mean ms / batch",
                              "epoch estimate (min)", "vs plain float32",
                              "max abs weight difference from chunked float32 after the batches",
                              "max abs loss difference"],
                             [[name, precision, f"{np.median(t) * 1000:.0f}", f"{t.mean() * 1000:.0f}",
                               f"{t.mean() * len(epoch) / 60:.0f}", f"{times[0].mean() / t.mean():.2f}x", f"{dw:.2g}",
                               f"{dl:.2g}"] for (name, _, precision), t, dw, dl in zip(variants, times, drift, loss_gap)])]
    write_page(Path(__file__).resolve().parents[1] / "docs/benchmarks/tagnn_batch_speed.md", "\n".join(lines) + "\n",
               echo=True)

if __name__ == "__main__":
    main()
