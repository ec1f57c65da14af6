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

from sketchrec.eval.batch_profiles import srgnn_profile_page, training_batches
from sketchrec.eval.report import run_python, write_page
from sketchrec.models.srgnn import session_graphs
from sketchrec.models.srgnn.profiling import VARIANTS, fit_run, top_operators, variant_step_times


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
    times, losses, runs = variant_step_times(bench.train.n_items, graphs, targets_t, batches)
    warm = 5
    n_prof = min(20, args.batches)
    top = top_operators(*runs[-1][:2], graphs, targets_t, batches, n_prof)
    fits = fresh_runs(args)
    lines = srgnn_profile_page(args, times, losses, [(precision, label) for precision, _, _, label in VARIANTS], warm,
                               top, n_prof, fits)
    write_page(Path(__file__).resolve().parents[1] / "docs/benchmarks/srgnn_batch_profile.md", "\n".join(lines) + "\n",
               echo=True)

if __name__ == "__main__":
    main()
