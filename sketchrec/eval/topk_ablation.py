"""EMDE settings on a public top-k benchmark's validation split: one run per setting, and the page.

`validation_run` trains one EMDE setting on `benchmark.validation()` (its train rows; the held-out
part scored after every epoch, the best epoch kept), then reads the best epoch's predicted sketches
with every readout asked for ("bayes" at several prior weights, "min", "geometric"): the readout
is chosen on validation too. `ablation_page` renders every stored run as one table per dataset,
each row's gain over the dataset's first (base) row. The test part is never read here.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import Callable

from sketchrec.eval.report import markdown_table, peak_rss_mib
from sketchrec.eval.validation import TopkValidation
from sketchrec.precision import cpu_summary

#: prior weights of the "bayes" readout tried after training
BAYES_PRIORS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)


def validation_rows(benchmark) -> tuple:
    """(train rows, TopkValidation over the users with held-out items) of `benchmark.validation()`."""
    valid = benchmark.validation()
    return valid.fit_rows(), TopkValidation(*valid.evaluation(), ks=(20,))


def validation_run(benchmark, make: Callable, params: dict, readouts=("bayes", "min"), on_epoch=None,
                   checkpoint=None) -> dict:
    """Fit ``make(**params)`` on the validation split, then score its best epoch with each readout.
    checkpoint : optional path the fit writes after every epoch and resumes from after a kill
        (fit_s is then this process's part).

    Returns {"params", "history", "best_epoch", "best" (the training readout's metrics at the best
    epoch), "readouts" ({"bayes/prior=1": {...}, "min": {...}}), "fit_s", "peak_rss_mib"}.
    """
    train, validation = validation_rows(benchmark)
    t0 = time.perf_counter()
    model = make(**params).fit(train, validation=validation, callback=on_epoch, checkpoint=checkpoint)
    fit_s = time.perf_counter() - t0
    best = max(model.history_, key=lambda h: h.get("valid_NDCG@20", -1.0))
    result = {"params": params, "history": model.history_, "best_epoch": model.best_epoch_,
              "best": {k.removeprefix("valid_"): v for k, v in best.items() if k.startswith("valid_")},
              "readouts": {}, "fit_s": fit_s, "peak_rss_mib": peak_rss_mib(), "cpu": cpu_summary()}
    for readout in readouts:
        for prior in (BAYES_PRIORS if readout == "bayes" else (model.prior,)):
            model.set_params(readout=readout, prior=prior)
            name = f"bayes/prior={prior:g}" if readout == "bayes" else readout
            result["readouts"][name] = {k: float(v) for k, v in validation(model).items()
                                        if k in ("Recall@20", "NDCG@20")}
    return result


def readout_settings(name: str) -> dict:
    """The EMDE settings a readout name of `validation_run` stands for: "bayes/prior=2" ->
    {"readout": "bayes", "prior": 2.0}; "min" -> {"readout": "min"}."""
    kind, _, prior = name.partition("/prior=")
    return {"readout": kind, **({"prior": float(prior)} if prior else {})}


def best_readout(result: dict) -> tuple[str, dict]:
    """The readout with the best validation NDCG@20 of one run: (name, metrics)."""
    return max(result["readouts"].items(), key=lambda kv: kv[1]["NDCG@20"])


def ablation_page(results: dict[str, list[dict]], references: dict[str, dict[str, dict]], machine: str,
                  command: str) -> str:
    """One table per dataset: each stored run (its tag and the settings that differ from the first
    run's), its best readout's validation Recall@20 / NDCG@20 and gain over the first row, epochs,
    fit time; then the baselines' validation figures (`references`: {dataset: {model: metrics}})."""
    out = ["# EMDE on the public top-k benchmarks: what each setting gains on validation", "",
           machine, "", f"Command: `{command}`", "",
           "Every row trains on the validation split's train rows (Gowalla, Last.fm: train vs valid; "
           "ML-1M: 10% of each user's train items held out) and is scored on its held-out part after every "
           "epoch (best epoch kept); the readout (bayes with prior 0-2, count-min) is chosen on the same "
           "validation. The test part is not read. Metrics in %, all items ranked, training items excluded. "
           "`fit s` is wall time on a machine shared with other runs, on the CPU named after it (runs stored "
           "before 2026-12-07 19:00 did not record theirs): not a speed figure.", ""]
    for dataset, runs in results.items():
        base = runs[0]
        base_ndcg = best_readout(base)[1]["NDCG@20"]
        rows = []
        for run in runs:
            readout, metrics = best_readout(run)
            diff = {k: v for k, v in run["params"].items() if base["params"].get(k) != v}
            settings = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                                 for k, v in diff.items())
            rows.append([run["tag"], settings or "(base)", readout,
                         f"{100 * metrics['Recall@20']:.2f}", f"{100 * metrics['NDCG@20']:.2f}",
                         f"{100 * (metrics['NDCG@20'] - base_ndcg):+.2f}", str(run["best_epoch"]),
                         str(len(run["history"])),
                         f"{run['fit_s']:.0f} ({run.get('cpu', 'CPU not recorded').split(' (')[0]})"])
        for model, metrics in references.get(dataset, {}).items():
            rows.append([model, "(baseline, tuned)", "-", f"{100 * metrics['Recall@20']:.2f}",
                         f"{100 * metrics['NDCG@20']:.2f}", f"{100 * (metrics['NDCG@20'] - base_ndcg):+.2f}",
                         "-", "-", "-"])
        out += [f"## {dataset}", "", *markdown_table(
            ["run", "settings (vs base)", "best readout", "Recall@20", "NDCG@20", "NDCG gain", "best epoch",
             "epochs run", "fit s"], rows), ""]
    return "\n".join(out)


def stored_runs(directory: Path) -> dict[str, list[dict]]:
    """{dataset: [run, ...]} from the JSON files `benchmarks/emde_topk_public.py` writes, base first."""
    import json
    runs: dict[str, list[dict]] = {}
    for path in sorted(Path(directory).glob("*.json")):
        run = json.loads(path.read_text())
        if "tag" not in run:                # baselines.json: the baselines' validation figures
            continue
        runs.setdefault(run["dataset"], []).append(run)
    for dataset in runs:
        runs[dataset].sort(key=lambda r: (r["tag"] != "base", r.get("when", "")))
    return runs


def parse_settings(pairs: list[str]) -> dict:
    """["n_bits=10", "readout=min", "inputs=all:cleora:1,all:cleora:0"] -> {"n_bits": 10,
    "readout": "min", "inputs": ("all:cleora:1", "all:cleora:0")}: Python literals, else text,
    comma-separated text as a tuple (modality lists)."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = tuple(value.split(",")) if "," in value or key in ("inputs", "outputs") else value
    return out
