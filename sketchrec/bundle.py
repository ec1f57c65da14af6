"""Model bundles: one directory per trained pipeline, written atomically, sealed, checked on load.

Layout::

    BUNDLE/
      CURRENT                 the name of the complete version below and a newline, nothing else
      v-01764693000123456789-1a2b3c/   (nanoseconds since 1970: names sort in save order)
        manifest.json         format, library version, model class + parameters, metrics,
                              configuration, sha256 and size of every other file
        manifest.seal         the manifest's own digest: "sha256 <hex>", or "hmac-sha256 <hex>"
                              for a bundle saved with a key
        weights.safetensors   every numeric array of the model (safetensors: no pickle)
        strings.json          text arrays, if any
        items.parquet         the item id map (external ids of the model's items)
        extras.safetensors    optional named arrays served with the model (item vectors for
                              /similar, item text vectors for /search, ...)
      .v-...partial/          a save in progress, or what an aborted one left (see below)

A save writes a new version directory, fsyncs it, then swaps `CURRENT` with one atomic
rename; the previous version is deleted only afterwards. A crash (or kill -9) at any point
leaves `CURRENT` naming a complete bundle: the old one, or the new one.

Why sealed, and why checked beyond the seal. A bundle is served as it is found on disk, so a
change nobody noticed (a flipped byte, an edited parameter, a stray file) must stop the load,
not change recommendations or turn every request into a 500. The seal makes any change to any
byte visible: it covers the manifest, which holds the sha256 of every other file, and `CURRENT`
may only hold a sibling version's exact name. With `SKETCHREC_BUNDLE_KEY` set at save time the
seal is an HMAC-SHA256 under that key: such a bundle loads only where the same key is set, and
where a key is set, only bundles signed with it load (an unsigned copy is not a way around it).
A plain sha256 seal catches accidents, not someone who recomputes it; so what the model is
built from is also checked for what it must be, from the model class and its parameters alone:
the parameters by the class (`Recommender.check_params`: names, types, allowed values), every
array's name, shape, dtype and index range against what a model of that class and those
parameters holds (`expected_arrays`), the item ids (one unique id per item), the extras the
service uses; and the built model must answer a one-click session. Every refusal is a
`BundleError` naming the file and what is wrong. Bundles of format 1 (unsealed) are refused
with a request to re-save them.

Leftovers of aborted saves. A save writes into `.v-<time>-<random>.partial` and holds a shared
`flock` on that directory until it is renamed into place; the kernel drops the lock when the
writer exits, kill -9 included. A `.partial` is stale when no process holds its lock and it was
last modified at least `STALE_AFTER` seconds ago (the margin covers the instant between
creating the directory and locking it); on a file system without locks, after
`UNLOCKED_STALE_AFTER`. Stale partials are removed at the start of every save into the bundle
and by `sketchrec bundle gc PATH` (`collect_garbage`), which also removes versions beyond the
kept ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import stat
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import sketchrec
from sketchrec.data.idmap import IdMap

try:
    import fcntl
except ImportError:                                        # no flock (Windows): partials age out instead
    fcntl = None

FORMAT = 2
MANIFEST, SEAL = "manifest.json", "manifest.seal"
KEY_ENV = "SKETCHREC_BUNDLE_KEY"
#: the files a model bundle may hold besides its manifest and seal
MODEL_FILES = ("weights.safetensors", "strings.json", "items.parquet", "extras.safetensors")
#: extras the service reads per item: (n_items, d) floating arrays
ITEM_EXTRAS = ("item_vectors", "text_vectors")
#: seconds since its last change before a `.partial` no process holds a lock on counts as stale
STALE_AFTER = 10.0
#: the same where the file system has no locks: no save runs this long
UNLOCKED_STALE_AFTER = 6 * 3600.0

_VERSION_NAME = re.compile(r"v-\d{20}-[0-9a-f]{6}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SEAL_LINE = re.compile(rb"(sha256|hmac-sha256) ([0-9a-f]{64})\n")
_MANIFEST_LIMIT = 64 << 20
_FLOATS, _INTS = ("float32", "float64"), ("int32", "int64")


class BundleError(ValueError):
    """A bundle that cannot be loaded: missing, tampered, truncated, inconsistent or incompatible."""


@dataclass
class Bundle:
    model: object
    items: IdMap | None
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    path: Path | None = None
    extras: dict = field(default_factory=dict)


# -- files ---------------------------------------------------------------------------------

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


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _regular_file(path: Path) -> os.stat_result:
    """`lstat` of a file the bundle reads: it must be a regular file, not a link to elsewhere."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise BundleError(f"{path} is missing") from None
    if stat.S_ISLNK(st.st_mode):
        raise BundleError(f"{path} is a symbolic link (a bundle holds its own files)")
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{path} is not a regular file")
    return st


