"""What a model's arrays must be, from its class and parameters alone, and a safetensors file
read as a memory map.

`expected_arrays` names every array a fitted model of a bundleable class holds, with its
dtype, shape and index range (`Dense`, `Csr`); `check_arrays` refuses anything else, before
a model is built from the arrays. `map_safetensors` reads a weights file as views of one
copy-on-write memory map, shared by every process that loads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sketchrec.versioned import BundleError

_FLOATS, _INTS = ("float32", "float64"), ("int32", "int64")


# -- what a model's arrays must be ----------------------------------------------------------------

@dataclass(frozen=True)
class Dense:
    """An array's dtype (one of `dtypes`) and shape: ints, or names of sizes several arrays share
    (bound by the first array checked). `below`: integer values must lie in [0, below);
    `value`: a 0-d array's only allowed value."""

    shape: tuple
    dtypes: tuple = _FLOATS
    below: int | None = None
    value: int | None = None


@dataclass(frozen=True)
class Csr:
    """A scipy CSR matrix saved as its four parts (`Recommender.state_arrays`); `rows` may be a
    shared size's name."""

    rows: int | str
    cols: int
    dtypes: tuple = _FLOATS

    def parts(self, name: str) -> dict[str, Dense]:
        return {f"{name}.csr_data": Dense((f"{name} entries",), self.dtypes),
                f"{name}.csr_indices": Dense((f"{name} entries",), _INTS, below=self.cols),
                f"{name}.csr_indptr": Dense((f"{name} rows + 1",), _INTS),
                f"{name}.csr_shape": Dense((2,), _INTS)}


def _torch_arrays(prefix: str, build) -> dict[str, Dense]:
    """The state dict of the network `build()` makes, built on the meta device (no memory, no time)."""
    import torch
    with torch.device("meta"):
        net = build()
    return {prefix + k: Dense(tuple(v.shape), (str(v.dtype).removeprefix("torch."),))
            for k, v in net.state_dict().items()}


def _emde_arrays(model, n: int) -> dict:
    from sketchrec.models.emde import SketchNet
    sources = dict.fromkeys([m.source for m in model._modalities()] + list(model.outputs))
    n_inputs = len(model.inputs) * model.n_sketches * model.width
    codes = Dense((n, model.n_sketches), ("int16" if model.n_bits < 15 else "int32",), below=model.width)
    return {"n_inputs_": Dense((), _INTS, value=n_inputs), "item_counts_": Dense((n,)),
            **{f"codes.{s}": codes for s in sources},
            **_torch_arrays("net.", lambda: SketchNet(n_inputs, model.hidden, len(model.outputs) * model.n_sketches,
                                                      model.width, model.n_blocks, model.batch_norm, model.dropout))}


def _srgnn_arrays(model, n: int) -> dict:
    from sketchrec.models.srgnn import GatedGraphNet
    return _torch_arrays("net.", lambda: GatedGraphNet(n, model.hidden, model.step, model.target_aware))


def _session_knn_arrays(model, n: int) -> dict:
    return {"sessions_": Csr("sessions", n), "recency_": Dense(("sessions",), _INTS),
            "norm_": Dense(("sessions",)), "popularity_": Dense((n,))}


def _blend_arrays(model, n: int) -> dict:
    """A blend's weights and, under "model<i>.", each of its models' arrays (each class checked as its own)."""
    parts = model.parts()
    out = {"weights_": Dense((len(parts),))}
    for i, part in enumerate(parts):
        if not bundleable(type(part)):
            raise BundleError(f"a blend of a {type(part).__name__} cannot be bundled (bundleable: {', '.join(_ARRAYS)})")
        out.update({f"model{i}.{k}": v for k, v in expected_arrays(part, n).items()})
    return out


#: model class name -> (fitted model or one built from its parameters, n_items) -> its arrays;
#: a class not here cannot be bundled (its arrays could not be checked on load). Each entry
#: mirrors the class's `_state` / `_save_extra`; `save_bundle` checks what it writes against it,
#: so a class whose state changes cannot be bundled until its entry follows.
_ARRAYS = {
    "Popularity": lambda model, n: {"counts_": Dense((n,))},
    "EASE": lambda model, n: {"weights_": Dense((n, n))},
    "RP3beta": lambda model, n: {"similarity_": Csr(n, n)},
    "IALS": lambda model, n: {"item_factors_": Dense((n, model.factors))},
    "ItemKNN": lambda model, n: {"similarity_": Csr(n, n), "popularity_": Dense((n,))},
    "SequentialRules": lambda model, n: {"rules_": Csr(n, n), "popularity_": Dense((n,))},
    "SessionKNN": _session_knn_arrays,
    "VSKNN": _session_knn_arrays,
    "EMDE": _emde_arrays,
    "SRGNN": _srgnn_arrays,
    "TAGNN": _srgnn_arrays,
    "Blend": _blend_arrays,
}


def bundleable(cls: type) -> bool:
    """Whether models of class `cls` can be bundled (sketchrec knows what their arrays must be)."""
    from sketchrec.models.base import _REGISTRY
    return cls.__name__ in _ARRAYS and _REGISTRY.get(cls.__name__) is cls


def expected_arrays(model, n_items: int) -> dict[str, Dense | Csr]:
    """What `state_arrays` of `model` (fitted, or built from saved parameters) must hold, plus
    the bundle's `n_items_`: derived from the class and parameters alone."""
    return {"n_items_": Dense((), _INTS, value=n_items), **_ARRAYS[type(model).__name__](model, n_items)}


