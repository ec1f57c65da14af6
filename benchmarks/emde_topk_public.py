"""EMDE on the public top-k benchmarks (Gowalla, ML-1M, Last.fm): one setting per run, on validation.

Each run trains one EMDE setting (the `emde-topk` preset, float32, inputs/outputs `cleora:1`
unless --set changes them) on the benchmark's validation split and scores the held-out part
after every epoch (`sketchrec.eval.topk_ablation`); the readout is chosen on the same
validation. Runs are stored under benchmarks/results/emde_topk_public/ (the first run of a
dataset, tag `base`, is the row every gain is measured from); `--report` writes
docs/benchmarks/emde_topk_public.md from all of them, with the validation figures of the tuned
baselines that `benchmarks/topk_public.py` stored.

    python -m benchmarks.emde_topk_public --dataset lastfm --tag base
    python -m benchmarks.emde_topk_public --dataset lastfm --tag k10n20 --set n_bits=10 n_sketches=20 readout=min \
        inputs=all:cleora:1,all:cleora:0 outputs=cleora:1,cleora:0
    python -m benchmarks.emde_topk_public --report

`--test` runs the paper protocol for a chosen setting instead (`public_topk.validated_refit_and_test`:
per seed, epochs and readout chosen on validation, refit on train ∪ valid, test), stored under
benchmarks/results/emde_topk_public/test/ and shown by `benchmarks/topk_public.py --report`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sketchrec import presets
from sketchrec.data import registry
from sketchrec.eval.public_topk import validated_refit_and_test
from sketchrec.eval.report import benchmark_parser, command, machine_line, write_page
from sketchrec.eval.topk_ablation import ablation_page, parse_settings, stored_runs, validation_run
from sketchrec.models import EMDE

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "emde_topk_public"
BASE = {**presets.get("emde-topk"), "inputs": ("all:cleora:1",), "outputs": ("cleora:1",), "progress": False,
        "bf16": False, "threads": 1}


def main() -> None:
    parser = benchmark_parser(__doc__, dataset="lastfm", epochs=10, seed=0, seeds=[0, 1, 2],
                              output=ROOT / "docs/benchmarks/emde_topk_public.md")
    parser.add_argument("--tag", default="base", help="the run's name (the file it is stored in)")
    parser.add_argument("--set", nargs="*", default=[], help="EMDE settings over the base ones, KEY=VALUE")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--test", action="store_true", help="validated refit and test, one run per --seeds")
    args = parser.parse_args()
    if args.report:
        baselines = {}            # the tuned baselines' validation figures (benchmarks/topk_public.py)
        for path in sorted((RESULTS.parent / "topk_public").glob("*.json")):
            r = json.loads(path.read_text())
            if r["validation"]:
                best = max(r["validation"], key=lambda row: row["NDCG@20"])
                name = f"{r['model']} ({', '.join(f'{k}={v}' for k, v in r['params'].items())})"
                baselines.setdefault(r["dataset"], {})[name] = best
        write_page(args.output, ablation_page(stored_runs(RESULTS), baselines, machine_line(),
                                              "python -m benchmarks.emde_topk_public --report"), echo=True)
        return
    params = {**BASE, "epochs": args.epochs, "seed": args.seed, **parse_settings(args.set)}
    if args.test:
        result = validated_refit_and_test(registry.load(args.dataset), EMDE, params, args.seeds,
                                          on_seed=lambda row: print(args.tag, row, flush=True))
        result.update(dataset=args.dataset, model="emde", tag=args.tag, command=command(
            "emde_topk_public", dataset=args.dataset, tag=args.tag, set=args.set or None, epochs=args.epochs,
            test=True, seeds=args.seeds))
        (RESULTS / "test").mkdir(parents=True, exist_ok=True)
        return (RESULTS / "test" / f"{args.dataset}-{args.tag}.json").write_text(json.dumps(result, indent=1))
    (ROOT / "runs" / "emde_topk_public").mkdir(parents=True, exist_ok=True)
    result = validation_run(registry.load(args.dataset), EMDE, params, on_epoch=lambda e, m, row: print(
        args.tag, e, {k: round(v, 4) for k, v in row.items() if k in ("valid_NDCG@20", "loss", "seconds")}, flush=True),
        checkpoint=ROOT / "runs" / "emde_topk_public" / f"{args.dataset}-{args.tag}.ckpt.npz")   # resumes after a kill
    result.update(dataset=args.dataset, tag=args.tag, command=command(
        "emde_topk_public", dataset=args.dataset, tag=args.tag, set=args.set or None,
        epochs=args.epochs),
        when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.dataset}-{args.tag}.json").write_text(json.dumps(result, indent=1, default=list))
    print(args.tag, result["best"], result["readouts"])


if __name__ == "__main__":
    main()