def _read_small(path: Path, limit: int) -> bytes:
    _regular_file(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as err:
        raise BundleError(f"{path}: unreadable ({err})") from None
    if len(raw) > limit:
        raise BundleError(f"{path}: larger than {limit:,} bytes")
    return raw


# -- the seal --------------------------------------------------------------------------------

def _key(key: str | bytes | None) -> bytes | None:
    """The signing key: `key` if given, else $SKETCHREC_BUNDLE_KEY; empty means none."""
    key = os.environ.get(KEY_ENV) if key is None else key
    return (key.encode() if isinstance(key, str) else key) or None


def _seal_line(manifest: bytes, key: bytes | None) -> bytes:
    if key is None:
        return b"sha256 " + hashlib.sha256(manifest).hexdigest().encode() + b"\n"
    return b"hmac-sha256 " + hmac.new(key, manifest, "sha256").hexdigest().encode() + b"\n"


def _check_seal(version: Path, manifest: bytes, key: bytes | None) -> str:
    """The seal's algorithm, once the seal is found to match `manifest` (the manifest's bytes)."""
    path = version / SEAL
    raw = _read_small(path, 256)
    line = _SEAL_LINE.fullmatch(raw)
    if line is None:
        raise BundleError(f"{path}: not a seal (one line 'sha256 <64 hex digits>' or 'hmac-sha256 <64 hex digits>')")
    algorithm = line[1].decode()
    if algorithm == "hmac-sha256" and key is None:
        raise BundleError(f"{path}: the bundle is signed (HMAC-SHA256); set {KEY_ENV} to the key it was saved with")
    if algorithm == "sha256" and key is not None:
        raise BundleError(f"{path}: the bundle is not signed, and {KEY_ENV} is set: only bundles signed with "
                          "that key are loaded (re-save it with the key, or unset the variable)")
    if not hmac.compare_digest(_seal_line(manifest, key), raw):
        raise BundleError(f"{version / MANIFEST} does not match its seal in {SEAL} ("
                          + ("altered, or signed with another key)" if key else "altered or corrupted)"))
    return algorithm


# -- writing -----------------------------------------------------------------------------------

_WRITING: dict[Path, int] = {}       # partial directory of a save in this process -> fd holding its lock


def new_version(root: str | Path) -> Path:
    """A fresh hidden directory under `root` to write a version into; `commit_version` publishes it.

    Removes stale partials first (leftovers of aborted saves), and locks the new one for as long
    as this process writes it (see the module docstring)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _remove(stale_partials(root))
    tmp = root / f".v-{time.time_ns():020d}-{uuid.uuid4().hex[:6]}.partial"     # names sort in save order
    tmp.mkdir()
    fd = os.open(tmp, os.O_RDONLY)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except OSError:                                  # a file system without locks: it ages out
            pass
    _WRITING[tmp] = fd
    return tmp


def abort_version(tmp: Path) -> None:
    """Remove a version being written that will not be committed, and drop its lock."""
    shutil.rmtree(tmp, ignore_errors=True)
    _release(tmp)


def _release(tmp: Path) -> None:
    fd = _WRITING.pop(tmp, None)
    if fd is not None:
        os.close(fd)


def commit_version(tmp: Path, manifest: dict, keep_versions: int = 2, key: str | bytes | None = None) -> Path:
    """Checksum every file of `tmp`, write its manifest and seal, and make it the root's `CURRENT` version.

    The manifest gets the format, library version, creation time, seal algorithm and the
    files' sha256 and size; the seal is the manifest's sha256, or its HMAC-SHA256 under `key`
    (default: $SKETCHREC_BUNDLE_KEY). Everything is fsynced before the one atomic rename of
    `CURRENT`; versions beyond `keep_versions` are removed afterwards."""
    from sketchrec.base import json_scalar as _json_scalar
    if keep_versions < 1:
        raise ValueError("keep_versions must be at least 1 (the current version)")
    root, key = tmp.parent, _key(key)
    files = {}
    for f in sorted(tmp.iterdir()):
        with open(f, "rb+") as fh:
            os.fsync(fh.fileno())
        files[f.name] = {"sha256": _sha256(f), "bytes": f.stat().st_size}
    manifest = {"format": FORMAT, "sketchrec_version": sketchrec.__version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **manifest,
                "seal": "hmac-sha256" if key else "sha256", "files": files}
    raw = json.dumps(manifest, indent=1, default=_json_scalar).encode()
    _write_synced(tmp / MANIFEST, raw)
    _write_synced(tmp / SEAL, _seal_line(raw, key))
    version = tmp.name[1:-len(".partial")]
    final = root / version
    os.replace(tmp, final)
    _fsync_dir(root)
    _write_synced(root / "CURRENT.tmp", (version + "\n").encode())
    os.replace(root / "CURRENT.tmp", root / "CURRENT")          # the commit point
    _fsync_dir(root)
    _release(tmp)
    _remove(_old_versions(root, keep_versions, version))
    return final


# -- reading -----------------------------------------------------------------------------------

def _current(root: Path) -> str:
    """The version name `CURRENT` holds: exactly a sibling version directory's name and a newline."""
    pointer = root / "CURRENT"
    if not os.path.lexists(pointer):
        raise BundleError(f"{root} is not a sketchrec bundle (no CURRENT file)")
    raw = _read_small(pointer, 4096)
    name = raw[:-1].decode("ascii", "replace")
    if not raw.endswith(b"\n") or not _VERSION_NAME.fullmatch(name):
        raise BundleError(f"{pointer}: must hold the name of a version directory beside it "
                          f"(v-<20 digits>-<6 hex digits>) and a newline, not {raw!r}")
    return name


def _version_dir(root: Path, name: str) -> Path:
    version = root / name
    try:
        st = os.lstat(version)
    except FileNotFoundError:
        raise BundleError(f"{root / 'CURRENT'} names {name}, which does not exist") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise BundleError(f"{version}: CURRENT must name a version directory beside it, not a link or a file")
    return version


def _parse_manifest(path: Path, raw: bytes, algorithm: str, kind: str | None, known_files) -> dict:
    """The manifest's JSON, refused unless it is a manifest this sketchrec reads for `kind`."""
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: must hold a JSON object, not a {type(manifest).__name__}")
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: bundle format {manifest.get('format')!r}; this sketchrec reads format {FORMAT}")
    theirs, ours = str(manifest.get("sketchrec_version", "?")), sketchrec.__version__
    if theirs.split(".")[0] != ours.split(".")[0]:
        raise BundleError(f"{path}: written by sketchrec {theirs}, incompatible with {ours} (major version differs)")
    if manifest.get("kind") != kind:
        raise BundleError(f"{path}: holds a {manifest.get('kind') or 'model'} bundle, not a {kind or 'model'} bundle")
    if manifest.get("seal") != algorithm:
        raise BundleError(f"{path}: says it is sealed with {manifest.get('seal')!r}, but {SEAL} holds {algorithm}")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{path}: 'files' must map every file of the version to its sha256 and size")
    for name, meta in files.items():
        if not _FILE_NAME.fullmatch(name) or name in (MANIFEST, SEAL):
            raise BundleError(f"{path}: lists a file named {name!r} (a plain file name of this version only)")
        if known_files is not None and name not in known_files:
            raise BundleError(f"{path}: lists {name}, which a {kind or 'model'} bundle does not have "
                              f"(it may have {', '.join(known_files)})")
        if (not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str)
                or not re.fullmatch(r"[0-9a-f]{64}", meta["sha256"]) or type(meta.get("bytes")) is not int
                or meta["bytes"] < 0):
            raise BundleError(f"{path}: the entry of {name} must be {{'sha256': <64 hex digits>, 'bytes': <size>}}")
    return manifest


