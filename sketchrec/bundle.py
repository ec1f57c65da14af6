"""Model bundles: one directory per trained pipeline, written atomically, verified on load.

Layout::

    BUNDLE/
      CURRENT                 name of the complete version below (replaced atomically)
      v-01764693000123456789-1a2b3c/   (nanoseconds since 1970: names sort in save order)
        manifest.json         format, library version, model class + parameters, metrics,
                              configuration, sha256 and size of every other file
        weights.safetensors   every numeric array of the model (safetensors: no pickle)
        strings.json          text arrays, if any
        items.parquet         the item id map (external ids of the model's items)
        extras.safetensors    optional named arrays served with the model (item vectors for
                              /similar, item text vectors for /search, ...)

A save writes a new version directory, fsyncs it, then swaps `CURRENT` with one atomic
rename; the previous version is deleted only afterwards. A crash (or kill -9) at any point
leaves `CURRENT` naming a complete bundle: the old one, or the new one. Loading checks the
format and library major version, recomputes every checksum, and refuses a tampered,
truncated or incompatible bundle with a `BundleError` saying what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import sketchrec
from sketchrec.data.idmap import IdMap

FORMAT = 1


class BundleError(ValueError):
    """A bundle that cannot be loaded: missing, tampered, truncated or incompatible."""


@dataclass
class Bundle:
    model: object
    items: IdMap | None
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    path: Path | None = None
    extras: dict = field(default_factory=dict)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


class _Arrays(dict):
    """What `Recommender._load_extra` expects: a mapping with a `.files` list."""

    @property
    def files(self):
        return list(self)


def new_version(root: str | Path) -> Path:
    """A fresh hidden directory under `root` to write a version into; `commit_version` publishes it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".v-{time.time_ns():020d}-{uuid.uuid4().hex[:6]}.partial"     # names sort in save order
    tmp.mkdir()
    return tmp


def commit_version(tmp: Path, manifest: dict, keep_versions: int = 2) -> Path:
    """Checksum every file of `tmp`, write its manifest, and make it the root's `CURRENT` version.

    The manifest gets the format, library version, creation time and the files' sha256 and size.
    Everything is fsynced before the one atomic rename of `CURRENT`; older versions beyond
    `keep_versions` and leftovers of crashed saves are removed afterwards."""
    from sketchrec.models.base import _json_scalar
    root = tmp.parent
    files = {}
    for f in sorted(tmp.iterdir()):
        with open(f, "rb+") as fh:
            os.fsync(fh.fileno())
        files[f.name] = {"sha256": _sha256(f), "bytes": f.stat().st_size}
    manifest = {"format": FORMAT, "sketchrec_version": sketchrec.__version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **manifest, "files": files}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, default=_json_scalar))
    with open(tmp / "manifest.json", "rb+") as fh:
        os.fsync(fh.fileno())
    version = tmp.name[1:-len(".partial")]
    final = root / version
    os.replace(tmp, final)
    _fsync_dir(root)
    pointer = root / "CURRENT.tmp"
    pointer.write_text(version + "\n")
    with open(pointer, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(pointer, root / "CURRENT")                 # the commit point
    _fsync_dir(root)
    versions = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("v-"))
    for old in versions:
        if old.name != version and old not in versions[-keep_versions:]:
            shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".v-*.partial"):               # leftovers of crashed saves
        if stale != tmp:
            shutil.rmtree(stale, ignore_errors=True)
    return final


def read_version(path: str | Path, verify: bool = True, kind: str | None = None) -> tuple[Path, dict]:
    """(version directory, manifest) of the complete version `CURRENT` names, its files checked.

    `kind`: the manifest's `kind` this caller reads (bundles of models have none)."""
    root = Path(path)
    pointer = root / "CURRENT"
    if not pointer.exists():
        raise BundleError(f"{root} is not a sketchrec bundle (no CURRENT file)")
    version = root / pointer.read_text().strip()
    manifest_file = version / "manifest.json"
    if not manifest_file.exists():
        raise BundleError(f"{root}: CURRENT names {version.name}, which has no manifest.json")
    try:
        manifest = json.loads(manifest_file.read_text())
    except json.JSONDecodeError as err:
        raise BundleError(f"{manifest_file}: not valid JSON ({err})") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{root}: bundle format {manifest.get('format')!r}; this sketchrec reads format {FORMAT}")
    theirs, ours = str(manifest.get("sketchrec_version", "?")), sketchrec.__version__
    if theirs.split(".")[0] != ours.split(".")[0]:
        raise BundleError(f"{root}: written by sketchrec {theirs}, incompatible with {ours} (major version differs)")
    if manifest.get("kind") != kind:
        raise BundleError(f"{root}: holds a {manifest.get('kind') or 'model'} bundle, not a {kind or 'model'} bundle")
    for name, meta in manifest["files"].items():
        f = version / name
        if not f.exists():
            raise BundleError(f"{root}: {name} is missing")
        if f.stat().st_size != meta["bytes"]:
            raise BundleError(f"{root}: {name} has {f.stat().st_size} bytes, the manifest says {meta['bytes']} "
                              "(truncated or replaced)")
        if verify and _sha256(f) != meta["sha256"]:
            raise BundleError(f"{root}: {name} does not match its sha256 in the manifest (tampered or corrupted)")
    return version, manifest


