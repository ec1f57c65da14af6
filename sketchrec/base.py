"""The one `Estimator` base every fitted object in sketchrec shares.

Following scikit-learn's convention: every setting is a keyword argument of
``__init__`` stored unchanged under its own name (so `get_params` reads them
back by introspection, and `clone` builds an unfitted copy); `fit` returns
self; what is learned lives in attributes ending in ``_``. Learned state is
saved without pickle: the names in `_state` (numpy arrays, scipy sparse
matrices, ints or floats) go to one ``.npz`` with the parameters as JSON, and
`Estimator.load` finds the class again by its name.

This module sits at the bottom of the package: it imports nothing from
sketchrec.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import math
import types
import typing
from pathlib import Path

import numpy as np
import scipy.sparse as sp

_REGISTRY: dict[str, type["Estimator"]] = {}


class NotFittedError(RuntimeError):
    """An estimator was used before `fit` (a RuntimeError, as before the base existed)."""


class Estimator:
    """Base class: parameters by introspection, learned state saved without pickle."""

    #: learned attributes saved by `save`: numpy arrays, scipy sparse matrices, ints or floats
    _state: tuple[str, ...] = ()
    #: scalar attributes saved beside the state and set before it is restored (e.g. `n_items_`)
    _meta: tuple[str, ...] = ()
    #: parameters not saved with the state (callbacks, progress switches): restored as defaults
    _transient: tuple[str, ...] = ()
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
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict:
        """Every ``__init__`` argument by name, as stored."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "Estimator":
        names = self._param_names()
        for name, value in params.items():
            if name not in names:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; it has {names}")
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
        accepted = [p for p in signature.parameters.values()
                    if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
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

    # -- fitted state -------------------------------------------------------
    def _fitted_marker(self) -> str | None:
        """The attribute whose presence means fitted: the first of `_state`."""
        return self._state[0] if self._state else None

    def is_fitted(self) -> bool:
        marker = self._fitted_marker()
        return marker is not None and hasattr(self, marker)

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")

    # -- persistence (no pickle) --------------------------------------------
    def saved_params(self) -> dict:
        """The parameters `save` writes: all but the transient ones, JSON-ready."""
        return {k: v for k, v in self.get_params().items() if k not in self._transient}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The learned state as flat named arrays (sparse matrices split into CSR parts, scalars
        as 0-d arrays); `from_state_arrays` inverts it. Used by `save` and by model bundles."""
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

    @classmethod
    def from_state_arrays(cls, params: dict, arrays) -> "Estimator":
        """A fitted estimator of this class from `state_arrays` output (`arrays`: a mapping with
        `.files` or keys and item access, e.g. an open .npz)."""
        names = set(arrays.files if hasattr(arrays, "files") else arrays.keys())
        model = cls(**params)
        for name in cls._meta:
            setattr(model, name, arrays[name].item())
        for name in cls._state:
            if f"{name}.csr_data" in names:
                shape = tuple(int(s) for s in arrays[f"{name}.csr_shape"])
                value = sp.csr_matrix((arrays[f"{name}.csr_data"], arrays[f"{name}.csr_indices"],
                                       arrays[f"{name}.csr_indptr"]), shape=shape)
            elif name in names:
                value = arrays[name]
                if value.ndim == 0:                      # scalars come back as Python numbers
                    value = value.item()
            else:
                raise ValueError(f"{cls.__name__} state {name!r} is missing")
            setattr(model, name, value)
        model._load_extra(arrays)
        return model

    def _save_extra(self) -> dict[str, np.ndarray]:
        """Further named arrays to save (estimators whose state is not plain attributes)."""
        return {}

    def _load_extra(self, arrays) -> None:
        """Restore what `_save_extra` wrote; `arrays` maps names to arrays."""

    def save(self, path: str | Path) -> None:
        """Write parameters (JSON) and learned arrays to one .npz file."""
        self._check_fitted()
        arrays = {"__class__": np.array(type(self).__name__),
                  "__params__": np.array(json.dumps(self.saved_params(), default=json_scalar)),
                  **{name: np.array(getattr(self, name)) for name in self._meta}, **self.state_arrays()}
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Estimator":
        """Read an estimator written by `save`; the class is looked up by name (and must be
        this class or a subclass of it)."""
        with np.load(path, allow_pickle=False) as z:
            name = str(z["__class__"])
            if name not in _REGISTRY:
                raise ValueError(f"{path}: unknown model class {name!r}")
            found = _REGISTRY[name]
            if not issubclass(found, cls):
                raise ValueError(f"{path} holds a {name}, not a {cls.__name__}")
            return found.from_state_arrays(json.loads(str(z["__params__"])), z)


class ArrayMap(dict):
    """Named arrays with the `.files` list an open ``.npz`` has, so state loaders take either."""

    @property
    def files(self) -> list[str]:
        return list(self.keys())


def clone(estimator: Estimator) -> Estimator:
    """An unfitted copy with the same parameters: estimator-valued parameters (and lists of them) cloned, functions
    (callbacks) shared, everything else deep-copied (a torch module parameter too, so the copy
    never trains the original's weights)."""
    params = {}
    for name, value in estimator.get_params().items():
        if isinstance(value, Estimator):
            params[name] = clone(value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Estimator) for v in value):
            params[name] = type(value)(clone(v) for v in value)        # e.g. a blend's models
        elif inspect.isroutine(value) or isinstance(value, (functools.partial, type)):
            params[name] = value
        else:
            params[name] = copy.deepcopy(value)
    return type(estimator)(**params)


def estimator_class(name: str) -> type[Estimator]:
    """Look an estimator class up by its class name."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown estimator {name!r}; known: {sorted(_REGISTRY)}")
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


def json_scalar(value):
    """JSON fallback for numpy scalars in parameters (e.g. from a grid over np.arange), and for
    estimators as parameters (a blend's models): {"class": name, "params": their parameters}."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Estimator):
        return {"class": type(value).__name__, "params": value.saved_params()}
    raise TypeError(f"parameter value {value!r} of type {type(value).__name__} is not JSON-serialisable")
