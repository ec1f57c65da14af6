"""Evaluation protocols as reusable functions.

- `evaluate_next_item`: session prefix -> next item, full ranking over all items
  (no sampled negatives), HR/MRR/NDCG@K. Ties are pessimistic by default: a
  target tied with other items is ranked after all of them.
- `evaluate_topk`: user input history -> held-out items, seen items excluded,
  Recall/Precision/NDCG/MAP/HR@K.
- `grid_search`: model selection on a validation split (never on test).
- `select_epochs_then_refit`: the epoch count chosen on a validation split, then a refit on
  all training data for that many epochs.
- `select_epochs_then_prior`: top-k epochs chosen on validation, then the readout's prior weight
  (EMDE's popularity prior) on the same validation split (benchmarks/emde_topk.py).
- `over_seeds`: repeat a seeded evaluation, report mean ± std.
- `validated_settings`: the settings a validation run chose (benchmarks/session_baselines.py's
  results), for re-running those models elsewhere (benchmarks/emde_sessions.py).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
from tqdm.auto import tqdm

from sketchrec.data.benchmark import SessionBenchmark
from sketchrec.data.sessions import Sessions
from sketchrec.eval.metrics import ranking_metrics, session_metrics, summarise, target_ranks
from sketchrec.eval.validation import TopkValidation
from sketchrec.topk import topk

if TYPE_CHECKING:   # protocols score anything with `score`; they never import a model
    from sketchrec.models.base import Recommender

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """Metrics of one model on one evaluation set, with timings."""

    model: str
    dataset: str
    metrics: dict[str, float]
    n_eval: int
    fit_seconds: float = float("nan")
    score_seconds: float = float("nan")
    params: dict = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.n_eval / self.score_seconds if self.score_seconds > 0 else float("nan")

    def as_row(self) -> dict:
        return {"model": self.model, "dataset": self.dataset, **self.metrics,
                "fit_s": self.fit_seconds, "score_s": self.score_seconds, "n": self.n_eval}


def _batches(n: int, batch_size: int, progress: bool, desc: str):
    starts = range(0, n, batch_size)
    return tqdm(starts, desc=desc, unit="batch", leave=False, disable=not progress)


def next_item_ranks(model: Recommender, prefixes: Sessions, targets: np.ndarray, *,
                    batch_size: int = 1000, ties: str = "pessimistic",
                    progress: bool = False) -> tuple[np.ndarray, float]:
    """(ranks, scoring seconds): the 1-based rank of every target among all items' scores
    ((n,) int64; float64 with ties="average"), scored in batches of `batch_size` prefixes."""
    if len(prefixes) != len(targets):
        raise ValueError(f"{len(prefixes)} prefixes but {len(targets)} targets")
    ranks = np.empty(len(targets), dtype=np.float64 if ties == "average" else np.int64)
    seconds = 0.0
    for start in _batches(len(targets), batch_size, progress, f"scoring {type(model).__name__}"):
        rows = np.arange(start, min(start + batch_size, len(targets)))
        t0 = time.perf_counter()
        scores = model.score(prefixes.take(rows))
        seconds += time.perf_counter() - t0
        ranks[rows] = target_ranks(scores, targets[rows], ties=ties)
    return ranks, seconds


def evaluate_next_item(model: Recommender, prefixes: Sessions, targets: np.ndarray, *,
                       ks=(10, 20), batch_size: int = 1000, ties: str = "pessimistic",
                       progress: bool = True) -> tuple[dict[str, float], float]:
    """Rank every target among all items; returns (metrics, scoring seconds)."""
    ranks, seconds = next_item_ranks(model, prefixes, targets, batch_size=batch_size, ties=ties,
                                     progress=progress)
    return session_metrics(ranks, ks=ks), seconds


def next_item_validation(valid: SessionBenchmark, n_pairs: int = 10_000, seed: int = 0, **options):
    """What a session model is scored on after every training epoch: at most `n_pairs` test pairs
    of a validation benchmark (`SessionBenchmark.validation`), drawn without replacement
    (seeded), in the drawn order, as a `NextItemValidation` (`options`: its ks, loss, select)."""
    from sketchrec.eval.validation import NextItemValidation
    rows = np.random.default_rng(seed).choice(len(valid.test_targets), min(n_pairs, len(valid.test_targets)),
                                              replace=False)
    return NextItemValidation(valid.test_prefixes.take(rows), valid.test_targets[rows], **options)


def evaluate_session_benchmark(model: Recommender, bench: SessionBenchmark, *, ks=(10, 20),
                               max_pairs: int | None = None, seed: int = 0, fit: bool = True,
                               batch_size: int = 1000, progress: bool = True) -> EvalResult:
    """Fit on `bench.train` (unless fit=False) and evaluate on its test pairs.

    max_pairs: evaluate a seeded random subset of the pairs (for fast tuning).
    """
    fit_seconds = float("nan")
    if fit:
        t0 = time.perf_counter()
        model.fit(bench.train)
        fit_seconds = time.perf_counter() - t0
    rows = np.arange(len(bench.test_targets))
    if max_pairs is not None and max_pairs < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_pairs, replace=False))
    metrics, seconds = evaluate_next_item(model, bench.test_prefixes.take(rows),
                                          bench.test_targets[rows], ks=ks,
                                          batch_size=batch_size, progress=progress)
    return EvalResult(type(model).__name__, bench.name, metrics, len(rows), fit_seconds, seconds,
                      model.get_params())


def evaluate_topk(model: Recommender, inputs: Sessions, targets: Sessions, *,
                  ks=(1, 5, 10, 20), batch_size: int = 1000, exclude_input: bool = True,
                  exclude: Sessions | None = None, progress: bool = True) -> tuple[dict[str, float], float]:
    """Top-k protocol: score each input history, exclude its items, compare with targets.

    exclude: the rows whose items are removed from the ranking, when they differ
    from `inputs` (e.g. inputs carry extra modalities such as disliked items
    that other models do not see; excluding only the shared inputs keeps the
    comparison fair).
    """
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} input rows but {len(targets)} target rows")
    kmax = max(ks)
    per_row: dict[str, list] = {}
    seconds = 0.0
    for start in _batches(len(inputs), batch_size, progress, f"scoring {type(model).__name__}"):
        rows = np.arange(start, min(start + batch_size, len(inputs)))
        batch = inputs.take(rows)
        t0 = time.perf_counter()
        scores = model.score(batch)
        seconds += time.perf_counter() - t0
        seen = batch if exclude is None else exclude.take(rows)
        items, values = topk(scores, kmax, exclude=(seen.indptr, seen.items) if exclude_input else None)
        if exclude_input:  # excluded items pad short rows with -inf: never count them as hits
            items = np.where(np.isneginf(values), -1, items)
        tgt = targets.take(rows)
        for name, values in ranking_metrics(items, tgt.indptr, tgt.items, ks=ks).items():
            per_row.setdefault(name, []).append(values)
    summary = summarise({name: np.concatenate(v) for name, v in per_row.items()})
    return summary, seconds


def grid_search(make_model: Callable[..., Recommender], grid: dict[str, list],
                evaluate: Callable[[Recommender], dict[str, float]], metric: str,
                progress: bool = True) -> tuple[dict, list[dict]]:
    """Try every combination of `grid`; return (best params, all rows).

    `evaluate(model)` must fit and score on a validation split: selection on
    the test set overstates results and is never done here.
    """
    names = list(grid)
    combos = list(itertools.product(*(grid[n] for n in names)))
    rows = []
    for values in tqdm(combos, desc="grid search", leave=False, disable=not progress or len(combos) < 2):
        params = dict(zip(names, values))
        metrics = evaluate(make_model(**params))
        rows.append({**params, **metrics})
        log.info("validation %s: %s=%.4f", params, metric, metrics[metric])
    best = max(rows, key=lambda r: r[metric])
    return {n: best[n] for n in names}, rows


@dataclass
class EpochSelection:
    """What `select_epochs_then_refit` chose and fitted.

    epochs : the epoch count chosen on validation (the probe's best epoch)
    history : the probe's per-epoch rows (loss, validation metrics, seconds)
    probe : the model trained on the validation split's training part (its best epoch's state)
    model : the model refitted on all training data for `epochs` epochs (None without a refit)
    """

    epochs: int
    history: list[dict]
    probe: object
    model: object | None = None


def select_epochs_then_refit(make_model: Callable[[int], object], fit_part, validation, train=None, *,
                             max_epochs: int, probe_kwargs: dict | None = None,
                             refit_kwargs: dict | None = None,
                             on_selected: Callable[[int], None] | None = None) -> EpochSelection:
    """Choose the number of training epochs on validation, then retrain on all training data.

    make_model : epochs -> an unfitted model that trains for that many epochs (everything else,
        the seed included, bound by the caller).
    fit_part : what the probe trains on: the training data minus the validation part.
    validation : what the probe is scored on after every epoch (a `sketchrec.eval.validation`
        object, e.g. `next_item_validation`), passed on as ``fit(fit_part, validation=validation)``;
        the model keeps its best epoch as `best_epoch_`.
    train : all training data; the refit trains ``make_model(epochs)`` on it. None: no refit
        (e.g. to refit once per seed).
    max_epochs : the probe's epoch budget.
    probe_kwargs, refit_kwargs : more keyword arguments of the two `fit` calls (callback, checkpoint).
    on_selected : called with the chosen epoch count before the refit starts.

    The test set takes no part: select on a validation split of the training data, report on test.
    """
    probe = make_model(max_epochs).fit(fit_part, validation=validation, **(probe_kwargs or {}))
    epochs = getattr(probe, "best_epoch_", None)
    if epochs is None:
        raise RuntimeError(f"{type(probe).__name__} chose no epoch on validation (no epoch scored; "
                           f"history: {getattr(probe, 'history_', None)})")
    log.info("%s: %d epoch(s) chosen on validation", type(probe).__name__, epochs)
    if on_selected is not None:
        on_selected(epochs)
    model = None if train is None else make_model(epochs).fit(train, **(refit_kwargs or {}))
    return EpochSelection(int(epochs), list(probe.history_), probe, model)


def select_epochs_then_prior(make_model: Callable[[int], object], fit_part, inputs: Sessions, targets: Sessions,
                             exclude: Sessions, *, max_epochs: int, priors, k: int = 20
                             ) -> tuple[EpochSelection, float, float]:
    """Top-k selection on a validation split: the epoch count by NDCG@k after every epoch
    (`select_epochs_then_refit` with a `TopkValidation` of `inputs` -> `targets`, `exclude`d items
    not ranked; no refit), then, with the best epoch's weights kept, the readout prior weight in
    `priors` with the best validation NDCG@k (the model's `prior` set, its cached readout dropped).
    Returns (the epoch selection, the chosen prior, its validation NDCG@k); ties go to the first prior."""
    chosen = select_epochs_then_refit(make_model, fit_part, TopkValidation(inputs, targets, exclude=exclude),
                                      max_epochs=max_epochs)
    model, by_prior = chosen.probe, {}
    for prior in priors:      # the best epoch's weights are loaded; only the readout changes
        model.prior, model._readout = prior, None
        by_prior[prior] = evaluate_topk(model, inputs, targets, ks=(k,), exclude=exclude,
                                        progress=False)[0][f"NDCG@{k}"]
    prior = max(by_prior, key=by_prior.get)
    return chosen, prior, by_prior[prior]


def over_seeds(run: Callable[[int], dict[str, float]], seeds=(0, 1, 2)) -> dict[str, tuple[float, float]]:
    """Run `run(seed)` per seed; returns {metric: (mean, std)} (std with ddof=1 when > 1 seed)."""
    results = [run(s) for s in seeds]
    out = {}
    for name in results[0]:
        values = np.array([r[name] for r in results], dtype=np.float64)
        out[name] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
    return out


def validated_settings(path, dataset: str, models) -> dict[str, dict]:
    """The settings of each of `models` chosen on validation for `dataset`, as saved (the names of
    then) in the JSON results at `path` ({dataset: {"chosen": {model: settings}}}, what
    benchmarks/session_baselines.py writes); SystemExit saying how to make them when there are none."""
    chosen = json.loads(path.read_text()) if path.exists() else {}
    if dataset not in chosen:
        raise SystemExit(f"no validated baseline settings for {dataset} in {path}: run "
                         f"`python benchmarks/session_baselines.py --datasets ... {dataset}` first")
    return {m: chosen[dataset]["chosen"][m] for m in models}
