"""EMDE on the session benchmarks against the session baselines, 3 seeds.

Protocol (the foundation's, as `benchmarks/session_baselines.py`): SR-GNN
splits; every test prefix ranked against all items (pessimistic ties). EMDE's
epoch count is chosen on the validation split (last 10% of training
sessions, 10,000 sampled pairs, MRR@20 after every epoch, seed 0); then each
seed is trained on all training sessions for that many epochs and evaluated
once on the test pairs. Baselines are deterministic and use the settings
chosen on validation in `docs/benchmarks/session_baselines.md`; they are
re-run here, in the same process, for the timings.

    python benchmarks/emde_sessions.py --datasets diginetica yoochoose1-64
writes docs/benchmarks/emde_sessions.md (and .json); each finished (dataset, seed)
is cached in runs/emde_sessions/ so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if (ROOT.parent / "shared/datasets").exists():  # the staged copies beside the repository
    os.environ.setdefault("SKETCHREC_DATA", str(ROOT.parent / "shared/datasets"))

from sketchrec._memory import peak_rss_mib  # noqa: E402
from sketchrec.eval.protocols import evaluate_next_item, evaluate_session_benchmark  # noqa: E402
from sketchrec.eval.report import machine_line  # noqa: E402
from sketchrec.models import EMDE, MODELS  # noqa: E402
from sketchrec.pipeline import load_session_benchmark  # noqa: E402

METRICS = ["HR@10", "MRR@10", "HR@20", "MRR@20"]

#: the strongest baselines, with the settings chosen on validation by `benchmarks/session_baselines.py`
BASELINE_MODELS = ("sr", "sknn", "vsknn")


def validated_baselines(name: str) -> dict[str, dict]:
    path = ROOT / "docs/benchmarks/session_baselines.json"
    chosen = json.loads(path.read_text()) if path.exists() else {}
    if name not in chosen:
        raise SystemExit(f"no validated baseline settings for {name} in {path}: run "
                         f"`python benchmarks/session_baselines.py --datasets ... {name}` first")
    return {m: chosen[name]["chosen"][m] for m in BASELINE_MODELS}


#: the EMDE configuration (inputs: the session decayed and its last item; two Cleora sources)
EMDE_PARAMS = dict(inputs=("all:cleora:1", "all:cleora:3", "last:cleora:1"), outputs=("cleora:1", "cleora:3"),
                   n_sketches=10, n_bits=7, hidden=1024, n_blocks=1, decay=0.9, lr=0.004, lr_decay=0.5,
                   batch_size=512, readout="bayes", prior=1.0, progress=True)


def choose_epochs(bench, max_epochs: int, params: dict) -> tuple[int, list]:
    valid = bench.validation(0.1)
    rows = np.random.default_rng(0).choice(len(valid.test_targets), min(10_000, len(valid.test_targets)),
                                           replace=False)
    model = EMDE(**{**params, "epochs": max_epochs, "seed": 0})
    model.fit(valid.train, validation=(valid.test_prefixes.take(rows), valid.test_targets[rows]),
              callback=lambda e, m, r: print(f"  validation epoch {e}: MRR@20 {r['MRR@20']:.4f} "
                                             f"HR@20 {r['HR@20']:.4f} ({r['seconds']:.0f} s)", flush=True))
    return model.best_epoch_, model.history_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["diginetica", "yoochoose1-64"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--params", type=json.loads, default={}, help="JSON overrides of EMDE settings")
    parser.add_argument("--cached-only", action="store_true",
                        help="Report the cached EMDE runs only (train nothing; seeds not cached are skipped)")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs/emde_sessions")
    parser.add_argument("--output", type=Path, default=ROOT / "docs/benchmarks/emde_sessions.md")
    args = parser.parse_args()
    params = {**EMDE_PARAMS, **args.params}
    args.cache.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    results: dict = {}
    for name in args.datasets:
        bench = load_session_benchmark(name)
        res = results[name] = {"baselines": {}, "emde": {}}
        for model_name, p in validated_baselines(name).items():
            r = evaluate_session_benchmark(MODELS[model_name](**p), bench, progress=False)
            res["baselines"][model_name] = {"metrics": r.metrics, "fit_s": r.fit_seconds,
                                            "score_s": r.score_seconds, "params": p}
            print(name, model_name, {k: round(100 * r.metrics[k], 2) for k in METRICS}, flush=True)
        key = json.dumps(params, sort_keys=True)
        chosen_file = args.cache / f"{name}.epochs.json"
        chosen = json.loads(chosen_file.read_text()) if chosen_file.exists() else None
        if args.cached_only and (chosen is None or chosen["params"] != key):
            raise SystemExit(f"{name}: no cached validation run for these settings in {args.cache}")
        if chosen is None or chosen["params"] != key:
            epochs, history = choose_epochs(bench, args.max_epochs, params)
            chosen = {"params": key, "epochs": epochs, "history": history}
            chosen_file.write_text(json.dumps(chosen))
        res["emde"]["epochs"] = chosen["epochs"]
        res["emde"]["validation"] = chosen["history"]
        runs = []
        for seed in args.seeds:
            done = args.cache / f"{name}.seed{seed}.json"
            if done.exists() and json.loads(done.read_text())["params"] == key:
                runs.append(json.loads(done.read_text()))
                continue
            if args.cached_only:
                continue
            model = EMDE(**{**params, "epochs": chosen["epochs"], "seed": seed})
            t0 = time.perf_counter()
            model.fit(bench.train)
            fit_s = time.perf_counter() - t0
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
    parts = []
    for name, res in results.items():
        head = ["model", *METRICS, "fit s", "score s", "prefixes/s", "settings"]
        lines = [f"## {name}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for model_name, r in res["baselines"].items():
            n = res["emde"]["runs"][0]["n_pairs"]
            lines.append("| " + " | ".join(
                [model_name, *[f"{100 * r['metrics'][m]:.2f}" for m in METRICS], f"{r['fit_s']:.1f}",
                 f"{r['score_s']:.1f}", f"{n / r['score_s']:,.0f}",
                 ", ".join(f"{k}={v}" for k, v in r["params"].items())]) + " |")
        runs = res["emde"]["runs"]
        def cell(m):
            values = [100 * r["metrics"][m] for r in runs]
            return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}" if len(values) > 1 else f"{values[0]:.2f}"
        score_s = np.mean([r["score_s"] for r in runs])
        lines.append("| " + " | ".join(
            ["**EMDE**", *[cell(m) for m in METRICS], f"{np.mean([r['fit_s'] for r in runs]):.0f}",
             f"{score_s:.1f}", f"{runs[0]['n_pairs'] / score_s:,.0f}",
             f"epochs={res['emde']['epochs']} (validation), seeds {[r['seed'] for r in runs]}"]) + " |")
        epoch_s = np.mean([s for r in runs for s in r["epoch_s"]])
        val = " → ".join(f"{100 * h['MRR@20']:.2f}" for h in res["emde"]["validation"])
        lines.append(f"\nEMDE: {epoch_s:.0f} s per training epoch; peak RSS "
                     f"{max(r['peak_rss_mib'] for r in runs):,.0f} MiB; validation MRR@20 by epoch: {val}.\n")
        parts.append("\n".join(lines))
    args.output.write_text(
        "# EMDE session-based: next-item prediction, full ranking over all items\n\n"
        f"{machine_line()}; total {seconds:.0f} s\n\n"
        f"Command: `python benchmarks/emde_sessions.py --datasets {' '.join(args.datasets)}`\n\n"
        "Protocol: SR-GNN splits, every test prefix ranked against all items, pessimistic ties; "
        "metrics in % (EMDE: mean ± std over seeds). EMDE's epoch count chosen on the validation "
        "split (last 10% of training sessions, 10,000 pairs, MRR@20, seed 0); baselines with their "
        "validated settings from `session_baselines.md`, re-run here. EMDE fit / score seconds are "
        "from the cached runs (`runs/emde_sessions/`): with `threads=1` they were measured with 2-3 "
        "runs sharing the 2 cores, so they are upper bounds.\n\n"
        f"EMDE settings: `{params}`\n\n" + "\n".join(parts))
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=1, default=float))
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
