"""EMDE on the session benchmarks against the session baselines, 3 seeds.

Protocol (the foundation's, as `benchmarks/session_baselines.py`): SR-GNN
splits; every test prefix ranked against all items (pessimistic ties). EMDE's
epoch count is chosen on the validation split (last 10% of training
sessions, 10,000 sampled pairs, MRR@20 after every epoch, seed 0); then each
seed is trained on all training sessions for that many epochs and evaluated
once on the test pairs (`select_epochs_then_refit`). Baselines are deterministic
and use the settings chosen on validation in `docs/benchmarks/session_baselines.md`;
they are re-run here, in the same process, for the timings. EMDE's settings: the
`emde-session` preset (`sketchrec.presets`).

    python -m benchmarks.emde_sessions --datasets diginetica yoochoose1-64
writes docs/benchmarks/emde_sessions.md (and .json); each finished (dataset, seed)
is cached in runs/emde_sessions/ so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sketchrec import presets
from sketchrec._deprecation import current_params
from sketchrec.eval.protocols import (evaluate_next_item, evaluate_session_benchmark, next_item_validation,
                                      select_epochs_then_refit, validated_settings)
from sketchrec.eval.report import (benchmark_parser, cached_json, command, page_head, peak_rss_mib,
                                   session_run_sections, timed, write_page)
from sketchrec.models import EMDE, MODELS
from sketchrec.pipeline import load_session_benchmark
from sketchrec.training import valid_metric

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["HR@10", "MRR@10", "HR@20", "MRR@20"]
#: the strongest baselines, with the settings chosen on validation by `benchmarks/session_baselines.py`
BASELINE_MODELS = ("sr", "sknn", "vsknn")


def choose_epochs(bench, max_epochs: int, params: dict) -> tuple[int, list]:
    valid = bench.validation(0.1)
    show = lambda e, m, r: print(f"  validation epoch {e}: MRR@20 {valid_metric(r, 'MRR@20'):.4f} "  # noqa: E731
                                 f"HR@20 {valid_metric(r, 'HR@20'):.4f} ({r['seconds']:.0f} s)", flush=True)
    chosen = select_epochs_then_refit(lambda epochs: EMDE(**{**params, "epochs": epochs, "seed": 0}), valid.train,
                                      next_item_validation(valid), max_epochs=max_epochs,
                                      probe_kwargs={"callback": show})
    return chosen.epochs, chosen.history


def main() -> None:
    parser = benchmark_parser(__doc__, datasets=["diginetica", "yoochoose1-64"], seeds=[0, 1, 2],
                              output=ROOT / "docs/benchmarks/emde_sessions.md")
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--params", type=json.loads, default={}, help="JSON overrides of EMDE settings")
    parser.add_argument("--cached-only", action="store_true",
                        help="Report the cached EMDE runs only (train nothing; seeds not cached are skipped)")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs/emde_sessions")
    args = parser.parse_args()
    params = {**presets.get("emde-session"), "progress": True, **args.params}
    args.cache.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    results: dict = {}
    for name in args.datasets:
        bench = load_session_benchmark(name)
        res = results[name] = {"baselines": {}, "emde": {}}
        for model_name, p in validated_settings(ROOT / "docs/benchmarks/session_baselines.json", name,
                                                BASELINE_MODELS).items():
            model = MODELS[model_name](**current_params(MODELS[model_name], p))     # renamed since: k -> neighbours
            r = evaluate_session_benchmark(model, bench, progress=False)
            res["baselines"][model_name] = {"metrics": r.metrics, "fit_s": r.fit_seconds,
                                            "score_s": r.score_seconds, "params": p}
            print(name, model_name, {k: round(100 * r.metrics[k], 2) for k in METRICS}, flush=True)
        key = json.dumps(params, sort_keys=True)
        chosen_file = args.cache / f"{name}.epochs.json"
        chosen = cached_json(chosen_file, key)
        if chosen is None:
            if args.cached_only:
                raise SystemExit(f"{name}: no cached validation run for these settings in {args.cache}")
            epochs, history = choose_epochs(bench, args.max_epochs, params)
            chosen = {"params": key, "epochs": epochs, "history": history}
            chosen_file.write_text(json.dumps(chosen))
        res["emde"]["epochs"] = chosen["epochs"]
        res["emde"]["validation"] = chosen["history"]
        runs = []
        for seed in args.seeds:
            done = args.cache / f"{name}.seed{seed}.json"
            if (run := cached_json(done, key)) is not None or args.cached_only:
                runs += [run] if run is not None else []
                continue
            model, fit_s = timed(EMDE(**{**params, "epochs": chosen["epochs"], "seed": seed}).fit, bench.train)
            metrics, score_s = evaluate_next_item(model, bench.test_prefixes, bench.test_targets, progress=False)
            run = {"params": key, "seed": seed, "metrics": metrics, "fit_s": fit_s, "score_s": score_s,
                   "epoch_s": [r["seconds"] for r in model.history_], "n_pairs": len(bench.test_targets),
                   "peak_rss_mib": peak_rss_mib()}
            done.write_text(json.dumps(run))
            runs.append(run)
            print(name, "EMDE seed", seed, {k: round(100 * metrics[k], 2) for k in METRICS},
                  f"fit {fit_s:.0f} s", flush=True)
        if not runs:
            raise SystemExit(f"{name}: no cached EMDE run for seeds {args.seeds}")
        res["emde"]["runs"] = runs
    write(args, params, results, time.perf_counter() - t_start)


def write(args, params, results, seconds) -> None:
    parts = session_run_sections(results, METRICS)
    write_page(args.output, page_head("EMDE session-based: next-item prediction, full ranking over all items",
                                      command("emde_sessions", datasets=args.datasets), f"; total {seconds:.0f} s") +
               "Protocol: SR-GNN splits, every test prefix ranked against all items, pessimistic ties; "
               "metrics in % (EMDE: mean ± std over seeds). EMDE's epoch count chosen on the validation "
               "split (last 10% of training sessions, 10,000 pairs, MRR@20, seed 0); baselines with their "
               "validated settings from `session_baselines.md`, re-run here. EMDE fit / score seconds are "
               "from the cached runs (`runs/emde_sessions/`): with `threads=1` they were measured with 2-3 "
               "runs sharing the 2 cores, so they are upper bounds.\n\n"
               f"EMDE settings: `{params}`\n\n" + "\n".join(parts), data=results)


if __name__ == "__main__":
    main()
