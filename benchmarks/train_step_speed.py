"""Training-step cost on this CPU: EMDE float32 vs bfloat16 autocast, and SR-GNN on Diginetica.

    python benchmarks/train_step_speed.py
times forward + backward + Adam for one batch (EMDE: 512 rows, 3 input modalities and 2 output
sources of depth 10 x width 128, ~60 active input buckets per row, hidden 1,024 and 3,000;
SR-GNN: 100 real Diginetica training prefixes, hidden 100, full softmax over 43,097 items,
with the vectorised batch-graph build timed apart). Median of 5 after a warm-up.
Writes docs/benchmarks/train_step_speed.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if (ROOT.parent / "shared/datasets").exists():
    os.environ.setdefault("SKETCHREC_DATA", str(ROOT.parent / "shared/datasets"))

from sketchrec.data.sessions import expand_prefixes  # noqa: E402
from sketchrec.eval.report import machine_line, median_seconds as median_time  # noqa: E402
from sketchrec.models.emde import SketchNet  # noqa: E402
from sketchrec.models.srgnn import GatedGraphNet, session_graphs  # noqa: E402
from sketchrec.pipeline import load_session_benchmark  # noqa: E402


def emde_rows() -> list[str]:
    rows, batch, n_inputs = [], 512, 3 * 10 * 128
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, n_inputs, (batch * 60,), generator=g)
    offsets = torch.arange(0, batch * 60 + 1, 60)
    weights = torch.rand(batch * 60, generator=g)
    target = torch.randint(0, 128, (batch, 20, 1), generator=g)
    for hidden in (1024, 3000):
        net = SketchNet(n_inputs, hidden, 20, 128, 1)
        opt = torch.optim.Adam(net.parameters())
        for bf16 in (False, True):
            def step():
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss = -net(idx, offsets, weights).gather(2, target).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            s = median_time(step)
            rows.append(f"| EMDE hidden {hidden} | {'bfloat16 autocast' if bf16 else 'float32'} | {1000 * s:.0f} |")
            print(rows[-1], flush=True)
    return rows


def srgnn_rows() -> list[str]:
    bench = load_session_benchmark("diginetica")
    prefixes, targets = expand_prefixes(bench.train)
    rows = np.random.default_rng(0).choice(len(targets), 100, replace=False)
    batch, y = prefixes.take(rows), torch.from_numpy(targets[rows].astype(np.int64))
    net = GatedGraphNet(bench.n_items, 100, 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    tensors = [torch.from_numpy(a) for a in session_graphs(batch, 50)]

    def step():
        loss = torch.nn.functional.cross_entropy(net(*tensors), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    build = median_time(lambda: session_graphs(batch, 50))
    train = median_time(step)
    epoch = len(targets) / 100 * (build + train)
    out = [f"| SR-GNN batch graphs (100 prefixes) | numpy | {1000 * build:.1f} |",
           f"| SR-GNN hidden 100, 43,097 items | float32 | {1000 * train:.0f} |"]
    print(*out, f"epoch estimate {epoch:.0f} s", sep="\n", flush=True)
    return out + [f"\nSR-GNN epoch estimate on Diginetica ({len(targets):,} prefixes): {epoch:.0f} s."]


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    table = ["| model | precision | ms per batch |", "|---|---|---|", *emde_rows(), *srgnn_rows()]
    out = ROOT / "docs/benchmarks/train_step_speed.md"
    out.write_text("# Training-step cost\n\n" f"{machine_line()}; torch threads {torch.get_num_threads()}\n\n"
                   "Command: `python benchmarks/train_step_speed.py`\n\n"
                   "Forward + backward + Adam for one batch, median of 5 after a warm-up (EMDE: 512 rows of "
                   "random sparse sketches, depth 20 x width 128 output; SR-GNN: 100 real Diginetica prefixes).\n\n"
                   + "\n".join(table) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
