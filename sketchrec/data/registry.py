"""Dataset registry: what each real dataset is, where its files live, how to load it.

Every dataset is a `DatasetSpec`: its files (relative path -> sha256, size,
official download URL or None, and for re-packed files a `Recipe` that
rebuilds them from their original files), provenance (source repo@commit,
licence, citation), the counts its README verified, and a loader that turns
the files into a typed object (`SessionBenchmark`, `Interactions`,
`GraphDataset`, ...).

Files are looked up under `data_dir()`: the `SKETCHREC_DATA` environment
variable, else the user cache folder. The layout under it is the layout of the
staged `shared/datasets/` folder, so ``SKETCHREC_DATA=.../shared/datasets``
works as is. Checksums are verified on load; verified results are cached in a
small JSON keyed by (size, mtime), so only changed files are hashed again.

    >>> from sketchrec.data import registry
    >>> bench = registry.load("diginetica")          # SessionBenchmark
    >>> registry.info("cora")["complete"]
    True
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

ENV_VAR = "SKETCHREC_DATA"
FAMILIES = ("session-benchmark", "topk-benchmark", "sessions", "ratings", "sequential", "graph", "text", "images")
_VERIFY_CACHE = ".sketchrec-verified.json"
_README_HINT = "shared/datasets/README.md"


class ChecksumError(ValueError):
    """A file's content does not match the registry's sha256 (or size)."""

    def __init__(self, path, expected: str, actual: str, hint: str = ""):
        self.path, self.expected, self.actual = Path(path), expected, actual
        super().__init__(f"{path}: checksum mismatch: expected sha256 {expected}, got {actual}."
                         + (f" {hint}" if hint else ""))


class UnknownDatasetError(KeyError):
    """No dataset of that name is registered (the message lists close matches)."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


@dataclass(frozen=True)
class Source:
    """An original file a `Recipe` starts from: its URL at a pinned commit, sha256 and size."""

    url: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class Recipe:
    """How to rebuild a re-packed file exactly from its original `sources`.

    convert : name of a converter in `sketchrec.data.convert.CONVERTERS`.
    options : (key, value) pairs passed to the converter as keyword arguments
        (a tuple, so that specs stay immutable and hashable).
    """

    convert: str
    sources: tuple[Source, ...] = ()
    options: tuple[tuple[str, object], ...] = ()


