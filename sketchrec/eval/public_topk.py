"""The public top-k benchmarks' protocol (Gowalla, ML-1M, Last.fm; `TopkBenchmark`) as one call.

`tune_and_test`: choose a model's setting on `benchmark.validation()` (fit on its train rows,
score its held-out part from those rows), refit the chosen setting on `benchmark.fit_rows()`
(train ∪ valid), rank every item not in each test user's row, and report Recall@K / NDCG@K
averaged over the test users. Test takes no part in the choice.

The metrics are the papers' (LightGCN, UltraGCN and their evaluators): per user,
Recall@K = hits in the top K / number of the user's test items (not min(that, K)), and
NDCG@K = DCG@K / IDCG@K with IDCG over min(number of test items, K) ideal hits, binary
relevance, log2(rank + 1) discount; users without test items are not evaluated. These are
exactly `sketchrec.eval.metrics.recall_at_k` and `ndcg_at_k` (through `ranking_metrics`, which
`evaluate_topk` uses), so nothing of their own is defined here.

Models come from the caller as factories (``make(**params)`` -> an unfitted recommender):
evaluation sits below the models and never imports them.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from sketchrec._memory import release_free_memory
from sketchrec.data.loaders.topk import TopkBenchmark
from sketchrec.eval.protocols import evaluate_topk
from sketchrec.eval.report import machine_line, markdown_table, peak_rss_mib, run_python, seeds_mean_std
from sketchrec.eval.topk_ablation import best_readout, readout_settings, validation_run

if TYPE_CHECKING:
    from sketchrec.models.base import Recommender

#: validation grids per model short name (small: each point is a fit and a scoring pass)
PUBLIC_TOPK_GRIDS: dict[str, dict[str, list]] = {
    "pop": {},
    "iknn": {"neighbours": [100, 200]},
    # normalize: each pruned row scaled to sum 1 (Dacrema et al.'s normalize_similarity), chosen on
    # validation on Gowalla and ML-1M
    "rp3beta": {"alpha": [1.0], "beta": [0.2, 0.5, 0.8], "neighbours": [200], "normalize": [False, True]},
    "ease": {"lam": [100.0, 500.0, 1000.0]},
    # l2 on EASE's scale; l1 small (the sparsity comes mostly from the candidates per item)
    "slim": {"l1": [1.0, 10.0], "l2": [100.0, 500.0, 1000.0, 2000.0], "neighbours": [200, 400]},
    # alpha: implicit's confidence weight (its default 1; 10 is chosen on validation on both sets)
    "ials": {"factors": [64, 128], "regularization": [0.01], "iterations": [15], "alpha": [1.0, 10.0]},
}

#: per-dataset replacements of a model's grid (EASE on Gowalla's 41k items: ~8 min a point)
PUBLIC_TOPK_GRID_OVERRIDES: dict[str, dict[str, dict[str, list]]] = {
    "gowalla": {"ease": {"lam": [100.0, 500.0]},
                # ~80 s a point on one core at 200 candidates (400: ~4x the coordinate descent)
                "slim": {"l1": [1.0], "l2": [30.0, 100.0, 300.0], "neighbours": [200]}},
}


def public_topk_grid(model: str, dataset: str) -> dict[str, list]:
    """The validation grid of `model` (a key of `PUBLIC_TOPK_GRIDS`) on `dataset`."""
    if model not in PUBLIC_TOPK_GRIDS:
        raise KeyError(f"no public top-k grid for {model!r}; known: {sorted(PUBLIC_TOPK_GRIDS)}")
    return PUBLIC_TOPK_GRID_OVERRIDES.get(dataset, {}).get(model, PUBLIC_TOPK_GRIDS[model])


def _settings(grid: dict[str, list]) -> list[dict]:
    import itertools
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def _build(make: Callable[..., "Recommender"], params: dict, threads: int | None) -> "Recommender":
    model = make(**params)
    if threads is not None and "threads" in model.get_params():
        model.set_params(threads=threads)
    return model


def _fit_and_evaluate(make, params, threads, fit_rows, inputs, targets, ks) -> tuple[dict, float, float]:
    model = _build(make, params, threads)
    t0 = time.perf_counter()
    model.fit(fit_rows)
    fit_s = time.perf_counter() - t0
    metrics, score_s = evaluate_topk(model, inputs, targets, ks=ks, exclude_input=True, progress=False)
    del model
    gc.collect()
    release_free_memory()
    return metrics, fit_s, score_s


def tune_and_test(benchmark: TopkBenchmark, make: Callable[..., "Recommender"], grid: dict[str, list],
                  metric: str = "NDCG@20", ks=(20,), threads: int | None = 2, *,
                  validation_share: float = 0.1, validation_seed: int = 0,
                  on_setting: Callable[[dict], None] | None = None) -> dict:
    """Choose a setting on validation, refit it on train ∪ valid, evaluate on test.

    benchmark : a `TopkBenchmark` (`sketchrec.data.registry.load("gowalla")` etc.).
    make : ``make(**params)`` -> an unfitted recommender (e.g. ``EASE`` or
        ``lambda **p: ItemKNN(history="all", **p)``).
    grid : {parameter: [values]}; every combination is fitted and scored on validation
        (an empty grid: the factory's defaults, no validation pass).
    metric : what the choice maximises (a key of `evaluate_topk`'s metrics, e.g. "NDCG@20");
        ties go to the first setting in grid order.
    ks : cut-offs reported (the metric's K must be among them).
    threads : set as the model's ``threads`` when it has that parameter (None: leave it).
    validation_share, validation_seed : `benchmark.validation` (used only when the benchmark
        has no valid part, e.g. ML-1M).
    on_setting : called with each validation row as it is measured (progress logging).

    Returns {"benchmark", "metric", "grid", "params" (chosen), "validation" (one row per
    setting: its parameters, metrics, fit_s, score_s), "test" (metrics of the refit model on
    `benchmark.evaluation()`), "fit_seconds", "score_seconds" (of the refit model),
    "validation_seconds" (the whole selection), "peak_rss_mib" (this process so far),
    "n_test_users"}.
    """
    ks = tuple(ks)
    if f"@{metric.rsplit('@', 1)[-1]}" not in {f"@{k}" for k in ks}:
        raise ValueError(f"metric {metric!r} is not measured at ks={ks}")
    settings = _settings(grid)
    rows: list[dict] = []
    t_valid = time.perf_counter()
    if grid:
        valid = benchmark.validation(validation_share, validation_seed)
        v_inputs, v_targets = valid.evaluation()
        for params in settings:
            metrics, fit_s, score_s = _fit_and_evaluate(make, params, threads, valid.fit_rows(),
                                                        v_inputs, v_targets, ks)
            row = {**params, **metrics, "fit_s": fit_s, "score_s": score_s}
            rows.append(row)
            if on_setting is not None:
                on_setting(row)
        best = max(range(len(rows)), key=lambda i: (rows[i][metric], -i))
        chosen = dict(settings[best])
        del valid, v_inputs, v_targets
    else:
        chosen = {}
    validation_seconds = time.perf_counter() - t_valid
    # test is read only from here on: after the choice
    inputs, targets = benchmark.evaluation()
    test, fit_s, score_s = _fit_and_evaluate(make, chosen, threads, benchmark.fit_rows(), inputs, targets, ks)
    return {"benchmark": benchmark.name, "metric": metric, "grid": {k: list(v) for k, v in grid.items()},
            "params": chosen, "validation": rows, "test": test, "fit_seconds": fit_s,
            "score_seconds": score_s, "validation_seconds": validation_seconds,
            "peak_rss_mib": peak_rss_mib(), "n_test_users": int(len(inputs))}


def validated_refit_and_test(benchmark: TopkBenchmark, make: Callable[..., "Recommender"], params: dict,
                             seeds=(0, 1, 2), ks=(20,), threads: int | None = 1,
                             on_seed: Callable[[dict], None] | None = None) -> dict:
    """A trained model's protocol on a public split, once per seed: fit ``make(**params, seed=s)``
    on `benchmark.validation()` with per-epoch validation (`topk_ablation.validation_run`: the
    best epoch, then the best readout of those tried, both by validation NDCG@20), refit that
    epoch count and readout on train ∪ valid, evaluate on test.

    Returns {"benchmark", "params", "seeds": [{"seed", "epochs", "readout", "validation",
    "test", "fit_seconds", "seconds_per_epoch", "score_seconds", "users_per_second"}, ...],
    "mean", "std" (of the test metrics over seeds), "peak_rss_mib", "n_test_users"}.
    """
    inputs, targets = None, None
    rows = []
    for seed in seeds:
        chosen = validation_run(benchmark, make, {**params, "seed": seed})
        readout, valid_metrics = best_readout(chosen)
        refit = {**params, "seed": seed, "epochs": chosen["best_epoch"], **readout_settings(readout)}
        del chosen["history"]
        if inputs is None:             # test is read only from here on: after the choice
            inputs, targets = benchmark.evaluation()
        test, fit_s, score_s = _fit_and_evaluate(make, refit, threads, benchmark.fit_rows(), inputs, targets, ks)
        row = {"seed": seed, "epochs": refit["epochs"], "readout": readout, "validation": valid_metrics,
               "test": test, "fit_seconds": fit_s, "seconds_per_epoch": fit_s / max(refit["epochs"], 1),
               "score_seconds": score_s, "users_per_second": len(inputs) / score_s}
        rows.append(row)
        if on_seed is not None:
            on_seed(row)
    summary = seeds_mean_std([r["test"] for r in rows], [k for k in rows[0]["test"] if "@" in k])
    return {"benchmark": benchmark.name, "params": params, "seeds": rows,
            "mean": {k: m for k, (m, _) in summary.items()}, "std": {k: s for k, (_, s) in summary.items()},
            "peak_rss_mib": peak_rss_mib(), "n_test_users": int(len(inputs))}


def speed_rows(dataset: str, specs: dict[str, dict], threads: int = 2) -> list[dict]:
    """Issue 31's speed table: each model ({name: {"class", "params"}}, e.g. the settings chosen on
    validation) fitted on `dataset`'s train ∪ valid and scored on its test users, one after another
    in one run, each in a fresh process limited to `threads` (so its peak RSS is its own). One
    dict per model: fit_seconds, seconds_per_epoch (models with epochs), score_seconds,
    users_per_second, peak_rss_mib, test metrics."""
    # the child builds the model (evaluation never imports the models: they come from the caller)
    code = ("import json, sys; from sketchrec.eval.public_topk import _speed_child; "
            "from sketchrec.models.blend import as_estimator; spec = json.loads(sys.argv[2]); "
            "print(json.dumps(_speed_child(sys.argv[1], as_estimator(spec), spec, int(sys.argv[3]))))")
    return [{"model": name, **run_python(sys.executable, ["-c", code, dataset, json.dumps(spec), threads],
                                         threads=threads)} for name, spec in specs.items()]


def _speed_child(dataset: str, model: "Recommender", spec: dict, threads: int) -> dict:
    from sketchrec.data import registry

    bench = registry.load(dataset)
    if "threads" in model.get_params():
        model.set_params(threads=threads)
    t0 = time.perf_counter()
    model.fit(bench.fit_rows())
    fit_s = time.perf_counter() - t0
    inputs, targets = bench.evaluation()
    metrics, score_s = evaluate_topk(model, inputs, targets, ks=(20,), exclude_input=True, progress=False)
    epochs = model.get_params().get("epochs")
    return {"params": spec["params"], "fit_seconds": fit_s, "seconds_per_epoch": fit_s / epochs if epochs else None,
            "score_seconds": score_s, "users_per_second": len(inputs) / score_s, "peak_rss_mib": peak_rss_mib(),
            "Recall@20": metrics["Recall@20"], "NDCG@20": metrics["NDCG@20"]}


#: the classes and fixed settings of benchmarks/topk_public.py's models, by short name
TOPK_MODEL_CLASSES = {"pop": ("Popularity", {}), "iknn": ("ItemKNN", {"history": "all"}),
                      "rp3beta": ("RP3beta", {}), "ease": ("EASE", {"max_items": 50_000, "dtype": "float32"}),
                      "slim": ("SLIM", {}), "ials": ("IALS", {})}


def stored_specs(results_dir, dataset: str) -> dict[str, dict]:
    """The validated setting of every model stored for `dataset` by benchmarks/topk_public.py
    (``{dataset}-{model}.json``) and by emde_topk_public.py --test (``test/{dataset}-{tag}.json``:
    seed 0's validated epochs and readout), as {name: {"class", "params"}} for `speed_rows`."""
    specs = {}
    for path in sorted(Path(results_dir).glob(f"{dataset}-*.json")):
        r = json.loads(path.read_text())
        cls, fixed = TOPK_MODEL_CLASSES[r["model"]]
        specs[r["model"]] = {"class": cls, "params": {**fixed, **r["params"]}}
    for path in sorted((Path(results_dir).parent / "emde_topk_public" / "test").glob(f"{dataset}-*.json")):
        r = json.loads(path.read_text())
        first = r["seeds"][0]
        params = {**r["params"], "seed": first["seed"], "epochs": first["epochs"], **readout_settings(first["readout"])}
        specs[f"emde ({r['tag']})"] = {"class": "EMDE", "params": params}
    return specs


def speed_page(dataset: str, rows: list[dict], threads: int, command: str) -> str:
    """`speed_rows` as a page: fit, per epoch, scoring throughput, peak RSS, test figures."""
    def cell(v, fmt):
        return "-" if v is None else format(v, fmt)
    table = markdown_table(
        ["model", "settings", "fit s", "s / epoch", "scoring users/s", "peak RSS MiB", "test Recall@20",
         "test NDCG@20"],
        [[r["model"], ", ".join(f"{k}={v}" for k, v in r["params"].items()
                                if k not in ("progress", "threads", "bf16")) or "-",
          cell(r["fit_seconds"], ".1f"), cell(r["seconds_per_epoch"], ".1f"), cell(r["users_per_second"], ",.0f"),
          cell(r["peak_rss_mib"], ",.0f"), cell(r["Recall@20"], ".4f"), cell(r["NDCG@20"], ".4f")] for r in rows])
    return "\n".join([f"# Fit and scoring speed on {dataset} (train ∪ valid, test users)", "",
                      f"{machine_line()}; {threads} threads, one model after another in one run, each in its "
                      "own process", "", f"Command: {command}", "", *table])
