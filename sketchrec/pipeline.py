"""The product's main jobs, shared by the CLI, `make demo` and the benchmark scripts.

`session_baselines`: load a session benchmark, tune each model on a validation
split of the training sessions (never on test), refit on all training
sessions, evaluate on the test pairs with full ranking, and return the results.
Later stages (Cleora -> EMDE / SR-GNN -> bundle -> serve) plug in here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sketchrec.data.benchmark import SessionBenchmark
from sketchrec.data.splits import user_holdout_split
from sketchrec.eval.protocols import EvalResult, evaluate_session_benchmark, grid_search
from sketchrec.models import MODELS

log = logging.getLogger(__name__)

#: validation grids per session model (small: each point is a fit + a scoring pass)
SESSION_GRIDS: dict[str, dict[str, list]] = {
    "pop": {},
    "sr": {"steps": [5, 10, 20], "weighting": ["div", "linear"]},
    "iknn": {"neighbours": [50, 200], "alpha": [0.5, 0.75]},
    "sknn": {"neighbours": [50, 100, 200], "sample_size": [500, 1000]},
    # scoring "session-rec" (session-rec's VSKNN) was never chosen on the four session benchmarks'
    # validation splits: the chosen points, and so the test table, are those of the grid without it
    "vsknn": {"neighbours": [50, 100, 200], "sample_size": [500, 1000], "decay": ["linear", "div"],
              "scoring": ["sketchrec", "session-rec"]},
}
SESSION_MODELS = list(SESSION_GRIDS)


@dataclass
class SessionRun:
    """Results of one `session_baselines` run."""

    dataset: str
    results: list[EvalResult]
    chosen: dict[str, dict] = field(default_factory=dict)
    validation: dict[str, list[dict]] = field(default_factory=dict)
    models: dict = field(default_factory=dict)      # fitted models, with keep_models=True


def load_session_benchmark(name: str) -> SessionBenchmark:
    from sketchrec.data import registry
    bench = registry.load(name)
    if not isinstance(bench, SessionBenchmark):
        raise ValueError(f"dataset {name!r} is not a session benchmark (it loads as "
                         f"{type(bench).__name__})")
    return bench


def session_baselines(dataset: str | SessionBenchmark, models=SESSION_MODELS, *, tune: bool = True,
                      validation_share: float = 0.1, tune_pairs: int = 5000,
                      max_test_pairs: int | None = None, progress: bool = True,
                      on_result=None, keep_models: bool = False, grids: dict | None = None,
                      fixed: dict | None = None, validate_all: bool = False) -> SessionRun:
    """Tune (on validation) and evaluate session models on one benchmark.

    on_result: optional callback(EvalResult) called as each model finishes.
    keep_models: keep the fitted models in `run.models` (e.g. to bundle one).
    grids: validation grid per model (default `SESSION_GRIDS`); fixed: settings per model
        that are not tuned (e.g. a training budget), applied under the chosen ones.
    validate_all: with tune, also score the models without a grid (EMDE, pop) on validation, so
        every model has a validation figure in `run.validation` (to choose which one to serve).
    """
    grids = SESSION_GRIDS if grids is None else grids
    fixed = fixed or {}
    bench = dataset if isinstance(dataset, SessionBenchmark) else load_session_benchmark(dataset)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {sorted(MODELS)}")
    valid = bench.validation(validation_share) if tune else None
    run = SessionRun(bench.name, [])
    for name in models:
        grid = grids.get(name, {})
        params: dict = dict(fixed.get(name, {}))
        if tune and (grid or validate_all):
            chosen, rows = grid_search(
                lambda **p: MODELS[name](**{**params, **p}), grid,
                lambda m: evaluate_session_benchmark(m, valid, max_pairs=tune_pairs,
                                                     progress=False).metrics,
                metric="MRR@20", progress=progress)
            params.update(chosen)
            run.validation[name] = rows
            log.info("%s on %s: chose %s on validation", name, bench.name, chosen)
        run.chosen[name] = params
        model = MODELS[name](**params)
        result = evaluate_session_benchmark(model, bench, max_pairs=max_test_pairs, progress=progress)
        result.model = name
        run.results.append(result)
        if keep_models:
            run.models[name] = model
        if on_result is not None:
            on_result(result)
    return run


# -- top-k recommendation (user histories) ------------------------------------------

TOPK_GRIDS: dict[str, dict[str, list]] = {
    "pop": {},
    "iknn": {"neighbours": [50, 200, 0], "alpha": [0.5]},
    "ease": {"lam": [50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0]},
}
TOPK_KS = (1, 5, 10, 20)


#: the per-user holdout split, now `sketchrec.data.splits.user_holdout_split` (old name kept)
topk_split = user_holdout_split


def topk_baselines(histories, name: str, models=tuple(TOPK_GRIDS), *, seeds=(0, 1, 2),
                   metric: str = "NDCG@20", progress: bool = False) -> dict:
    """Top-k protocol over seeds: per-user 80/20 split, settings tuned on an inner 80/20 split.

    histories: one row per user (`Sessions`). Returns {model: {"chosen": [...],
    "metrics": {name: (mean, std)}, "fit_s": ..., "score_s": ...}}.
    """
    import time

    import numpy as np

    from sketchrec.eval.protocols import evaluate_topk
    out = {}
    for model_name in models:
        per_seed, chosen, fit_s, score_s = [], [], [], []
        for seed in seeds:
            train, inputs, targets = user_holdout_split(histories, seed)
            params: dict = {}
            grid = TOPK_GRIDS.get(model_name, {})
            if grid:
                # validation: split each evaluated user's inputs again; test targets unseen
                v_train, v_inputs, v_targets = user_holdout_split(inputs, seed + 1000)
                def evaluate(model):
                    model.fit(v_train)
                    return evaluate_topk(model, v_inputs, v_targets, ks=TOPK_KS, progress=False)[0]
                params, _ = grid_search(_topk_model(model_name), grid, evaluate, metric,
                                        progress=progress)
            model = _topk_model(model_name)(**params)
            t0 = time.perf_counter()
            model.fit(train)
            fit_s.append(time.perf_counter() - t0)
            metrics, seconds = evaluate_topk(model, inputs, targets, ks=TOPK_KS, progress=progress)
            per_seed.append(metrics)
            chosen.append(params)
            score_s.append(seconds)
        names = [k for k in per_seed[0] if not k.startswith("n_")]
        out[model_name] = {
            "chosen": chosen, "fit_s": float(np.mean(fit_s)), "score_s": float(np.mean(score_s)),
            "n_users": int(per_seed[0]["n_rows"]),
            "metrics": {k: (float(np.mean([m[k] for m in per_seed])),
                            float(np.std([m[k] for m in per_seed], ddof=1)) if len(seeds) > 1 else 0.0)
                        for k in names}}
        log.info("%s on %s: %s", model_name, name, out[model_name]["metrics"].get(metric))
    return out


def _topk_model(name: str):
    """Model factory for the top-k protocol: item-kNN scores from the whole history."""
    if name == "iknn":
        return lambda **p: MODELS["iknn"](history="all", **p)
    return MODELS[name]


def item_id_map(bench: SessionBenchmark):
    """The benchmark's external item ids as a string `IdMap` (internal ids when it has none)."""
    from sketchrec.data.idmap import IdMap
    ids = bench.item_ids
    if ids is None:
        keys = range(bench.n_items)
    elif isinstance(ids, IdMap):
        keys = ids.keys.to_pylist()
    else:
        keys = list(ids)
    return IdMap([str(k) for k in keys], "item")