def read_version(path: str | Path, verify: bool = True, kind: str | None = None, known_files=None,
                 key: str | bytes | None = None) -> tuple[Path, dict]:
    """(version directory, manifest) of the complete version `CURRENT` names, sealed and its files checked.

    kind: the manifest's `kind` this caller reads (bundles of models have none).
    known_files: the file names the caller reads (default: any the manifest lists).
    verify: recompute every file's sha256 (sizes, the seal and the listing are always checked).
    key: the signing key (default: $SKETCHREC_BUNDLE_KEY)."""
    root = Path(path)
    version = _version_dir(root, _current(root))
    try:
        entries = {e.name: e for e in os.scandir(version)}
    except OSError as err:
        raise BundleError(f"{version}: unreadable ({err})") from None
    if MANIFEST not in entries:
        raise BundleError(f"{version / MANIFEST} is missing")
    if SEAL not in entries:
        raise BundleError(f"{version / SEAL} is missing: an unsealed bundle (format 1, from an older sketchrec) "
                          "or a damaged one; save the model again with this sketchrec")
    raw = _read_small(version / MANIFEST, _MANIFEST_LIMIT)
    algorithm = _check_seal(version, raw, _key(key))
    manifest = _parse_manifest(version / MANIFEST, raw, algorithm, kind, known_files)
    unknown = sorted(set(entries) - set(manifest["files"]) - {MANIFEST, SEAL})
    if unknown:
        raise BundleError(f"{version / unknown[0]}: not listed in the manifest (a bundle holds nothing else)")
    for name, meta in manifest["files"].items():
        f = version / name
        size = _regular_file(f).st_size
        if size != meta["bytes"]:
            raise BundleError(f"{f} has {size} bytes, the manifest says {meta['bytes']} (truncated or replaced)")
        try:
            if verify and _sha256(f) != meta["sha256"]:
                raise BundleError(f"{f} does not match its sha256 in the manifest (tampered or corrupted)")
        except OSError as err:
            raise BundleError(f"{f}: unreadable ({err})") from None
    return version, manifest


