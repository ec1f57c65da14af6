"""What one training batch costs: the timing of a network's optimiser step in float32 and under
bf16 autocast (benchmarks/train_step_speed.py), and the shared setup of the per-batch training
profiles of SR-GNN and TAGNN (benchmarks/srgnn_batch_profile.py, benchmarks/tagnn_batch_speed.py):
their command line and Diginetica's training prefixes as the training loop sees them.
"""

from __future__ import annotations

from sketchrec.data import registry
from sketchrec.data.sessions import expand_prefixes
from sketchrec.eval.report import benchmark_parser, median_seconds
from sketchrec.precision import native_bf16

PRECISIONS = (("float32", False), ("bf16 autocast", True))


def network_step_rows(what: str, net, forward, loss_of, lr: float = 1e-3) -> list[dict]:
    """Median ms of one training step — `forward(net)` (under bf16 autocast in that precision),
    `loss_of` its output, backward, Adam — in each of `PRECISIONS`, as rows {what, precision, ms}.
    Fewer repeats when emulated bf16 (no native bf16 on this CPU) makes one step take seconds."""
    import torch
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    rows = []
    for label, bf16 in PRECISIONS:
        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = forward(net)
            loss = loss_of(out)
            opt.zero_grad()
            loss.backward()
            opt.step()
        slow = bf16 and not native_bf16()
        rows.append({"what": what, "precision": label, "ms": 1000 * median_seconds(step, repeats=3 if slow else 5)})
        print(rows[-1], flush=True)
    return rows


def training_batches(doc: str, batches: int, extra=None, argv=None):
    """The command line (--batches, --threads, and what `extra(parser)` adds; `argv`, default
    sys.argv) with torch's threads set and seed 0, Diginetica, and its training prefixes (at most
    50 clicks) with their targets, as the SR-GNN / TAGNN training loop sees them:
    (args, benchmark, prefixes, targets)."""
    import torch
    parser = benchmark_parser(doc, threads=2)
    parser.add_argument("--batches", type=int, default=batches)
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bench = registry.load("diginetica")
    prefixes, targets = expand_prefixes(bench.train)
    return args, bench, prefixes.tail(50), targets