def bundle_and_query(bench: SessionBenchmark, model, metrics: dict, directory, n_requests: int = 3) -> dict:
    """Save `model` as a bundle, serve it over HTTP on loopback and answer real test prefixes.

    Returns {"bundle": path, "responses": [...], "latency_ms": [...]}: the end of the demo
    pipeline (ingest -> train -> evaluate -> bundle -> serve a request).
    """
    import socket
    import threading
    import time
    from pathlib import Path

    import httpx
    import uvicorn

    from sketchrec.bundle import save_bundle
    from sketchrec.serve import create_app
    items = item_id_map(bench)
    path = Path(directory) / "bundle"
    save_bundle(path, model, items, metrics=metrics, config={"dataset": bench.name})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(path), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    responses, latency = [], []
    try:
        for r in range(n_requests):
            session = [str(items.keys[int(i)]) for i in bench.test_prefixes.row(r)]
            t0 = time.perf_counter()
            reply = httpx.post(f"http://127.0.0.1:{port}/recommend", json={"items": session, "k": 5}, timeout=30)
            latency.append(1000 * (time.perf_counter() - t0))
            reply.raise_for_status()
            responses.append({"session": session, **reply.json()})
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return {"bundle": str(path), "responses": responses, "latency_ms": latency}


# -- the demo ------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoPlan:
    """What `sketchrec demo` runs: which baselines with which validation grids, and the
    settings that are not tuned (EMDE's training budget). `summary` is printed with the table."""

    name: str
    grids: dict[str, dict[str, list]]
    fixed: dict[str, dict]
    summary: str


DEMO_FULL = DemoPlan("full", SESSION_GRIDS, {}, "every baseline with its whole validation grid; EMDE with its "
                     "defaults (3 epochs, hidden 1,024) on all training prefixes")
DEMO_QUICK = DemoPlan(
    "quick", SESSION_GRIDS, {"emde": {"epochs": 1, "hidden": 512}},
    "every baseline with its whole validation grid; EMDE trimmed to 1 epoch at hidden 512 "
    "(the full demo: 3 epochs at 1,024), so EMDE's row understates it; "
    "`sketchrec demo --full` (`make demo FULL=1`) runs it in full")


# -- the best model for the user's data (`sketchrec train auto`) -------------------------------