def recipe(convert: str, *sources: Source, **options) -> Recipe:
    """`Recipe(convert, sources, options)` with the options given as keywords."""
    return Recipe(convert, tuple(sources), tuple(sorted(options.items())))


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset.

    sha256, size : of the file exactly as stored under the data dir.
    url : official byte-identical download URL, or None when the staged file
        was re-packed (gzipped, tarred, converted) and cannot be fetched as is.
    note : how a url=None file was made / where to get it.
    required : False for files the loader does not need (still verified if present).
    recipe : for a re-packed file, how `sketchrec.data.download.fetch` rebuilds
        it from the original files (downloaded, then converted and checked
        against `sha256`); None when no exact recipe is known.
    """

    sha256: str
    size: int
    url: str | None = None
    note: str = ""
    required: bool = True
    recipe: Recipe | None = None

    @property
    def downloadable(self) -> bool:
        """True if `fetch` can produce the file (as is, or rebuilt by its recipe)."""
        return self.url is not None or self.recipe is not None


@dataclass(frozen=True, eq=False)
class DatasetSpec:
    """A registered dataset. `loader(paths: dict[relpath, Path], **kwargs)` builds the object."""

    name: str
    family: str
    description: str
    files: dict[str, FileSpec]
    citation: str
    licence: str
    source: str
    counts: dict = field(default_factory=dict)
    loader: Callable | None = None

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"dataset {self.name!r}: family must be one of {FAMILIES}, got {self.family!r}")
        if self.name != _normalise(self.name):
            raise ValueError(f"dataset name {self.name!r} must be lowercase and hyphenated")

    def paths(self, root: str | Path | None = None) -> dict[str, Path]:
        """Absolute path of every file under `root` (default `data_dir()`)."""
        base = Path(root) if root is not None else data_dir()
        return {rel: base / rel for rel in self.files}


# -- helpers for the catalogue in sketchrec.data.loaders -------------------------

def raw_url(repo: str, commit: str, path: str) -> str:
    """GitHub raw URL of `path` in `repo` ("owner/name") at `commit`."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def file_table(table: str, *, repo: str | None = None, commit: str | None = None,
               remote_path: Callable[[str], str | None] | dict | None = None, note: str = "",
               optional: bool | tuple = (),
               recipes: Callable[[str], Recipe | None] | dict | None = None) -> dict[str, FileSpec]:
    """FileSpecs from README checksum lines ("sha256  size  relpath").

    With `repo`/`commit`, each file's URL is the raw GitHub URL of
    `remote_path(relpath)` (a callable or dict; default: the file's base name at
    the repository root). A remote path of None, or no repo, gives url=None
    with `note`. Files whose relpath ends with an entry of `optional` (all
    files if optional=True) are not required by the loader. `recipes` (a
    callable or dict of relpath -> Recipe) says how to rebuild url=None files.
    """
    out = {}
    for line in table.strip().splitlines():
        sha, size, rel = line.split()
        remote = None
        if repo is not None:
            if remote_path is None:
                remote = rel.rsplit("/", 1)[-1]
            elif isinstance(remote_path, dict):
                remote = remote_path.get(rel)
            else:
                remote = remote_path(rel)
        url = raw_url(repo, commit, remote) if remote is not None else None
        is_optional = optional is True or (bool(optional) and rel.endswith(tuple(optional)))
        how = None if url or recipes is None else (
            recipes.get(rel) if isinstance(recipes, dict) else recipes(rel))
        out[rel] = FileSpec(sha, int(size), url, "" if url else note, required=not is_optional, recipe=how)
    return out


# -- registry ---------------------------------------------------------------------

_REGISTRY: dict[str, DatasetSpec] = {}
_CATALOG_LOADED = False


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def _catalog() -> dict[str, DatasetSpec]:
    global _CATALOG_LOADED
    if not _CATALOG_LOADED:
        _CATALOG_LOADED = True
        from sketchrec.data import loaders  # noqa: F401  (registers the built-in datasets)
    return _REGISTRY


def register(spec: DatasetSpec, *, overwrite: bool = False) -> DatasetSpec:
    """Add a dataset (e.g. a private one) to the registry."""
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(f"dataset {spec.name!r} is already registered (pass overwrite=True)")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _REGISTRY.pop(_normalise(name), None)


def list_datasets(family: str | None = None) -> list[DatasetSpec]:
    """All registered datasets (optionally of one family), sorted by name."""
    specs = sorted(_catalog().values(), key=lambda s: s.name)
    return [s for s in specs if family is None or s.family == family]


