"""Training cost per batch on this CPU: float32 vs bfloat16, and what the "auto" default picks.

    python -m benchmarks.train_step_speed [--sessions 12000] [--bf16-batches 6]

Two measurements, each in float32, forced bf16 autocast, and the default (`bf16="auto"`):
- one network step (forward + backward + Adam), median of 3 after a warm-up: EMDE's network
  (512 rows, 3 input modalities and 2 output sources of depth 10 x width 128, ~60 active input
  buckets per row, hidden 1,024 and 3,000) and SR-GNN's (100 real Diginetica prefixes, hidden
  100, full softmax over 43,097 items);
- what a user's `fit` sees: `EMDE(epochs=1).fit` and `SRGNN(epochs=1).fit` on the first
  `--sessions` Diginetica training sessions (sketching / batch graphs included), seconds of
  the epoch over its batches. Forced bf16 on a CPU without native bf16 is so slow that its fit
  runs over the first `--bf16-batches` batches' worth of sessions only.

A ratio measured on one CPU may not hold on another, so the results are kept per CPU in
docs/benchmarks/train_step_speed.json and the page shows one table per CPU it was run on.
Writes docs/benchmarks/train_step_speed.md.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from sketchrec.data.sessions import expand_prefixes
from sketchrec.eval.batch_profiles import PRECISIONS, network_step_rows, step_speed_page
from sketchrec.eval.report import benchmark_parser, machine_line, read_json, utc_now, write_page
from sketchrec.models import EMDE, SRGNN
from sketchrec.models.emde import SketchNet
from sketchrec.models.srgnn import GatedGraphNet, session_graphs, softmax_cross_entropy
from sketchrec.pipeline import load_session_benchmark
from sketchrec.precision import cpu_summary, native_bf16

OUT = Path(__file__).resolve().parents[1] / "docs/benchmarks/train_step_speed.md"
STORE = OUT.with_suffix(".json")
TEMPLATE = Path(__file__).resolve().parent / "templates" / "train_step_speed.md"   # the page's prose


def emde_steps() -> list[dict]:
    batch, n_inputs = 512, 3 * 10 * 128
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, n_inputs, (batch * 60,), generator=g)
    offsets = torch.arange(0, batch * 60 + 1, 60)
    weights = torch.rand(batch * 60, generator=g)
    target = torch.randint(0, 128, (batch, 20, 1), generator=g)
    return [row for hidden in (1024, 3000) for row in network_step_rows(
        f"EMDE network step, hidden {hidden}", SketchNet(n_inputs, hidden, 20, 128, 1),
        lambda net: net(idx, offsets, weights), lambda log_p: -log_p.gather(2, target).mean())]


def srgnn_steps(bench) -> list[dict]:
    prefixes, targets = expand_prefixes(bench.train)
    rows = np.random.default_rng(0).choice(len(targets), 100, replace=False)
    batch, y = prefixes.take(rows), torch.from_numpy(targets[rows].astype(np.int64))
    tensors = session_graphs(batch).tensors()
    return network_step_rows(f"SR-GNN network step, {bench.n_items:,} items", GatedGraphNet(bench.n_items, 100, 1),
                             lambda net: net(*tensors), lambda scores: softmax_cross_entropy(scores, y))


def fit_rows(bench, n_sessions: int, bf16_batches: int, threads: int) -> list[dict]:
    """Seconds per batch of one real training epoch, for each precision setting."""
    out = []
    for name, make, batch_size in (
            ("EMDE().fit", lambda bf16: EMDE(epochs=1, bf16=bf16, threads=threads, progress=False), 512),
            ("SRGNN().fit", lambda bf16: SRGNN(epochs=1, bf16=bf16, threads=threads, progress=False), 100)):
        make(False).fit(bench.train.take(np.arange(500)))      # warm-up: numba compiles its kernels once
        for label, bf16 in (("default (auto)", "auto"), *PRECISIONS):
            emulated = bf16 is True and not native_bf16()
            train = bench.train.take(np.arange(n_sessions))
            if emulated:      # about 4 prefixes per session: a few batches' worth
                train = train.take(np.arange(max(2, bf16_batches * batch_size // 4)))
            model = make(bf16)
            model.fit(train)
            seconds = sum(h["seconds"] for h in model.history_)
            batches = -(-len(expand_prefixes(train)[1]) // batch_size)
            out.append({"what": name, "precision": label, "resolved": "bf16" if model.bf16_ else "float32",
                        "ms": 1000 * seconds / batches, "batches": batches})
            print(out[-1], flush=True)
    return out


def main() -> None:
    parser = benchmark_parser(__doc__, threads=os.cpu_count() or 1)
    parser.add_argument("--sessions", type=int, default=12000, help="Diginetica training sessions per fit")
    parser.add_argument("--bf16-batches", type=int, default=6,
                        help="batches of the forced-bf16 fit on a CPU without native bf16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench = load_session_benchmark("diginetica")
    t0 = time.perf_counter()
    rows = [*emde_steps(), *srgnn_steps(bench), *fit_rows(bench, args.sessions, args.bf16_batches, args.threads)]
    store = read_json(STORE, {})
    store[cpu_summary()] = {"when": utc_now(), "machine": machine_line(),
                            "threads": args.threads, "rows": rows,
                            "note": f"fit rows on the first {args.sessions:,} sessions; {time.perf_counter() - t0:.0f} s"}
    STORE.write_text(json.dumps(store, indent=1))
    write_page(OUT, step_speed_page(store, TEMPLATE.read_text()))


if __name__ == "__main__":
    main()
