"""Sealed, atomically versioned directories: the storage every bundle is written into.

`new_version` gives a hidden ``.partial`` directory to write into (locked while this process
writes it), `commit_version` checksums its files, writes the manifest and its seal and
publishes it with one atomic rename of ``CURRENT``; `read_version` finds the version
``CURRENT`` names and refuses it unless the seal, the listing, the sizes and (with verify)
the sha256 of every file are right; `read_retrying` starts a read again when a save replaced
the version meanwhile; `collect_garbage` removes what aborted saves left. Model bundles
(`sketchrec.bundle`) and search bundles (`retrieval.catalogue`) are both written this way;
the package docstring of `sketchrec.bundle` says why each check is there. Bottom layer: it
imports nothing from sketchrec but the version number and `base.json_scalar`.
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
from pathlib import Path

import sketchrec

try:
    import fcntl
except ImportError:                                        # no flock (Windows): partials age out instead
    fcntl = None

FORMAT = 2
MANIFEST, SEAL = "manifest.json", "manifest.seal"
KEY_ENV = "SKETCHREC_BUNDLE_KEY"
#: seconds since its last change before a `.partial` no process holds a lock on counts as stale
STALE_AFTER = 10.0
#: the same where the file system has no locks: no save runs this long
UNLOCKED_STALE_AFTER = 6 * 3600.0

_VERSION_NAME = re.compile(r"v-\d{20}-[0-9a-f]{6}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SEAL_LINE = re.compile(rb"(sha256|hmac-sha256) ([0-9a-f]{64})\n")
_MANIFEST_LIMIT = 64 << 20


class BundleError(ValueError):
    """A bundle that cannot be loaded: missing, tampered, truncated, inconsistent or incompatible."""


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
