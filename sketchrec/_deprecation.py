"""Renamed parameters and functions: the old name still works for one release, with a warning.

`renamed_params` wraps an ``__init__`` so an old keyword maps onto its new name (with a
`DeprecationWarning`) while `inspect.signature` still shows only the new names (so
`Estimator.get_params`, `repr` and `clone` never see the old one). `current_params` renames
the keys of saved parameters silently: models and bundles saved before a rename still load.
`renamed_function` keeps an old function name callable.

This module sits at the bottom of the package: it imports nothing from sketchrec. Every
rename is listed in CHANGELOG.md.
"""

from __future__ import annotations

import functools
import warnings


def renamed_params(**old_to_new: str):
    """Decorator for ``__init__``: ``old=value`` is taken as ``new=value`` with a
    DeprecationWarning; giving both is a TypeError."""
    def wrap(init):
        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{type(self).__name__}() got both {old}= and its new name {new}=")
                    warnings.warn(f"{type(self).__name__}({old}=) is deprecated: use {new}= "
                                  "(the old name goes in the next release)", DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            init(self, *args, **kwargs)
        __init__.renamed_params = {**getattr(init, "renamed_params", {}), **old_to_new}
        return __init__
    return wrap


def current_params(cls: type, params: dict) -> dict:
    """Saved parameters of `cls` under their current names (no warning: the user saved them
    before the rename and can do nothing about it but re-save). Other keys are kept as they
    are, so `check_params` still refuses unknown names."""
    renamed = getattr(cls.__init__, "renamed_params", {})
    if not isinstance(params, dict) or not any(old in params for old in renamed):
        return params
    out = {}
    for name, value in params.items():
        new = renamed.get(name, name)
        if new in params and new != name:        # both names: keep the new one, let checks see the old
            out[name] = value
            continue
        out[new] = value
    return out


def renamed_function(func, old_name: str):
    """`func` under its former name, warning (DeprecationWarning) at each call."""
    @functools.wraps(func)
    def old(*args, **kwargs):
        warnings.warn(f"{old_name}() is deprecated: use {func.__name__}() "
                      "(the old name goes in the next release)", DeprecationWarning, stacklevel=2)
        return func(*args, **kwargs)
    old.__name__ = old.__qualname__ = old_name
    return old