def read_retrying(path: str | Path, read, retries: int = 5):
    """`read(root)`, started again if a save that completes meanwhile deleted the version it read
    (up to `retries` times); a failure while `CURRENT` stays the same is a real problem, raised."""
    root = Path(path)
    for attempt in range(retries + 1):
        version = (root / "CURRENT").read_text().strip() if (root / "CURRENT").exists() else None
        try:
            return read(root)
        except (BundleError, FileNotFoundError):
            now = (root / "CURRENT").read_text().strip() if (root / "CURRENT").exists() else None
            if attempt == retries or now == version:
                raise
    raise AssertionError("unreachable")


def save_bundle(path: str | Path, model, items: IdMap | None = None, metrics: dict | None = None,
                config: dict | None = None, extras: dict[str, np.ndarray] | None = None,
                keep_versions: int = 2) -> Path:
    """Write `model` (a fitted `Recommender`) with its item ids, metrics and configuration.

    keep_versions: complete versions kept (default 2: a reader that resolved `CURRENT` just
    before a save can still finish reading the version it found)."""
    from safetensors.numpy import save_file
    model._check_fitted()
    if items is not None and len(items) != model.n_items_:
        raise BundleError(f"{len(items)} item ids for a model of {model.n_items_} items")
    if extras:
        bad = [k for k, v in extras.items() if np.asarray(v).dtype.kind not in "biuf"]
        if bad:
            raise BundleError(f"extras must be numeric arrays: {bad}")
    tmp = new_version(path)
    numeric, text = _model_arrays(model)
    save_file(numeric, str(tmp / "weights.safetensors"))
    if text:
        (tmp / "strings.json").write_text(json.dumps(text))
    if items is not None:
        items.save(tmp / "items.parquet")
    if extras:
        save_file({k: np.require(np.asarray(v), requirements="C") for k, v in extras.items()},
                  str(tmp / "extras.safetensors"))
    return commit_version(tmp, {"model_class": type(model).__name__, "params": model.get_params(),
                                "n_items": int(model.n_items_), "metrics": metrics or {}, "config": config or {}},
                          keep_versions)


def load_bundle(path: str | Path, verify: bool = True, retries: int = 5) -> Bundle:
    """Read a bundle written by `save_bundle`; checksums are verified unless verify=False.

    A save that completes while this reads may delete the version being read; the load then
    starts again from the new `CURRENT` (up to `retries` times)."""
    return read_retrying(path, lambda root: _load_version(root, verify), retries)


def _load_version(root: Path, verify: bool) -> Bundle:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from sketchrec.models.base import _REGISTRY, Recommender
    version, manifest = read_version(root, verify)
    if manifest["model_class"] not in _REGISTRY:
        raise BundleError(f"{root}: unknown model class {manifest['model_class']!r}")
    try:
        arrays = load_file(str(version / "weights.safetensors"))
    except SafetensorError as err:
        raise BundleError(f"{root}: weights.safetensors is unreadable ({err})") from None
    if (version / "strings.json").exists():
        arrays.update({k: np.array(v) for k, v in json.loads((version / "strings.json").read_text()).items()})
    n_items = int(arrays.pop("n_items_"))
    model = Recommender.from_state_arrays(manifest["model_class"], manifest["params"], n_items, _Arrays(arrays))
    items = IdMap.load(version / "items.parquet") if (version / "items.parquet").exists() else None
    extras = load_file(str(version / "extras.safetensors")) if (version / "extras.safetensors").exists() else {}
    return Bundle(model, items, manifest.get("metrics", {}), manifest.get("config", {}), manifest, version, extras)
