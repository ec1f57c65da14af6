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
from sketchrec.eval.protocols import EvalResult, evaluate_session_benchmark, grid_search
from sketchrec.models import MODELS

log = logging.getLogger(__name__)

#: validation grids per session model (small: each point is a fit + a scoring pass)
SESSION_GRIDS: dict[str, dict[str, list]] = {
    "pop": {},
    "sr": {"steps": [5, 10, 20], "weighting": ["div", "linear"]},
    "iknn": {"neighbours": [50, 200], "alpha": [0.5, 0.75]},
    "sknn": {"k": [50, 100, 200], "sample_size": [500, 1000]},
    "vsknn": {"k": [50, 100, 200], "sample_size": [500, 1000], "decay": ["linear", "div"]},
}
SESSION_MODELS = list(SESSION_GRIDS)


@dataclass
class SessionRun:
    """Results of one `session_baselines` run."""

    dataset: str
    results: list[EvalResult]
    chosen: dict[str, dict] = field(default_factory=dict)
    validation: dict[str, list[dict]] = field(default_factory=dict)


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
                      on_result=None) -> SessionRun:
    """Tune (on validation) and evaluate session models on one benchmark.

    on_result: optional callback(EvalResult) called as each model finishes.
    """
    bench = dataset if isinstance(dataset, SessionBenchmark) else load_session_benchmark(dataset)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {sorted(MODELS)}")
    valid = bench.validation(validation_share) if tune else None
    run = SessionRun(bench.name, [])
    for name in models:
        grid = SESSION_GRIDS.get(name, {})
        params: dict = {}
        if tune and grid:
            params, rows = grid_search(
                MODELS[name], grid,
                lambda m: evaluate_session_benchmark(m, valid, max_pairs=tune_pairs,
                                                     progress=False).metrics,
                metric="MRR@20", progress=progress)
            run.validation[name] = rows
            log.info("%s on %s: chose %s on validation", name, bench.name, params)
        run.chosen[name] = params
        result = evaluate_session_benchmark(MODELS[name](**params), bench,
                                            max_pairs=max_test_pairs, progress=progress)
        result.model = name
        run.results.append(result)
        if on_result is not None:
            on_result(result)
    return run
