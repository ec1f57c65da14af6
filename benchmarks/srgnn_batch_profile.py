"""Where one SR-GNN training batch spends its time on CPU: float32 vs bf16 autocast, and the
top operators by torch.profiler (Diginetica, 43,097 items, batch 100, 2 threads).

    python benchmarks/srgnn_batch_profile.py --batches 80      # -> docs/benchmarks/srgnn_batch_profile.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sketchrec.data import registry  # noqa: E402
from sketchrec.data.sessions import expand_prefixes  # noqa: E402
from sketchrec.models.srgnn import GatedGraphNet, session_graphs  # noqa: E402


def training_batches(doc: str, batches: int):
    """The command line (--batches, --threads) and Diginetica's training prefixes (at most 50
    clicks) with their targets, as the SR-GNN / TAGNN training loop sees them."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=batches)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bench = registry.load("diginetica")
    prefixes, targets = expand_prefixes(bench.train)
    return args, bench, prefixes.tail(50), targets


def train_step(net, opt, graphs, targets, bf16: bool, losses: list | None = None) -> float:
    """Seconds for one forward + loss + backward + optimiser step (the loss appended to `losses`)."""
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        scores = net(*graphs)
    loss = torch.nn.functional.cross_entropy(scores.float(), targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    seconds = time.perf_counter() - t0
    if losses is not None:
        losses.append(loss.item())
    return seconds


def main() -> None:
    args, bench, prefixes, targets = training_batches(__doc__, 80)
    order = np.random.default_rng(0).permutation(len(targets))
    targets_t = torch.from_numpy(targets.astype(np.int64))
    net = GatedGraphNet(bench.train.n_items, 100, 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5, fused=True)

    def run(n: int, bf16: bool) -> float:
        times = []
        for b in range(n):
            rows = order[b * 100:(b + 1) * 100]
            times.append(train_step(net, opt, session_graphs(prefixes.take(rows)).tensors(), targets_t[rows], bf16))
        return float(np.median(times[5:]) * 1000)

    rows = [(bf16, run(args.batches, bf16)) for bf16 in (False, True, False, True)]
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(20, False)
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:10]
    lines = ["# SR-GNN: one training batch on CPU", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, {os.cpu_count()} cores, "
             f"{args.threads} threads; torch {torch.__version__}. Command: `python benchmarks/srgnn_batch_profile.py "
             f"--batches {args.batches}`. Forward + loss + backward + fused Adam, median over batches 6..N.", "",
             "| run | autocast | ms / batch |", "|---|---|---|"]
    lines += [f"| {i + 1} | {'bf16' if bf16 else 'float32'} | {ms:.1f} |" for i, (bf16, ms) in enumerate(rows)]
    lines += ["", "Top operators, float32, 20 batches (self CPU time per batch):", "",
              "| operator | ms / batch | calls / batch |", "|---|---|---|"]
    lines += [f"| {e.key} | {e.self_cpu_time_total / 1000 / 20:.2f} | {e.count / 20:.0f} |" for e in top]
    out = ROOT / "docs" / "benchmarks" / "srgnn_batch_profile.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
