"""A blend of recommenders: each model's scores standardised per row, then mixed with weights.

Models score on different scales (EMDE a log-likelihood ratio, EASE a linear reconstruction,
kNN a similarity sum), so each row of each model's scores is standardised (z-score over all
items) before the weighted sum. The weights are what `sketchrec.models.select` chooses on a
validation split; a blend is a `Recommender` like any other (fit, score, save, bundle, serve).
"""

from __future__ import annotations

import inspect
import json

import numpy as np

from sketchrec.base import ArrayMap, clone, json_scalar
from sketchrec.data.sessions import Sessions
from sketchrec.models.base import Recommender, model_class


def standardise_rows(scores: np.ndarray) -> np.ndarray:
    """Per row: (s - mean) / std over the items, in place (float32); a constant row becomes 0,
    non-finite scores (an excluded item's -inf) the row's finite minimum."""
    bad = ~np.isfinite(scores)
    if bad.any():
        low = np.where(bad, np.inf, scores).min(axis=1, keepdims=True)
        np.copyto(scores, np.broadcast_to(np.where(np.isfinite(low), low, 0.0), scores.shape), where=bad)
    scores -= scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    scores /= np.where(std > 0, std, 1.0)
    return scores


def fit_with_validation(model: Recommender, train: Sessions, validation=None) -> Recommender:
    """`model.fit(train, validation=...)` where the model's fit takes a validation, else `fit(train)`."""
    if validation is not None and "validation" in inspect.signature(model.fit).parameters:
        return model.fit(train, validation=validation)
    return model.fit(train)


def as_estimator(spec) -> Recommender:
    """A recommender, or one described as {"class": name, "params": {...}} (how a blend's models
    are saved as JSON parameters), as an unfitted recommender."""
    if isinstance(spec, Recommender):
        return spec
    if not isinstance(spec, dict) or set(spec) != {"class", "params"}:
        raise ValueError(f"a blend's model must be a Recommender or {{'class': name, 'params': {{...}}}}, not {spec!r}")
    cls = model_class(spec["class"])
    cls.check_params(spec["params"])
    return cls(**spec["params"])


class Blend(Recommender):
    """Weighted sum of the per-row standardised scores of several recommenders.

    Parameters
    ----------
    models : the recommenders (or their {"class", "params"} descriptions, as saved); `fit` fits
        a clone of each (`models_`). `Blend.of_fitted` blends models fitted already (how `select`
        tries weights without refitting).
    weights : one weight per model (None: equal). Negative weights are refused.
    """

    _state = ("weights_",)

    def __init__(self, models: tuple = (), weights: tuple[float, ...] | None = None):
        self.models = models
        self.weights = None if weights is None else tuple(weights)

    def saved_params(self) -> dict:
        """The parameters as JSON gives them back: each model as {"class", "params"}."""
        params = super().saved_params()
        params["models"] = json.loads(json.dumps(list(self.models), default=json_scalar))
        return params

    @classmethod
    def check_params(cls, params: dict) -> None:
        super().check_params(params)
        for spec in params.get("models", ()):       # each model's own parameters, by its own class
            as_estimator(spec)

    def parts(self) -> list[Recommender]:
        """The models as unfitted recommenders (descriptions built)."""
        return [as_estimator(m) for m in self.models]

    def _weights(self, n: int) -> np.ndarray:
        w = np.full(n, 1.0 / max(n, 1)) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        if len(w) != n or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError(f"Blend needs {n} finite, non-negative weights (not all 0), got {self.weights!r}")
        return w

    def fit(self, train: Sessions, validation=None) -> "Blend":
        """Fit a clone of every model on `train` (validation: passed to the models that take one)."""
        if not self.models:
            raise ValueError("Blend needs at least one model")
        weights = self._weights(len(self.models))
        self.models_ = [fit_with_validation(clone(m), train, validation) for m in self.parts()]
        self.weights_, self.n_items_ = weights, train.n_items
        return self

    @classmethod
    def of_fitted(cls, models, weights=None) -> "Blend":
        """A blend of models fitted already (on the same items), without refitting them."""
        models = list(models)
        n_items = {m.n_items_ for m in models}
        if len(n_items) != 1:
            raise ValueError(f"Blend.of_fitted: the models know different item counts {sorted(n_items)}")
        blend = cls(tuple(models), None if weights is None else tuple(float(w) for w in weights))
        blend.models_, blend.weights_, blend.n_items_ = models, blend._weights(len(models)), n_items.pop()
        return blend

    def score(self, histories: Sessions) -> np.ndarray:
        self._check_histories(histories)
        out = np.zeros((len(histories), self.n_items_), dtype=np.float32)
        for w, model in zip(self.weights_, self.models_):
            if w > 0:
                out += np.float32(w) * standardise_rows(np.array(model.score(histories), dtype=np.float32))
        return out

    # each model's state under "model<i>." (its class and parameters are in this blend's parameters)
    def _save_extra(self) -> dict[str, np.ndarray]:
        arrays = {}
        for i, model in enumerate(self.models_):
            arrays[f"model{i}.n_items_"] = np.array(model.n_items_)
            arrays.update({f"model{i}.{k}": v for k, v in model.state_arrays().items()})
        return arrays

    def _load_extra(self, arrays) -> None:
        names = arrays.files if hasattr(arrays, "files") else list(arrays)
        self.models_ = []
        for i, part in enumerate(self.parts()):
            prefix = f"model{i}."
            state = ArrayMap((n[len(prefix):], arrays[n]) for n in names if n.startswith(prefix))
            self.models_.append(type(part).from_state_arrays(part.saved_params(), state))
