"""The one `Recommender` protocol every model honours.

A recommender is fitted on `Sessions` (rows = training sessions or user
histories) and scores `Sessions` (rows = session prefixes or user input
histories) against every item, so evaluation and serving never care which
model they hold. Following scikit-learn, every hyperparameter is a keyword
argument of ``__init__`` stored unchanged; learned state lives in attributes
ending in ``_`` and is saved with ``np.savez`` (no pickle).
"""

from __future__ import annotations

import inspect
import json
import math
import types
import typing
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sketchrec.data.sessions import Sessions

_REGISTRY: dict[str, type["Recommender"]] = {}


class Recommender(ABC):
    """Base class: history -> scores over all items."""

    #: learned attributes saved by `save` (numpy arrays, scipy CSR matrices or ints)
    _state: tuple[str, ...] = ()
    #: the values a parameter may take when they are few, and (low, high) inclusive bounds of
    #: numeric ones (None: open); `check_params` enforces them, with ``__init__``'s annotations
    _param_choices: dict[str, tuple] = {}
    _param_bounds: dict[str, tuple] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not inspect.isabstract(cls):
            _REGISTRY[cls.__name__] = cls

    # -- configuration ------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "Recommender":
        for name, value in params.items():
            if name not in self._param_names():
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; "
                                 f"it has {self._param_names()}")
            setattr(self, name, value)
        return self

    @classmethod
    def check_params(cls, params: dict) -> None:
        """Refuse, with a ValueError naming the parameter, what ``cls(**params)`` should not be
        built from: a name ``__init__`` does not take, a required one missing, a value of the
        wrong type (by the annotation, or else the default's type), a float that is not finite,
        a value outside `_param_choices` or `_param_bounds`. Values are as JSON gives them back
        (lists for tuples): a saved model's parameters are checked before any of its arrays is used."""
        if not isinstance(params, dict):
            raise ValueError(f"{cls.__name__} parameters must be a mapping, not {type(params).__name__}")
        signature = inspect.signature(cls.__init__)
        hints = typing.get_type_hints(cls.__init__)
        accepted = [p for p in signature.parameters.values() if p.name != "self"]
        unknown = sorted(set(params) - {p.name for p in accepted})
        if unknown:
            raise ValueError(f"{cls.__name__} has no parameter {unknown[0]!r}; it has {[p.name for p in accepted]}")
        for p in accepted:
            if p.name not in params:
                if p.default is inspect.Parameter.empty:
                    raise ValueError(f"{cls.__name__} parameter {p.name!r} is missing")
                continue
            value = params[p.name]
            hint = hints.get(p.name) or _default_hint(p.default)
            if not _fits(value, hint):
                expected = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
                raise ValueError(f"{cls.__name__} parameter {p.name}={value!r}: wrong type (expected {expected})")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{cls.__name__} parameter {p.name}={value!r} is not a finite number")
            choices = cls._param_choices.get(p.name)
            if choices is not None and value not in choices:
                raise ValueError(f"{cls.__name__} parameter {p.name}={value!r} is not one of {choices}")
            low, high = cls._param_bounds.get(p.name, (None, None))
            if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
                raise ValueError(f"{cls.__name__} parameter {p.name}={value!r} lies outside "
                                 f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- learning and scoring ----------------------------------------------
    @abstractmethod
    def fit(self, train: Sessions) -> "Recommender":
        """Learn from training rows; returns self."""

    @abstractmethod
    def score(self, histories: Sessions) -> np.ndarray:
        """(n_rows, n_items) float32 scores, higher = more likely next / relevant."""

    def recommend(self, histories: Sessions, k: int = 20, exclude_seen: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items per row: (items (B, k) int64, scores (B, k) float32), best first."""
        from sketchrec.eval.topk import topk
        self._check_fitted()
        scores = self.score(histories)
        exclude = (histories.indptr, histories.items) if exclude_seen else None
        return topk(scores, k, exclude=exclude)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")

    def _check_histories(self, histories: Sessions) -> None:
        self._check_fitted()
        if histories.n_items > self.n_items_:
            raise ValueError(f"histories use {histories.n_items} items but the model was fitted "
                             f"on {self.n_items_}")

    # -- persistence (no pickle) --------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """The learned state as flat named arrays (sparse matrices split into CSR parts);
        `from_state_arrays` inverts it. Used by `save` and by model bundles."""
        self._check_fitted()
        arrays = {}
        for name in self._state:
            value = getattr(self, name)
            if sp.issparse(value):
                value = value.tocsr()
                arrays[f"{name}.csr_data"] = value.data
                arrays[f"{name}.csr_indices"] = value.indices
                arrays[f"{name}.csr_indptr"] = value.indptr
                arrays[f"{name}.csr_shape"] = np.array(value.shape)
            else:
                arrays[name] = np.asarray(value)
        arrays.update(self._save_extra())
        return arrays

    @staticmethod
    def from_state_arrays(cls_name: str, params: dict, n_items: int, arrays) -> "Recommender":
        """A fitted model of class `cls_name` from `state_arrays` output (`arrays`: a mapping with
        `.files` and item access, e.g. an open .npz)."""
        if cls_name not in _REGISTRY:
            raise ValueError(f"unknown model class {cls_name!r}")
        model = _REGISTRY[cls_name](**params)
        model.n_items_ = int(n_items)
        for name in model._state:
            if f"{name}.csr_data" in arrays:
                shape = tuple(arrays[f"{name}.csr_shape"])
                value = sp.csr_matrix((arrays[f"{name}.csr_data"], arrays[f"{name}.csr_indices"],
                                       arrays[f"{name}.csr_indptr"]), shape=shape)
            else:
                value = arrays[name]
            setattr(model, name, value)
        model._load_extra(arrays)
        return model

    def save(self, path: str | Path) -> None:
        """Write parameters (JSON) and learned arrays to one .npz file."""
        self._check_fitted()
        arrays = {"__class__": np.array(type(self).__name__),
                  "__params__": np.array(json.dumps(self.get_params(), default=_json_scalar)),
                  "n_items_": np.array(self.n_items_), **self.state_arrays()}
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)

    @staticmethod
    def load(path: str | Path) -> "Recommender":
        """Read a model written by `save`; the class is looked up by name."""
        with np.load(path, allow_pickle=False) as z:
            try:
                return Recommender.from_state_arrays(str(z["__class__"]), json.loads(str(z["__params__"])),
                                                     int(z["n_items_"]), z)
            except ValueError as err:
                if "unknown model class" in str(err):
                    raise ValueError(f"{path}: {err}") from None
                raise

    def _save_extra(self) -> dict[str, np.ndarray]:
        """Further named arrays to save (models whose state is not plain attributes)."""
        return {}

    def _load_extra(self, arrays) -> None:
        """Restore what `_save_extra` wrote; `arrays` maps names to arrays."""


def model_class(name: str) -> type[Recommender]:
    """Look a model class up by its class name."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def _fits(value, hint) -> bool:
    """Whether a JSON value fits a parameter annotation: integers are floats too, booleans are
    not numbers, a tuple annotation takes a list."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is typing.Any:
        return True
    if hint in (int, float):
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(value, bool)
    origin = typing.get_origin(hint) or hint
    if origin in (tuple, list):
        kinds = [h for h in typing.get_args(hint) if h is not Ellipsis]
        return isinstance(value, (list, tuple)) and (not kinds or all(any(_fits(v, h) for h in kinds) for v in value))
    return isinstance(value, origin) if isinstance(origin, type) else True


def _default_hint(default):
    """The annotation an unannotated parameter implies: its default's type (a tuple of the
    default's element types for a tuple; anything for None)."""
    if isinstance(default, tuple):
        kinds = tuple({type(v) for v in default})
        return tuple[typing.Union[kinds], ...] if kinds else tuple
    return typing.Any if default is None else type(default)


def _json_scalar(value):
    """JSON fallback for numpy scalars in parameters (e.g. from a grid over np.arange)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"parameter value {value!r} of type {type(value).__name__} is not JSON-serialisable")


def input_matrix(histories: Sessions, n_items: int) -> sp.csr_matrix:
    """Binary (B, n_items) CSR of the histories, widened to the model's item count.

    Histories may use fewer items than the model was fitted on (e.g. built with
    ``Sessions.from_lists(rows)`` without n_items); the product with an
    (n_items, n_items) model matrix needs the model's width.
    """
    x = histories.to_csr(binary=True)
    if x.shape[1] != n_items:
        x = sp.csr_matrix((x.data, x.indices, x.indptr), shape=(x.shape[0], n_items))
    return x


def item_popularity(train: Sessions) -> np.ndarray:
    """(n_items,) float32 share of training rows containing each item, in [0, 1]."""
    counts = np.bincount(train.to_csr(binary=True).indices, minlength=train.n_items)
    return (counts / max(counts.max(), 1)).astype(np.float32)


def backfill(scores: np.ndarray, popularity: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Break ties (above all among the zero scores of sparse models) by popularity.

    Adds eps·popularity in place: items a neighbourhood model cannot score are
    ranked by popularity instead of arbitrarily, without reordering scores that
    differ by more than eps.
    """
    scores += eps * popularity
    return scores


def sparse_rows_to_dense(m: sp.csr_matrix) -> np.ndarray:
    """CSR (B, N) -> dense float32 (B, N) without a float64 detour."""
    out = np.zeros(m.shape, dtype=np.float32)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    out[rows, m.indices] = m.data
    return out
