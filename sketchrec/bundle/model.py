"""Model bundles: a fitted `Recommender` with its item ids, metrics, configuration and extras.

`save_bundle` refuses what `load_bundle` would refuse, then writes one sealed version
(`sketchrec.versioned`); `load_bundle` checks the manifest, the parameters (by the
model's class), every array (`sketchrec.bundle.arrays`), the item ids and the extras, builds
the model and asks it for one recommendation before handing it out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketchrec._deprecation import current_params
from sketchrec.bundle.arrays import (_ARRAYS, _all_finite, _check_params, bundleable, check_arrays, expected_arrays,
                                     map_safetensors)
from sketchrec.data.idmap import IdMap
from sketchrec.versioned import (MANIFEST, BundleError, abort_version, commit_version, new_version,
                                 read_retrying, read_version)

#: the files a model bundle may hold besides its manifest and seal
MODEL_FILES = ("weights.safetensors", "strings.json", "items.parquet", "extras.safetensors")
#: extras the service reads per item: (n_items, d) floating arrays
ITEM_EXTRAS = ("item_vectors", "text_vectors")


@dataclass
class Bundle:
    model: object
    items: IdMap | None
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    path: Path | None = None
    extras: dict = field(default_factory=dict)


# -- model bundles -------------------------------------------------------------------------------

def _model_arrays(model) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """`Recommender.state_arrays` split into numeric arrays (safetensors) and text lists (JSON)."""
    numeric, text = {"n_items_": np.array(model.n_items_, dtype=np.int64)}, {}
    for key, arr in model.state_arrays().items():
        arr = np.asarray(arr)
        if arr.dtype.kind in "biuf":
            numeric[key] = np.require(arr, requirements="C")          # (ascontiguousarray makes 0-d 1-d)
        elif arr.dtype.kind in "US":
            text[key] = arr.astype(str).tolist()
        else:
            raise BundleError(f"cannot bundle array {key!r} of dtype {arr.dtype} (numbers and text only)")
    return numeric, text


def _check_items(where, keys, n_items: int) -> None:
    """One id per item, unique, none missing, text or integers."""
    import pyarrow as pa
    import pyarrow.compute as pc
    if not (pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type) or pa.types.is_integer(keys.type)):
        raise BundleError(f"{where}: item ids must be text or integers, not {keys.type}")
    if len(keys) != n_items:
        raise BundleError(f"{where}: {len(keys)} item ids for a model of {n_items} items")
    if keys.null_count:
        raise BundleError(f"{where}: {keys.null_count} item ids are null")
    if pc.count_distinct(keys).as_py() != len(keys):
        raise BundleError(f"{where}: item ids repeat (each item needs its own id)")


def _check_extras(where, extras: dict, n_items: int) -> None:
    for name, arr in extras.items():
        if arr.dtype.kind not in "biuf":
            raise BundleError(f"{where}: extra {name!r} must be a numeric array, not {arr.dtype}")
        if name in ITEM_EXTRAS and (arr.ndim != 2 or arr.shape[0] != n_items or arr.dtype.kind != "f"):
            raise BundleError(f"{where}: extra {name!r} must be ({n_items}, d) floats (a vector per item), "
                              f"not {arr.shape} {arr.dtype}")
        if arr.dtype.kind == "f" and not _all_finite(arr):
            raise BundleError(f"{where}: extra {name!r} has non-finite values")


class _Arrays(dict):
    """What `Recommender._load_extra` expects: a mapping with a `.files` list."""

    @property
    def files(self):
        return list(self)


def save_bundle(path: str | Path, model, items: IdMap | None = None, metrics: dict | None = None,
                config: dict | None = None, extras: dict[str, np.ndarray] | None = None,
                keep_versions: int = 2, key: str | bytes | None = None) -> Path:
    """Write `model` (a fitted `Recommender`) with its item ids, metrics and configuration.

    What load would refuse is refused here (BundleError): a model class sketchrec cannot check,
    parameters its class refuses, arrays unlike what the class and parameters imply, item ids
    or extras that do not fit.

    keep_versions: complete versions kept (default 2: a reader that resolved `CURRENT` just
    before a save can still finish reading the version it found).
    key: sign the bundle with HMAC-SHA256 under this key (default: $SKETCHREC_BUNDLE_KEY; none:
    a plain sha256 seal)."""
    from safetensors.numpy import save_file

    from sketchrec.base import json_scalar as _json_scalar
    model._check_fitted()
    name = type(model).__name__
    if not bundleable(type(model)):
        raise BundleError(f"cannot bundle a {name}: sketchrec does not know what its arrays must be, so a "
                          f"bundle of it could not be checked on load (bundleable: {', '.join(_ARRAYS)})")
    try:
        params = json.loads(json.dumps(model.get_params(), default=_json_scalar))
    except TypeError as err:
        raise BundleError(f"cannot bundle this {name}: {err}") from None
    _check_params(f"cannot bundle this {name}", type(model), params)
    numeric, text = _model_arrays(model)
    check_arrays(f"cannot bundle this {name}", {**numeric, **{k: np.array(v) for k, v in text.items()}},
                 expected_arrays(model, int(model.n_items_)))
    if items is not None:
        _check_items("cannot bundle these items", items.keys, int(model.n_items_))
    extras = {k: np.require(np.asarray(v), requirements="C") for k, v in (extras or {}).items()}
    _check_extras("cannot bundle these extras", extras, int(model.n_items_))
    tmp = new_version(path)
    try:
        save_file(numeric, str(tmp / "weights.safetensors"))
        if text:
            (tmp / "strings.json").write_text(json.dumps(text))
        if items is not None:
            items.save(tmp / "items.parquet")
        if extras:
            save_file(extras, str(tmp / "extras.safetensors"))
        return commit_version(tmp, {"model_class": name, "params": params, "n_items": int(model.n_items_),
                                    "metrics": metrics or {}, "config": config or {}}, keep_versions, key)
    except BaseException:
        abort_version(tmp)
        raise


def load_bundle(path: str | Path, verify: bool = True, retries: int = 5, key: str | bytes | None = None,
                mmap: bool = True) -> Bundle:
    """Read a bundle written by `save_bundle`, refusing (BundleError) anything but what it wrote.

    verify=False skips recomputing the files' sha256 (for storage trusted not to change them;
    the seal, sizes, parameters and arrays are checked all the same). key: as for `save_bundle`.
    A save that completes while this reads may delete the version being read; the load then
    starts again from the new `CURRENT` (up to `retries` times).
    mmap: the model's arrays are views of a copy-on-write memory map of weights.safetensors
    (`map_safetensors`), shared by every process that loads the same version; False reads them
    into this process's memory."""
    return read_retrying(path, lambda root: _load_version(root, verify, key, mmap), retries)


