"""What one training batch costs: the timing of a network's optimiser step in float32 and under
bf16 autocast (benchmarks/train_step_speed.py), and the shared setup of the per-batch training
profiles of SR-GNN and TAGNN (benchmarks/srgnn_batch_profile.py, benchmarks/tagnn_batch_speed.py):
their command line and Diginetica's training prefixes as the training loop sees them; and the
SR-GNN profile's, the TAGNN speed test's and the training step speed pages (`srgnn_profile_page`,
`tagnn_speed_page`, `step_speed_page`).
"""

from __future__ import annotations

from sketchrec.data import registry
from sketchrec.data.sessions import expand_prefixes
from sketchrec.eval.report import benchmark_parser, host_line, markdown_table, median_seconds
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


def srgnn_profile_page(args, times, losses, variants, warm: int, top, n_prof: int, fits: list[dict]) -> list[str]:
    """benchmarks/srgnn_batch_profile.py's page, as lines: ms per batch of each (precision, label) in
    `variants` (`times`: seconds of shape (passes, variants, batches), batches after the first `warm`
    counted; `losses`: pass 1's per variant), the fused over plain speed-ups of pass 2, the `top`
    profiler events over `n_prof` batches, and the fresh `fits` (`fit_run` results), padded vs
    unpadded. `args`: batches, fit_batches, fit_repeats, threads."""
    import numpy as np
    import torch
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
                              for v, (precision, label) in enumerate(variants)]),
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
    return lines


def tagnn_speed_page(args, variants, run: dict, epoch_batches: int, n_batches: int, mean_nodes: float) -> list[str]:
    """benchmarks/tagnn_batch_speed.py's page, as lines: per (target attention, precision) in `variants`
    the median / mean ms per batch, the epoch estimate over `epoch_batches`, the speed-up over the
    first variant and how far its weights and losses drifted from the chunked float32 one (`run`: what
    `tagnn_variant_times` returns for `n_batches` batches of `mean_nodes` nodes). `args`: batches, threads."""
    import numpy as np
    import torch
    (load0, load1), times, drift, loss_gap = run["load"], run["times"], run["drift"], run["loss_gap"]
    lines = ["# TAGNN: one training batch on CPU", "",
             f"{host_line()}, {args.threads} threads; torch {torch.__version__}; load average {load0:.1f} -> {load1:.1f}. "
             f"Command: `python benchmarks/tagnn_batch_speed.py --batches {args.batches} --threads {args.threads}`. "
             f"Forward + loss + backward + fused Adam over {n_batches} batches of one epoch's order "
             f"(mean padded graph size {mean_nodes:.1f} nodes; the epoch has {epoch_batches:,} batches).", "",
             *markdown_table(["target attention", "precision", "median ms / batch", "mean ms / batch",
                              "epoch estimate (min)", "vs plain float32",
                              "max abs weight difference from chunked float32 after the batches",
                              "max abs loss difference"],
                             [[name, precision, f"{np.median(t) * 1000:.0f}", f"{t.mean() * 1000:.0f}",
                               f"{t.mean() * epoch_batches / 60:.0f}", f"{times[0].mean() / t.mean():.2f}x", f"{dw:.2g}",
                               f"{dl:.2g}"] for (name, precision), t, dw, dl in zip(variants, times, drift, loss_gap)])]
    return lines


def step_speed_page(store: dict, template: str) -> str:
    """benchmarks/train_step_speed.py's page: `template` (benchmarks/templates/train_step_speed.md) with one
    section per CPU of `store` (newest first: machine, threads, note, ms per batch and the ratio to float32)
    on the line `$sections`."""
    sections = []
    for cpu, run in sorted(store.items(), key=lambda kv: kv[1]["when"], reverse=True):
        base = {r["what"]: r["ms"] for r in run["rows"] if r["precision"] == "float32"}
        sections += [f"## {cpu}", "", run["machine"], "", f"torch threads {run['threads']}; {run['note']}", "",
                     *markdown_table(["what", "precision", "resolved to", "ms per batch", "vs float32"], [
                         [r["what"], r["precision"], r.get("resolved", ""), f"{r['ms']:,.1f}",
                          f"{r['ms'] / base[r['what']]:.2f}x" if r["what"] in base else ""] for r in run["rows"]])]
        sections.append("")
    template = template.split("\n")
    at = template.index("$sections")
    return "\n".join(template[:at] + sections + template[at + 1:])