def auto_candidates(kind: str, n_items: int) -> dict:
    """The models `train auto` tries: {name: unfitted recommender}, for kind "session" (next item
    of a session prefix) or "topk" (a user's held-out items). Settings are the validated presets
    and the points the benchmarks' validation grids chose most often; EASE only where its
    n_items² matrix fits (`EASE.max_items`)."""
    from sketchrec import presets
    from sketchrec.models import EASE, EMDE, SLIM, VSKNN, ItemKNN, Popularity, RP3beta, SequentialRules, SessionKNN
    if kind == "session":
        return {"pop": Popularity(), "sr": SequentialRules(steps=10, weighting="linear"),
                "iknn": ItemKNN(neighbours=50, alpha=0.75), "sknn": SessionKNN(neighbours=100, sample_size=500),
                "vsknn": VSKNN(**presets.get("vsknn-session")),
                "emde": EMDE(**{**presets.get("emde-session"), "epochs": 3, "progress": False})}
    if kind != "topk":
        raise ValueError(f"kind must be 'session' or 'topk', not {kind!r}")
    out = {"pop": Popularity(), "iknn": ItemKNN(neighbours=200, history="all"),
           **{f"rp3beta(beta={b:g})": RP3beta(alpha=1.0, beta=b, neighbours=200, normalize=True) for b in (0.2, 0.5, 0.8)},
           # SLIM at 200 candidates (400 scored higher on ML-1M and Last.fm, at ~4x the fit)
           **{f"slim(l2={lam:g})": SLIM(l1=1.0, l2=lam, neighbours=200) for lam in (100.0, 500.0)}}
    for lam in (100.0, 500.0):
        if n_items <= EASE().max_items:
            out[f"ease(lam={lam:g})"] = EASE(lam=lam)
    out["emde"] = EMDE(**{**presets.get("emde-topk"), "inputs": ("all:cleora:1", "all:cleora:0"),
                          "outputs": ("cleora:1", "cleora:0"), "n_bits": 9, "n_sketches": 20, "epochs": 10,
                          "patience": 3, "progress": False})
    return out


@dataclass
class AutoRun:
    """What `auto_select` chose and how the refitted winner scored on test."""

    kind: str
    selection: object                 # sketchrec.models.select.Selection
    test: dict
    metrics: list[str]


def auto_select(bench, candidates: dict | None = None, *, blend: bool = True, max_valid: int | None = 20_000,
                on_row=None, progress: bool = True) -> AutoRun:
    """Choose the best model (or blend of two) on a validation split of `bench`'s training data,
    refit it on all of it, and evaluate it once on the test part.

    bench : a `SessionBenchmark` (validation: the last 10% of training sessions, MRR@20) or a
        `TopkBenchmark` (its validation split: valid items, or a held-out part of train; NDCG@20).
    max_valid : validation rows scored per candidate (a seeded sample; None: all).
    """
    import numpy as np

    from sketchrec.data.loaders.topk import TopkBenchmark
    from sketchrec.eval.protocols import evaluate_topk
    from sketchrec.eval.validation import NextItemValidation, TopkValidation
    from sketchrec.models.select import select
    rng = np.random.default_rng(0)
    if isinstance(bench, TopkBenchmark):
        kind, metrics = "topk", ["Recall@20", "NDCG@20"]
        valid = bench.validation()
        inputs, targets = valid.evaluation()           # the users with held-out items
        if max_valid is not None and len(inputs) > max_valid:
            rows = np.sort(rng.choice(len(inputs), max_valid, replace=False))
            inputs, targets = inputs.take(rows), targets.take(rows)
        validation = TopkValidation(inputs, targets, ks=(20,))
        train, refit = valid.fit_rows(), bench.fit_rows()
    elif isinstance(bench, SessionBenchmark):
        kind, metrics = "session", ["HR@20", "MRR@20"]
        valid = bench.validation(0.1)
        rows = np.arange(len(valid.test_targets))
        if max_valid is not None and len(rows) > max_valid:
            rows = np.sort(rng.choice(rows, max_valid, replace=False))
        validation = NextItemValidation(valid.test_prefixes.take(rows), valid.test_targets[rows], ks=(20,))
        train, refit = valid.train, bench.train
    else:
        raise TypeError(f"auto_select takes a SessionBenchmark or a TopkBenchmark, not {type(bench).__name__}")
    candidates = candidates if candidates is not None else auto_candidates(kind, bench.n_items)
    selection = select(candidates, train, validation, refit=refit, blend_top=3 if blend else 0, on_row=on_row)
    if kind == "topk":
        inputs, targets = bench.evaluation()
        test, _ = evaluate_topk(selection.model, inputs, targets, ks=(20,), progress=progress)
    else:
        test = evaluate_session_benchmark(selection.model, bench, ks=(20,), fit=False, progress=progress).metrics
    return AutoRun(kind, selection, {k: float(v) for k, v in test.items() if "@" in k}, metrics)
