"""Where one SR-GNN training batch spends its time on CPU, and what the fused training path saves:
float32 vs bf16 autocast, each with plain autograd (embedding lookup + scoring as two uses of the
table, torch's cross-entropy, torch's fused Adam) and with the fused path `SRGNN.fit` trains with
(`ItemTable`: one gradient for both uses; `TableAdam`; under bf16 `SoftmaxCrossEntropy`, the loss
and its gradient by one numba pass over the bf16 logits, and TableAdam's one pass over the table
that steps it and writes its bf16 copy). Diginetica, 43,097 items, batch 100.

All four variants start from the same weights and train on the same batches, interleaved batch by
batch, so machine noise hits them alike. oneDNN builds a GEMM kernel the first time it sees a
shape, and a batch's shapes depend on its longest session: the batches are run twice and the
second pass (every shape seen) is reported next to the first.

A second part times what a fresh training run sees: `SRGNN(bf16=True).fit` for one epoch over a
seeded set of training sessions giving --fit-batches batches, each run in a process of its own,
with the batches' nodes and clicks padded to multiples of 8 (what fit does, PAD_MULTIPLE) and
unpadded, alternating, --fit-repeats times each.

    python -m benchmarks.srgnn_batch_profile --batches 100      # -> docs/benchmarks/srgnn_batch_profile.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from sketchrec.eval.batch_profiles import training_batches
from sketchrec.eval.report import host_line, markdown_table, run_python, write_page
from sketchrec.models._table_adam import TableAdam
from sketchrec.models.srgnn import GatedGraphNet, session_graphs
from sketchrec.models.srgnn.profiling import VARIANTS, PlainNet, fit_run, train_step


def fresh_runs(args) -> list[dict]:
    """fit_run in a process of its own (oneDNN's kernels for each shape start empty), padded and
    unpadded alternating."""
    runs = []
    for _ in range(args.fit_repeats):
        for padded in ("padded", "unpadded"):
            runs.append(run_python(sys.executable, [__file__, "--child-fit", padded, "--fit-batches", args.fit_batches,
                                                    "--threads", args.threads]))
            print(runs[-1], flush=True)
    return runs


def add_arguments(parser) -> None:
    parser.add_argument("--fit-batches", type=int, default=300)
    parser.add_argument("--fit-repeats", type=int, default=2)
    parser.add_argument("--child-fit", choices=["padded", "unpadded"], help=argparse.SUPPRESS)


def main() -> None:
    args, bench, prefixes, targets = training_batches(__doc__, 100, add_arguments)
    if args.child_fit:
        print(json.dumps(fit_run(bench, args.fit_batches, args.threads, args.child_fit == "padded")))
        return
    order = np.random.default_rng(0).permutation(len(targets))
    targets_t = torch.from_numpy(targets.astype(np.int64))
    batches = [order[b * 100:(b + 1) * 100] for b in range(args.batches)]
    graphs = [session_graphs(prefixes.take(rows)).tensors() for rows in batches]
    init = GatedGraphNet(bench.train.n_items, 100, 1).state_dict()
    runs = []
    for _, bf16, fused, _ in VARIANTS:
        net = (GatedGraphNet if fused else PlainNet)(bench.train.n_items, 100, 1)
        net.load_state_dict(init)
        if fused:
            opt = TableAdam(net.parameters(), net.embedding.weight, lr=1e-3, weight_decay=1e-5)
            net.table_optimiser = opt
        else:
            opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5, fused=True)
        runs.append((net, opt, bf16, fused))
    times = np.zeros((2, len(VARIANTS), args.batches))
    losses = [[] for _ in VARIANTS]
    for rep in range(2):
        for b, rows in enumerate(batches):
            for v, (net, opt, bf16, fused) in enumerate(runs):
                times[rep, v, b] = train_step(net, opt, graphs[b], targets_t[rows], bf16, fused,
                                              losses[v] if rep == 0 else None)
    warm = 5
    from torch.profiler import ProfilerActivity, profile
    net, opt, _, _ = runs[-1]
    n_prof = min(20, args.batches)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in range(n_prof):
            train_step(net, opt, graphs[b], targets_t[batches[b]], True, True)
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
    fits = fresh_runs(args)
    t = times[:, :, warm:] * 1000
    speedups = [t[1, v - 1].mean() / t[1, v].mean() for v in (1, 3)]
    mean = {p: np.mean([r["seconds"] for r in fits if r["padded"] == p]) for p in (True, False)}
    lines = ["# SR-GNN: one training batch on CPU", "",
             f"{host_line()}, {args.threads} threads; torch {torch.__version__}. Command: `python benchmarks/srgnn_batch_profile.py "
             f"--batches {args.batches} --fit-batches {args.fit_batches} --fit-repeats {args.fit_repeats}`. Forward + "
             f"loss + backward + optimiser step; the four variants start from "
             f"the same weights and take the same {args.batches} batches, interleaved; batches {warm + 1}..N of "
             "each pass. Pass 2 repeats the batches, so every GEMM shape has been seen by oneDNN.", "",
             *markdown_table(["precision", "training path", "pass 1 mean ms", "pass 1 median ms", "pass 2 mean ms",
                              "pass 2 median ms", "loss, last batch of pass 1"],
                             [[precision, label, f"{t[0, v].mean():.1f}", f"{np.median(t[0, v]):.1f}",
                               f"{t[1, v].mean():.1f}", f"{np.median(t[1, v]):.1f}", f"{losses[v][-1]:.4f}"]
                              for v, (precision, _, _, label) in enumerate(VARIANTS)]),
             "", f"Fused over plain, pass 2 means: float32 {speedups[0]:.2f}x, bf16 {speedups[1]:.2f}x.", "",
             f"Top operators, bf16 autocast, fused path, {n_prof} batches of pass 3 (self CPU time per batch):", "",
             *markdown_table(["operator", "ms / batch", "calls / batch"],
                             [[e.key, f"{e.self_cpu_time_total / 1000 / n_prof:.2f}", f"{e.count / n_prof:.0f}"]
                              for e in top]),
             "", f"Fresh training runs: `SRGNN(bf16=True).fit`, one epoch over {fits[0]['batches']} batches, each "
             "run in a process of its own (after a 20-batch warm-up fit), padded and unpadded alternating; "
             "ms per batch from the run's history:", "",
             *markdown_table(["nodes and clicks", "run", "ms / batch", "graphs", "forward + backward", "optimiser"],
                             [["padded to multiples of 8" if r["padded"] else "unpadded", i // 2 + 1,
                               f"{r['seconds']:.1f}", f"{r['graphs_s']:.1f}", f"{r['forward_backward_s']:.1f}",
                               f"{r['optimiser_s']:.1f}"] for i, r in enumerate(fits)]),
             "", f"Mean: padded {mean[True]:.1f} ms, unpadded {mean[False]:.1f} ms per batch "
             f"({mean[False] / mean[True]:.2f}x)."]
    write_page(Path(__file__).resolve().parents[1] / "docs/benchmarks/srgnn_batch_profile.md", "\n".join(lines) + "\n",
               echo=True)

if __name__ == "__main__":
    main()