def _all_finite(arr: np.ndarray, chunk: int = 1 << 22) -> bool:
    flat = arr.reshape(-1)
    return all(np.isfinite(flat[i:i + chunk]).all() for i in range(0, flat.size, chunk))


def check_arrays(where, arrays: dict, expected: dict) -> None:
    """Refuse (BundleError naming `where`) arrays that are not exactly `expected`: a name missing
    or unexpected, another dtype or shape, integers outside their range, non-finite floats, a CSR
    matrix whose parts do not make one."""
    dense = {}
    for name, spec in expected.items():
        dense.update(spec.parts(name) if isinstance(spec, Csr) else {name: spec})
    missing, unexpected = sorted(set(dense) - set(arrays)), sorted(set(arrays) - set(dense))
    if missing:
        raise BundleError(f"{where}: array {missing[0]!r} is missing" + (f" (and {len(missing) - 1} more)"
                                                                           if len(missing) > 1 else ""))
    if unexpected:
        raise BundleError(f"{where}: unexpected array {unexpected[0]!r} (not part of a model of this class "
                          "and these parameters)")
    sizes: dict[str, int] = {}
    for name, spec in dense.items():
        arr = arrays[name]
        if arr.dtype.name not in spec.dtypes:
            raise BundleError(f"{where}: array {name!r} has dtype {arr.dtype}, expected {' or '.join(spec.dtypes)}")
        want = tuple(sizes.setdefault(d, got) if isinstance(d, str) else d
                     for d, got in zip(spec.shape, arr.shape)) if arr.ndim == len(spec.shape) else spec.shape
        if arr.shape != want:
            shared = [d for d in spec.shape if isinstance(d, str)]
            raise BundleError(f"{where}: array {name!r} has shape {arr.shape}, expected {want}"
                              + (f" ({', '.join(shared)} as in the arrays before it)" if shared else ""))
        if spec.below is not None and arr.size and (arr.min() < 0 or arr.max() >= spec.below):
            raise BundleError(f"{where}: array {name!r} has values outside [0, {spec.below})")
        if spec.value is not None and arr.item() != spec.value:
            raise BundleError(f"{where}: array {name!r} is {arr.item()}, expected {spec.value}")
        if arr.dtype.kind == "f" and not _all_finite(arr):
            raise BundleError(f"{where}: array {name!r} has non-finite values")
    for name, spec in expected.items():
        if isinstance(spec, Csr):
            indptr, shape = arrays[f"{name}.csr_indptr"], tuple(arrays[f"{name}.csr_shape"].tolist())
            rows = sizes.setdefault(spec.rows, shape[0]) if isinstance(spec.rows, str) else spec.rows
            if shape != (rows, spec.cols) or len(indptr) != rows + 1 or indptr[0] != 0 \
                    or indptr[-1] != len(arrays[f"{name}.csr_data"]) or (np.diff(indptr) < 0).any():
                raise BundleError(f"{where}: the parts of sparse matrix {name!r} do not make a {rows} x "
                                  f"{spec.cols} CSR matrix")


def _check_params(where, cls, params) -> None:
    try:
        cls.check_params(params)
    except ValueError as err:
        raise BundleError(f"{where}: {err}") from None


# -- weights as a shared memory map ---------------------------------------------------------------

_SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
                       "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def map_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file as views of one copy-on-write memory map of it.

    Nothing is read until used, and the pages are the operating system's file cache: every
    process that maps the same file (several server workers, a restarted server) shares one
    copy of the weights. Writing to an array copies only the touched page, privately; the file
    never changes. The layout is checked as `safetensors` checks it: a JSON header of
    {name: {dtype, shape, data_offsets}} after its 8-byte length, tensors filling the data part
    exactly, without overlap."""
    where = f"{path}: not a readable safetensors file"
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little") if size >= 8 else -1
            if not 2 <= n <= min(size - 8, 100 << 20):
                raise BundleError(f"{where} (header length {n} for a file of {size} bytes)")
            header = json.loads(fh.read(n))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{where} ({err})") from None
    if not isinstance(header, dict):
        raise BundleError(f"{where} (the header is not a JSON object)")
    header.pop("__metadata__", None)
    start, data_size = 8 + n, size - 8 - n
    spans, arrays = [], {}
    mapped = np.memmap(path, dtype=np.uint8, mode="c", offset=start, shape=(data_size,)) if data_size else None
    for name, spec in header.items():
        try:
            dtype = np.dtype(_SAFETENSORS_DTYPES[spec["dtype"]])
            shape = tuple(int(d) for d in spec["shape"])
            begin, end = (int(x) for x in spec["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise BundleError(f"{where} (tensor {name!r}: bad dtype, shape or offsets)") from None
        count = int(np.prod(shape, dtype=np.int64))
        if min(shape, default=0) < 0 or not 0 <= begin <= end <= data_size or end - begin != count * dtype.itemsize:
            raise BundleError(f"{where} (tensor {name!r}: offsets {begin}..{end} do not hold {shape} {dtype})")
        spans.append((begin, end))
        arrays[name] = (np.asarray(mapped[begin:end]).view(dtype).reshape(shape) if count
                        else np.zeros(shape, dtype))
    covered = 0
    for begin, end in sorted(spans):
        if begin != covered:
            raise BundleError(f"{where} (tensors overlap or leave a gap at byte {covered} of the data)")
        covered = end
    if covered != data_size:
        raise BundleError(f"{where} (the tensors end at byte {covered} of {data_size})")
    return arrays
