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

from pathlib import Path

import numpy as np
import torch

from sketchrec.eval.batch_profiles import tagnn_speed_page, training_batches
from sketchrec.eval.report import write_page
from sketchrec.models import srgnn
from sketchrec.models.srgnn.profiling import TAGNN_VARIANTS, tagnn_variant_times


def main() -> None:
    args, bench, prefixes, targets = training_batches(__doc__, 40)
    sizes = srgnn.node_counts(prefixes)
    epoch = srgnn.batch_order(np.random.default_rng(0), len(targets), 100, sizes)
    sample = epoch[:args.batches]
    run = tagnn_variant_times(bench.train.n_items, prefixes, torch.from_numpy(targets.astype(np.int64)), epoch, sample)
    lines = tagnn_speed_page(args, [(name, precision) for name, _, precision in TAGNN_VARIANTS], run, len(epoch),
                             len(sample), np.mean([sizes[r].max() for r in sample]))
    write_page(Path(__file__).resolve().parents[1] / "docs/benchmarks/tagnn_batch_speed.md", "\n".join(lines) + "\n",
               echo=True)

if __name__ == "__main__":
    main()
