"""Model selection on a validation split: fit every candidate, try blends of the best, refit the winner.

A user with new data should not have to know whether EMDE, V-SKNN or EASE suits it: `select`
fits each candidate on the validation split's training rows, scores it with the validation the
caller supplies (`sketchrec.eval.validation.NextItemValidation` / `TopkValidation`, or any
callable ``validation(model) -> {metric: value}``), tries `Blend`s of the best few with a grid
of weights, picks the best row by one metric and refits it on all training rows. The test set
is never seen here. A model trained with a validation (EMDE, SR-GNN) is refitted for the number
of epochs its validation run chose (`best_epoch_`).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field

from sketchrec.base import clone
from sketchrec.data.sessions import Sessions
from sketchrec.models.base import Recommender
from sketchrec.models.blend import Blend, fit_with_validation

log = logging.getLogger(__name__)


@dataclass
class Selection:
    """What `select` tried and chose.

    rows : one dict per candidate and blend tried: name, kind ("model" / "blend"), the
        validation metrics, fit seconds (blends: 0, they reuse fitted models), weights (blends).
    best : the winning row's name; model : the winner, refitted on `refit` rows when given
        (else the validation fit); metric : the metric rows were compared by.
    """

    metric: str
    rows: list[dict] = field(default_factory=list)
    best: str = ""
    model: Recommender | None = None

    def best_row(self) -> dict:
        return next(r for r in self.rows if r["name"] == self.best)

    def table(self, metrics: list[str] | None = None) -> list[list]:
        """Rows for a table: name, kind, the metrics (in %), fit seconds; sorted best first."""
        metrics = metrics or [self.metric]
        order = sorted(self.rows, key=lambda r: -r["metrics"].get(self.metric, float("-inf")))
        return [[r["name"], r["kind"], *(f"{100 * r['metrics'].get(m, float('nan')):.2f}" for m in metrics),
                 f"{r['fit_s']:.1f}"] for r in order]


def refit_copy(candidate: Recommender, fitted: Recommender) -> Recommender:
    """An unfitted copy of `candidate` to refit on all training rows without a validation: a
    model whose validated fit chose an epoch (`best_epoch_`) trains for that many epochs."""
    model = clone(candidate)
    best_epoch = getattr(fitted, "best_epoch_", None)
    if best_epoch and "epochs" in model.get_params():
        model.set_params(epochs=int(best_epoch))
    return model


def select(candidates: dict[str, Recommender], train: Sessions, validation, *, metric: str | None = None,
           blend_top: int = 3, blend_weights=(0.2, 0.35, 0.5, 0.65, 0.8), refit: Sessions | None = None,
           on_row=None) -> Selection:
    """Choose the best candidate, or blend of two of the best, on a validation split.

    candidates : {name: unfitted recommender} (clones are fitted; the originals stay untouched).
    train : the validation split's training rows. validation : ``validation(model) -> metrics``
        (its `select` attribute, if any, is the default `metric`); also passed to the fit of the
        models that take one (epoch choice, early stopping).
    blend_top : blends are tried between every pair of the `blend_top` best single models
        (0: no blends), with weight w on the better one for w in `blend_weights`.
    refit : all training rows: the winner is refitted on them (None: keep the validation fit).
    on_row : optional callable(row) after every row (progress for a command line).
    """
    if not candidates:
        raise ValueError("select needs at least one candidate")
    metric = metric or getattr(validation, "select", None)
    if metric is None:
        raise ValueError("select: give metric= (the validation has no `select` metric)")
    selection = Selection(metric)
    fitted: dict[str, Recommender] = {}

    def add(row: dict) -> None:
        if metric not in row["metrics"]:
            raise ValueError(f"select: the validation reports no {metric!r} (it reports {sorted(row['metrics'])})")
        selection.rows.append(row)
        if on_row is not None:
            on_row(row)

    for name, candidate in candidates.items():
        t0 = time.perf_counter()
        model = fit_with_validation(clone(candidate), train, validation)
        fit_s = time.perf_counter() - t0
        fitted[name] = model
        add({"name": name, "kind": "model", "metrics": dict(validation(model)), "fit_s": fit_s})
    singles = sorted(selection.rows, key=lambda r: -r["metrics"][metric])[:blend_top]
    for better, other in itertools.combinations([r["name"] for r in singles], 2):
        for w in blend_weights:
            blend = Blend.of_fitted([fitted[better], fitted[other]], (w, 1.0 - w))
            add({"name": f"{better}+{other} ({w:g}/{1 - w:g})", "kind": "blend", "metrics": dict(validation(blend)),
                 "fit_s": 0.0, "parts": (better, other), "weights": (w, 1.0 - w)})
    best = max(selection.rows, key=lambda r: r["metrics"][metric])     # first of equals: singles before blends
    selection.best = best["name"]
    log.info("select: %s wins on validation %s = %.4f", best["name"], metric, best["metrics"][metric])
    if refit is None:
        selection.model = fitted[best["name"]] if best["kind"] == "model" else Blend.of_fitted(
            [fitted[p] for p in best["parts"]], best["weights"])
    elif best["kind"] == "model":
        selection.model = refit_copy(candidates[best["name"]], fitted[best["name"]]).fit(refit)
    else:
        parts = tuple(refit_copy(candidates[p], fitted[p]) for p in best["parts"])
        selection.model = Blend(parts, best["weights"]).fit(refit)
    return selection