def _model_of(where: Path, manifest: dict):
    """(class, parameters, item count) a model bundle's manifest names, each checked."""
    from sketchrec.models.base import _REGISTRY
    name, params, n_items = manifest.get("model_class"), manifest.get("params"), manifest.get("n_items")
    if not isinstance(name, str) or name not in _REGISTRY:
        raise BundleError(f"{where}: unknown model class {name!r}")
    if not bundleable(_REGISTRY[name]):
        raise BundleError(f"{where}: a {name} cannot be loaded from a bundle")
    if type(n_items) is not int or n_items < 1:
        raise BundleError(f"{where}: n_items must be a positive integer, not {n_items!r}")
    for part in ("metrics", "config"):
        if not isinstance(manifest.get(part, {}), dict):
            raise BundleError(f"{where}: {part} must be a JSON object")
    if "weights.safetensors" not in manifest["files"]:
        raise BundleError(f"{where}: lists no weights.safetensors")
    _check_params(where, _REGISTRY[name], params)
    # parameters saved under a former name (see CHANGELOG.md) are read under the current one
    return _REGISTRY[name], current_params(_REGISTRY[name], params), n_items


def _read_arrays(version: Path, files: dict, file: str, mmap: bool = False) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file of the bundle ({} if it has none; memory-mapped with
    mmap=True, see `map_safetensors`), or of strings.json."""
    from safetensors.numpy import load_file
    if file not in files:
        return {}
    if file == "strings.json":
        try:
            text = json.loads((version / file).read_bytes())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            text = None
        if not isinstance(text, dict) or not all(isinstance(v, list) and all(isinstance(s, str) for s in v)
                                                 for v in text.values()):
            raise BundleError(f"{version / file}: must be a JSON object of lists of text")
        return {k: np.array(v, dtype=str) for k, v in text.items()}
    if mmap:
        return map_safetensors(version / file)
    try:
        return load_file(str(version / file))
    except Exception as err:                             # safetensors raises its own error types
        raise BundleError(f"{version / file}: not a readable safetensors file ({err})") from None


def _load_version(root: Path, verify: bool, key, mmap: bool = True) -> Bundle:
    from sketchrec.data.sessions import Sessions
    from sketchrec.models.base import Recommender
    version, manifest = read_version(root, verify, known_files=MODEL_FILES, key=key)
    cls, params, n_items = _model_of(version / MANIFEST, manifest)
    weights, files = version / "weights.safetensors", manifest["files"]
    arrays = {**_read_arrays(version, files, "weights.safetensors", mmap),
              **_read_arrays(version, files, "strings.json")}
    try:
        expected = expected_arrays(cls(**params), n_items)
    except Exception as err:
        raise BundleError(f"{version / MANIFEST}: its parameters do not make a model of class {cls.__name__} "
                          f"({type(err).__name__}: {err})") from None
    check_arrays(weights, arrays, expected)
    arrays.pop("n_items_")
    try:
        model = Recommender.restore(cls.__name__, params, n_items, _Arrays(arrays))
    except Exception as err:
        raise BundleError(f"{weights}: the model cannot be rebuilt from it ({type(err).__name__}: {err})") from None
    items = None
    if "items.parquet" in files:
        try:
            items = IdMap.load(version / "items.parquet")
        except Exception as err:                         # pyarrow raises many error types on garbage
            raise BundleError(f"{version / 'items.parquet'}: not a readable item id file ({err})") from None
        _check_items(version / "items.parquet", items.keys, n_items)
    extras = _read_arrays(version, files, "extras.safetensors")
    _check_extras(version / "extras.safetensors", extras, n_items)
    try:
        model.recommend(Sessions(np.array([0, 1]), np.zeros(1, np.int32), n_items), k=1)
    except Exception as err:
        raise BundleError(f"{weights}: the model fails on a one-click session ({type(err).__name__}: {err})") from None
    return Bundle(model, items, manifest.get("metrics", {}), manifest.get("config", {}), manifest, version, extras)
