"""Read Python pickles from the internet without running their code.

A pickle is a small program: its GLOBAL / STACK_GLOBAL opcodes import any
callable by name and REDUCE calls it, so ``pickle.load`` on a downloaded file
can run ``os.system`` (or anything else). Several public benchmarks are only
published as pickles (the SR-GNN session splits, the Planetoid graphs), so
`sketchrec.data.download` reads them with `RestrictedUnpickler`: every global
goes through `find_class`, which refuses all of them unless the caller opted
in to a short allowlist for that one call, and raises `UnsafePickleError`
naming the refused global. The payload is never imported, let alone called.

With no allowlist (the default) only the types that pickle encodes without a
global load: lists, tuples, dicts, sets, ints, floats, str, bytes, bool, None.
That is all the SR-GNN pickles hold.

`SCIENTIFIC` is the opt-in allowlist for Python-2 pickles of numpy arrays,
scipy CSR matrices and ``defaultdict(list)`` (the Planetoid format, read with
``encoding="latin1"``). Its entries are narrowed further: object dtypes (which
would let an array carry arbitrary objects) and defaultdict factories other
than ``list`` are refused.

    >>> from sketchrec.data import safe_pickle
    >>> sessions = safe_pickle.load(open("all_train_seq.txt", "rb"))
    >>> x = safe_pickle.load(open("ind.cora.x", "rb"), allow=safe_pickle.SCIENTIFIC, encoding="latin1")
"""

from __future__ import annotations

import importlib
import io
import pickle
from typing import BinaryIO, Callable, Mapping

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "load", "loads", "SCIENTIFIC"]

# Python 2 module names (pickle's fix_imports maps these in the default find_class only)
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """The pickle asked for a global (an importable callable) that is not allowed."""


def _resolve(*candidates: str) -> Callable[[], object]:
    """Lazy importer of the first "module:attr" candidate that exists (names move between versions)."""
    def get():
        errors = []
        for candidate in candidates:
            module, attr = candidate.split(":")
            try:
                return getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                errors.append(f"{candidate}: {exc}")
        raise UnsafePickleError(f"none of {candidates} can be imported: {'; '.join(errors)}")
    return get


def _safe_dtype(*args):
    import numpy as np
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise UnsafePickleError(f"refused numpy dtype {dtype!r}: object arrays can hold arbitrary objects")
    return dtype


def _list_defaultdict(factory=None, *args):
    import collections
    if factory is not list:
        raise UnsafePickleError(f"refused collections.defaultdict with factory {factory!r} (only list is allowed)")
    return collections.defaultdict(list, *args)


# (module, name) as written in the pickle -> zero-argument getter of the object to use instead.
SCIENTIFIC: Mapping[tuple[str, str], Callable[[], object]] = {
    ("numpy.core.multiarray", "_reconstruct"): _resolve("numpy._core.multiarray:_reconstruct",
                                                        "numpy.core.multiarray:_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): _resolve("numpy._core.multiarray:_reconstruct",
                                                         "numpy.core.multiarray:_reconstruct"),
    ("numpy", "ndarray"): _resolve("numpy:ndarray"),
    ("numpy", "dtype"): lambda: _safe_dtype,
    ("scipy.sparse.csr", "csr_matrix"): _resolve("scipy.sparse:csr_matrix"),
    ("scipy.sparse._csr", "csr_matrix"): _resolve("scipy.sparse:csr_matrix"),
    ("collections", "defaultdict"): lambda: _list_defaultdict,
    ("builtins", "list"): lambda: list,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose `find_class` refuses every global not in `allow`.

    allow : mapping (module, name) -> zero-argument callable returning the
        object to use (see `SCIENTIFIC`); empty by default, so any global is refused.
    """

    def __init__(self, file: BinaryIO, *, allow: Mapping[tuple[str, str], Callable[[], object]] | None = None,
                 encoding: str = "ASCII", errors: str = "strict"):
        super().__init__(file, fix_imports=True, encoding=encoding, errors=errors)
        self._allow = dict(allow or {})

    def find_class(self, module: str, name: str):
        key = (_PY2_MODULES.get(module, module), name)
        getter = self._allow.get(key) or self._allow.get((module, name))
        if getter is None:
            raise UnsafePickleError(
                f"refused to load global {module}.{name} from a pickle: only plain lists, tuples, "
                f"dicts, numbers and strings are read from downloaded pickles"
                + (f" (allowed globals: {', '.join(sorted(f'{m}.{n}' for m, n in self._allow))})"
                   if self._allow else ""))
        return getter()

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refused persistent id {pid!r} in a pickle")


def load(file: BinaryIO, *, allow: Mapping | None = None, encoding: str = "ASCII"):
    """Unpickle from a binary file object, refusing every global not in `allow`."""
    return RestrictedUnpickler(file, allow=allow, encoding=encoding).load()


def loads(data: bytes, *, allow: Mapping | None = None, encoding: str = "ASCII"):
    """Unpickle bytes, refusing every global not in `allow`."""
    return load(io.BytesIO(data), allow=allow, encoding=encoding)
