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
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sketchrec.base import ArrayMap, Estimator, json_scalar
from sketchrec.data.sessions import Sessions
from sketchrec.topk import topk

_REGISTRY: dict[str, type["Recommender"]] = {}


class Recommender(Estimator, ABC):
    """Base class: history -> scores over all items."""

    _meta = ("n_items_",)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not inspect.isabstract(cls):
            _REGISTRY[cls.__name__] = cls

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
        self._check_fitted()
        scores = self.score(histories)
        exclude = (histories.indptr, histories.items) if exclude_seen else None
        return topk(scores, k, exclude=exclude)

    def _fitted_marker(self) -> str:
        return "n_items_"

    def _check_histories(self, histories: Sessions) -> None:
        self._check_fitted()
        if histories.n_items > self.n_items_:
            raise ValueError(f"histories use {histories.n_items} items but the model was fitted "
                             f"on {self.n_items_}")

    # -- persistence (no pickle) --------------------------------------------
    @staticmethod
    def restore(cls_name: str, params: dict, n_items: int, arrays) -> "Recommender":
        """A fitted model of class `cls_name` from `state_arrays` output and its item count
        (`arrays`: a mapping with `.files` and item access, e.g. an open .npz)."""
        if cls_name not in _REGISTRY:
            raise ValueError(f"unknown model class {cls_name!r}")
        return _REGISTRY[cls_name].from_state_arrays(params, ArrayMap(_as_dict(arrays), n_items_=np.array(n_items)))


def model_arrays(prefix: str, model: Recommender) -> dict[str, np.ndarray]:
    """A fitted model's class, parameters (JSON), item count and state as flat arrays under
    `prefix`, for estimators that save the models inside them (`restore_model` inverts it)."""
    return {f"{prefix}__class__": np.array(type(model).__name__),
            f"{prefix}__params__": np.array(json.dumps(model.saved_params(), default=json_scalar)),
            f"{prefix}n_items_": np.array(model.n_items_),
            **{prefix + name: value for name, value in model.state_arrays().items()}}


def restore_model(prefix: str, arrays, expected: str | None = None) -> Recommender:
    """The fitted model `model_arrays` wrote under `prefix` (expected: its class name, checked)."""
    names = arrays.files if hasattr(arrays, "files") else list(arrays)
    cls_name = str(arrays[f"{prefix}__class__"])
    if expected is not None and cls_name != expected:
        raise ValueError(f"model {prefix!r} is a {cls_name}, not a {expected}")
    state = ArrayMap((name[len(prefix):], arrays[name]) for name in names
                     if name.startswith(prefix) and not name.startswith(f"{prefix}__"))
    return Recommender.restore(cls_name, json.loads(str(arrays[f"{prefix}__params__"])),
                               int(state.pop("n_items_")), state)


def _as_dict(arrays) -> ArrayMap:
    """The arrays of an open .npz or a mapping, by name."""
    names = arrays.files if hasattr(arrays, "files") else arrays.keys()
    return ArrayMap((name, arrays[name]) for name in names)


def model_class(name: str) -> type[Recommender]:
    """Look a model class up by its class name."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


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