def get_spec(name: str) -> DatasetSpec:
    """The spec of `name` (case-insensitive, "_" = "-"); unknown names suggest close matches."""
    catalog = _catalog()
    key = _normalise(name)
    if key in catalog:
        return catalog[key]
    close = difflib.get_close_matches(key, list(catalog), n=5, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownDatasetError(f"unknown dataset {name!r}.{hint} "
                              f"Registered: {', '.join(sorted(catalog))}")


def data_dir() -> Path:
    """Root of the dataset files: $SKETCHREC_DATA, else ~/.cache/sketchrec/datasets."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return _cache_home() / "sketchrec" / "datasets"


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()


def _root(dir_: str | Path | None) -> Path:
    return Path(dir_).expanduser() if dir_ is not None else data_dir()


# -- presence and checksums ---------------------------------------------------------

def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _cache_file(root: Path) -> Path:
    """The verify cache: next to the files if writable, else in the user cache folder."""
    if os.access(root, os.W_OK):
        return root / _VERIFY_CACHE
    tag = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return _cache_home() / "sketchrec" / "verified" / f"{tag}.json"


def _read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, cache: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".verify-", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(cache, fh, indent=0, sort_keys=True)
        os.replace(tmp, path)
    except OSError as exc:  # a cache that cannot be written only costs re-hashing
        log.debug("could not write verify cache %s: %s", path, exc)


def file_sha256(root: Path, rel: str) -> str:
    """sha256 of root/rel, taken from the verify cache when size and mtime are unchanged."""
    path = root / rel
    st = path.stat()
    cache_path = _cache_file(root)
    cache = _read_cache(cache_path)
    entry = cache.get(rel)
    if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
        return entry["sha256"]
    digest = sha256_file(path)
    cache = _read_cache(cache_path)  # re-read: another process may have added entries
    cache[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    _write_cache(cache_path, cache)
    return digest


def verify(name: str, *, quick: bool = False, data_dir: str | Path | None = None) -> dict[str, bool]:
    """relpath -> True if the file is present and matches (sha256; size only if quick).

    Missing files give False. Full checks are cached by (size, mtime).
    """
    spec, root = get_spec(name), _root(data_dir)
    out = {}
    for rel, fs in spec.files.items():
        path = root / rel
        if not path.is_file():
            out[rel] = False
        elif path.stat().st_size != fs.size:
            out[rel] = False
        else:
            out[rel] = True if quick else file_sha256(root, rel) == fs.sha256
    return out


def info(name: str, *, data_dir: str | Path | None = None) -> dict:
    """Spec fields plus, per file, whether it is present and its size on disk."""
    spec, root = get_spec(name), _root(data_dir)
    files = {}
    for rel, fs in spec.files.items():
        path = root / rel
        present = path.is_file()
        files[rel] = {"present": present, "size": path.stat().st_size if present else None,
                      "expected_size": fs.size, "sha256": fs.sha256, "url": fs.url,
                      "note": fs.note, "required": fs.required,
                      "recipe": None if fs.recipe is None else {
                          "convert": fs.recipe.convert, "options": dict(fs.recipe.options),
                          "sources": [{"url": s.url, "sha256": s.sha256} for s in fs.recipe.sources]}}
    return {"name": spec.name, "family": spec.family, "description": spec.description,
            "source": spec.source, "licence": spec.licence, "citation": spec.citation,
            "counts": dict(spec.counts), "data_dir": str(root), "files": files,
            "complete": all(f["present"] for f in files.values() if f["required"]),
            "total_size": sum(fs.size for fs in spec.files.values())}


def missing_file_error(spec: DatasetSpec, rel: str, root: Path) -> FileNotFoundError:
    fs = spec.files[rel]
    how = (f"download it with sketchrec.data.download.fetch({spec.name!r}) or "
           f"`sketchrec datasets fetch {spec.name}`" if fs.downloadable else
           f"it cannot be downloaded as is ({fs.note}); place it there by hand, see the "
           f"dataset README ({_README_HINT})")
    return FileNotFoundError(
        f"dataset {spec.name!r}: file {rel!r} not found under the data dir {root} "
        f"(set ${ENV_VAR} to change it). To get it, {how}. Source: {spec.source}.")


def load(name: str, *, verify: bool = True, data_dir: str | Path | None = None, **kwargs):
    """Load a dataset into its typed object; `kwargs` go to the family loader.

    Raises FileNotFoundError (naming the file, the data dir and how to get it)
    for a missing required file, and ChecksumError for a corrupt one
    (``verify=False`` skips the checksums).
    """
    spec, root = get_spec(name), _root(data_dir)
    for rel, fs in spec.files.items():
        if fs.required and not (root / rel).is_file():
            raise missing_file_error(spec, rel, root)
    if verify:
        for rel, fs in spec.files.items():
            path = root / rel
            if not path.is_file():
                continue
            size = path.stat().st_size
            actual = f"a file of {size} bytes (expected {fs.size})" if size != fs.size \
                else file_sha256(root, rel)
            if actual != fs.sha256:
                raise ChecksumError(path, fs.sha256, actual,
                                    f"Re-download with sketchrec.data.download.fetch({spec.name!r}, "
                                    f"force=True), or pass verify=False to skip the check.")
    if spec.loader is None:
        return spec.paths(root)
    return spec.loader(spec.paths(root), **kwargs)