def read_retrying(path: str | Path, read, retries: int = 5):
    """`read(root)`, started again if a save that completes meanwhile deleted the version it read
    (up to `retries` times); a failure while `CURRENT` stays the same is a real problem, raised."""
    root = Path(path)

    def pointer():
        try:
            return (root / "CURRENT").read_bytes()
        except OSError:
            return None
    for attempt in range(retries + 1):
        version = pointer()
        try:
            return read(root)
        except (BundleError, FileNotFoundError):
            if attempt == retries or pointer() == version:
                raise
    raise AssertionError("unreachable")


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


#: model class name -> (fitted model or one built from its parameters, n_items) -> its arrays;
#: a class not here cannot be bundled (its arrays could not be checked on load). Each entry
#: mirrors the class's `_state` / `_save_extra`; `save_bundle` checks what it writes against it,
#: so a class whose state changes cannot be bundled until its entry follows.
_ARRAYS = {
    "Popularity": lambda model, n: {"counts_": Dense((n,))},
    "EASE": lambda model, n: {"weights_": Dense((n, n))},
    "ItemKNN": lambda model, n: {"similarity_": Csr(n, n), "popularity_": Dense((n,))},
    "SequentialRules": lambda model, n: {"rules_": Csr(n, n), "popularity_": Dense((n,))},
    "SessionKNN": _session_knn_arrays,
    "VSKNN": _session_knn_arrays,
    "EMDE": _emde_arrays,
    "SRGNN": _srgnn_arrays,
    "TAGNN": _srgnn_arrays,
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
    return _REGISTRY[name], params, n_items


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


# -- leftovers ---------------------------------------------------------------------------------

def _writer_alive(partial: Path) -> bool | None:
    """Whether a process holds the lock of a partial version (None: this file system cannot tell)."""
    if fcntl is None:
        return None
    try:
        fd = os.open(partial, os.O_RDONLY)
    except FileNotFoundError:                            # committed or removed meanwhile: not ours to touch
        return True
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)


def stale_partials(root: str | Path, min_age: float = STALE_AFTER) -> list[Path]:
    """The `.partial` directories under `root` no live process is writing (see the module docstring)."""
    now, stale = time.time(), []
    for partial in sorted(Path(root).glob(".v-*.partial")):
        try:
            age = now - partial.lstat().st_mtime
        except FileNotFoundError:
            continue
        alive = _writer_alive(partial) if age >= min_age else True
        if alive is False or (alive is None and age >= UNLOCKED_STALE_AFTER):
            stale.append(partial)
    return stale


def _old_versions(root: Path, keep: int, current: str) -> list[Path]:
    """Complete versions beyond the `keep` newest, never the current one."""
    versions = sorted(p for p in root.iterdir()
                      if _VERSION_NAME.fullmatch(p.name) and p.is_dir() and not p.is_symlink())
    return [v for v in versions[:-keep] if v.name != current]


def _remove(paths: list[Path]) -> None:
    for p in paths:
        if p.is_symlink():
            p.unlink()
        else:
            shutil.rmtree(p, ignore_errors=True)


def _size(path: Path) -> int:
    if path.is_symlink():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def collect_garbage(path: str | Path, keep_versions: int = 2, min_age: float = STALE_AFTER) -> list[tuple[Path, int]]:
    """Remove what a bundle directory does not need: stale partial versions (aborted saves) and,
    when `CURRENT` is valid, complete versions beyond the `keep_versions` newest (the current one
    always stays). Returns (removed path, bytes freed) pairs."""
    root = Path(path)
    if keep_versions < 1:
        raise ValueError("keep_versions must be at least 1 (the current version)")
    if not root.is_dir() or not (os.path.lexists(root / "CURRENT") or any(root.glob(".v-*.partial"))):
        raise BundleError(f"{root} is not a sketchrec bundle (no CURRENT file, no partial versions)")
    doomed = stale_partials(root, min_age)
    try:
        doomed += _old_versions(root, keep_versions, _current(root))
    except BundleError:                                  # no valid CURRENT: every version may be the one
        pass
    removed = [(p, _size(p)) for p in doomed]
    _remove(doomed)
    return removed
