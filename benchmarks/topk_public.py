"""Top-k baselines on the public splits (Gowalla, ML-1M, Last.fm), the papers' protocol.

`sketchrec.eval.public_topk.tune_and_test`: each model's setting chosen on validation (NDCG@20;
Gowalla / Last.fm: the valid file, ML-1M: 10% of each user's train items), refitted on train ∪
valid, every item outside a test user's training row ranked; Recall@20 / NDCG@20 as LightGCN's
evaluator computes them. One (dataset, model) per process, so peak RSS is that run's own; results
under benchmarks/results/topk_public/, `--report` writes docs/benchmarks/topk_public.md next to
the figures an independent evaluator measured (issue 31) and the papers' published ones.

    python -m benchmarks.topk_public --dataset gowalla --model rp3beta
    python -m benchmarks.topk_public --report
    python -m benchmarks.topk_public --dataset gowalla --speed   # every stored model again, timed: topk_speed.md
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

from sketchrec.data import registry
from sketchrec.eval.public_topk import (PUBLIC_TOPK_GRID_OVERRIDES, PUBLIC_TOPK_GRIDS, TOPK_MODEL_CLASSES,
                                        public_topk_grid, speed_page, speed_rows, stored_specs, tune_and_test)
from sketchrec.eval.report import benchmark_parser, command, machine_line, markdown_table, write_page
from sketchrec.models import model_class
from sketchrec.precision import cpu_summary

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "topk_public"
MODELS = {name: partial(model_class(cls), **fixed) for name, (cls, fixed) in TOPK_MODEL_CLASSES.items()}
#: Recall@20 / NDCG@20 of an independent evaluator (issue 31), every model tuned on validation
OUTSIDE = {("gowalla", "rp3beta"): (0.1875, 0.1558), ("gowalla", "ease"): (0.1764, 0.1466),
           ("gowalla", "ials"): (0.1555, 0.1326), ("gowalla", "iknn"): (0.1263, 0.0925),
           ("gowalla", "pop"): (0.0416, 0.0317), ("ml-1m", "ease"): (0.2755, 0.2674),
           ("ml-1m", "rp3beta"): (0.2411, 0.2296), ("ml-1m", "ials"): (0.2605, 0.2355),
           ("ml-1m", "iknn"): (0.2284, 0.2244), ("ml-1m", "pop"): (0.1161, 0.1176)}
PUBLISHED = "Published (Recall@20 / NDCG@20): Gowalla LightGCN 0.1830 / 0.1554, UltraGCN 0.1862 / 0.1580, " \
            "Mult-VAE 0.1641 / 0.1335; ML-1M UltraGCN 0.2787 / 0.2642, LightGCN 0.2576 / 0.2427."


def order_notes(results: list[dict]) -> str:
    """One sentence per dataset whose best baseline on validation is not its best on test."""
    notes = []
    for dataset in sorted({r["dataset"] for r in results}):
        tuned = [r for r in results if r["dataset"] == dataset and r["validation"]]
        if len(tuned) < 2:
            continue
        by_valid = max(tuned, key=lambda r: r["validation_best"])
        by_test = max(tuned, key=lambda r: r["test"]["NDCG@20"])
        if by_valid is not by_test:
            notes.append(f"On {dataset} validation and test disagree: {by_valid['model']} has the best validation "
                         f"NDCG@20 ({by_valid['validation_best']:.4f}, {by_test['model']} "
                         f"{by_test['validation_best']:.4f}) and tests below {by_test['model']} "
                         f"({by_valid['test']['NDCG@20']:.4f} against {by_test['test']['NDCG@20']:.4f}).")
    return " ".join(notes)


def report(output: Path) -> None:
    rows, results = [], []
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        results.append(r)
        outside = OUTSIDE.get((r["dataset"], r["model"]))
        rows.append([r["dataset"], r["model"], ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "-",
                     "-" if r["validation_best"] != r["validation_best"] else f"{r['validation_best']:.4f}", f"{r['test']['Recall@20']:.4f}", f"{r['test']['NDCG@20']:.4f}",
                     "-" if outside is None else f"{outside[0]:.4f} / {outside[1]:.4f}", f"{r['fit_seconds']:.1f} ({r.get('threads', 2)} thr., {r.get('cpu', 'CPU not recorded').split(' (')[0]})",
                     f"{r['peak_rss_mib']:,.0f}"])
    for path in sorted((RESULTS.parent / "emde_topk_public" / "test").glob("*.json")):
        r = json.loads(path.read_text())       # EMDE: mean ± std over seeds (emde_topk_public.py --test)
        n, valid = len(r["seeds"]), sum(x["validation"]["NDCG@20"] for x in r["seeds"]) / len(r["seeds"])
        rows.append([r["dataset"], f"emde ({r['tag']}, {n} seed{'s' * (n > 1)})", "epochs, readout per seed", f"{valid:.4f}",
                     *(f"{r['mean'][k]:.4f}" + f" ± {r['std'][k]:.4f}" * (n > 1) for k in ("Recall@20", "NDCG@20")), "-",
                     f"{sum(x['fit_seconds'] for x in r['seeds']) / len(r['seeds']):.1f}", f"{r['peak_rss_mib']:,.0f}"])
    grids = "\n".join([f"- `{m}`: {g or 'no parameters'}" for m, g in PUBLIC_TOPK_GRIDS.items()] + [
        f"- `{m}` on {d} instead: {g}" for d, over in PUBLIC_TOPK_GRID_OVERRIDES.items() for m, g in over.items()])
    write_page(output, f"# Top-k baselines on the public splits\n\n{machine_line()} (the machine that wrote this "
               "page; each fit time names the CPU it ran on where that was recorded)\n\n"
               f"Command: {command('topk_public', dataset='D', model='M')} per dataset and model, then "
               f"{command('topk_public', report=True)}\n\n{__doc__.split(chr(10) + chr(10))[1]}\n\n"
               f"Validation grids:\n{grids}\n\n" + "\n".join(markdown_table(
                   ["dataset", "model", "chosen on validation", "valid NDCG@20", "test Recall@20", "test NDCG@20",
                    "independent evaluator", "fit s", "peak RSS MiB"], rows)) + f"\n\n{PUBLISHED}\n\n{order_notes(results)}\n", echo=True)


def main() -> None:
    parser = benchmark_parser(__doc__, dataset="gowalla", threads=2, output=ROOT / "docs/benchmarks/topk_public.md")
    parser.add_argument("--model", choices=sorted(MODELS), default="rp3beta")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--speed", action="store_true", help="refit and time every stored model of --dataset")
    args = parser.parse_args()
    if args.report:
        return report(args.output)
    if args.speed:
        rows = speed_rows(args.dataset, stored_specs(RESULTS, args.dataset), args.threads)
        return write_page(args.output.with_name("topk_speed.md"), speed_page(args.dataset, rows, args.threads, command(
            "topk_public", dataset=args.dataset, speed=True, threads=args.threads)), data=rows, echo=True)
    grid = public_topk_grid(args.model, args.dataset)
    t0 = time.perf_counter()
    out = tune_and_test(registry.load(args.dataset), MODELS[args.model], grid, ks=(20,), threads=args.threads)
    out.update(dataset=args.dataset, model=args.model, wall_seconds=time.perf_counter() - t0, threads=args.threads,
               cpu=cpu_summary(),
               validation_best=max(r["NDCG@20"] for r in out["validation"]) if out["validation"] else float("nan"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.dataset}-{args.model}.json").write_text(json.dumps(out, indent=1, default=float))
    print(args.dataset, args.model, out["params"], {k: round(v, 4) for k, v in out["test"].items() if "@" in k})


if __name__ == "__main__":
    main()
