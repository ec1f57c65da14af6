"""Download registered datasets from their official sources, verified by sha256.

Each file is streamed to a `.part` file next to its destination while being
hashed; only when size and sha256 match the registry is it renamed into place
(atomic on one file system), so an interrupted or corrupted download never
leaves a half file under the data dir.

Resuming. The `.part` file has a stable name (``.<name>.part`` beside the
destination). When a download is cut off, the part is kept, and the next
attempt asks the server for the rest with ``Range: bytes=<part size>-``: a
``206 Partial Content`` answer is appended, a plain ``200`` (a server without
range support) starts the file over. A part that turns out corrupt fails the
sha256 check and is deleted. Two processes fetching the same file at the same
time are not supported.

Re-packed files. Files that were re-packed when the datasets were staged
(gzipped, converted from pickles to text, Planetoid pickles to CSV / npz) have
no byte-identical download: their `FileSpec.url` is None. Where an exact
recipe is known (`FileSpec.recipe`), `fetch` downloads the ORIGINAL files at
their pinned commit, checks their sha256, rebuilds the staged file with the
named converter of `sketchrec.data.convert` into a temporary file and keeps it
only if its sha256 is the registry's (else ChecksumError, nothing written).
Pickles among the originals are read with `sketchrec.data.safe_pickle`, which
refuses every global, so a tampered pickle cannot run code. The originals are
kept under ``<data dir>/.sketchrec-sources/`` until the fetch succeeds (a
failed fetch resumes from them), except those that are themselves files of
the dataset (Planetoid's raw pickles), which are fetched to their own place.
Files with neither URL nor recipe are refused with NotDownloadableError, whose
message says how the file was made and where to place it by hand.

Mirrors. With ``SKETCHREC_MIRROR=<base>`` (or ``fetch(..., mirror=<base>)``)
every http(s) URL is fetched from the mirror instead, at ``<base>/<the URL
without its scheme>``; e.g. with ``SKETCHREC_MIRROR=https://artifacts.example.com/sketchrec/``
the file ``https://raw.githubusercontent.com/OWNER/REPO/COMMIT/PATH`` is read
from ``https://artifacts.example.com/sketchrec/raw.githubusercontent.com/OWNER/REPO/COMMIT/PATH``.
So a company without internet access on its machines mirrors the files once
into an internal artifact store (or a shared folder: a plain path or a
``file://`` URL works as the base too) with that layout; the sha256 checks
stay the same, so a mirror cannot serve a different file. Every URL a dataset
needs is listed by ``sketchrec datasets info NAME`` (files' `url` and their
recipes' `sources`).

Offline. If a needed file is missing and cannot be downloaded, `fetch` raises
MissingDatasetError (a FileNotFoundError) whose message is one line naming the
dataset, the data dir, the reason and the remedies; print it as is.

    >>> from sketchrec.data.download import fetch
    >>> fetch("movielens-100k")        # -> {relpath: Path}
    >>> fetch("diginetica")            # pickles from GCE-GNN, rebuilt as the staged text files
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from sketchrec.data.registry import (
    ENV_VAR, ChecksumError, DatasetSpec, FileSpec, Source, data_dir as default_data_dir, file_sha256,
    get_spec, sha256_file,
)

log = logging.getLogger(__name__)

__all__ = ["fetch", "download_file", "build_file", "mirror_url", "ChecksumError", "NotDownloadableError",
           "MissingDatasetError", "DownloadError", "MIRROR_ENV"]

MIRROR_ENV = "SKETCHREC_MIRROR"
SOURCES_DIR = ".sketchrec-sources"
_CHUNK = 1 << 16
_USER_AGENT = "sketchrec-dataset-fetch/0.1"


class NotDownloadableError(RuntimeError):
    """The file has no byte-identical download source nor recipe; it must be placed by hand."""


class DownloadError(ConnectionError):
    """A URL could not be read (no network, refused, HTTP error, cut off)."""

    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, " ".join(str(reason).split())
        super().__init__(f"could not download {url}: {self.reason}")


class MissingDatasetError(FileNotFoundError):
    """A dataset's files are not in the data dir and could not be downloaded.

    Its message is one line meant to be shown to the user as is.
    """

    def __init__(self, dataset: str, data_dir: Path, reason: str):
        self.dataset, self.data_dir, self.reason = dataset, Path(data_dir), reason
        super().__init__(
            f"dataset {dataset!r} is not in {data_dir} and could not be downloaded ({reason}): run "
            f"`sketchrec datasets fetch {dataset}` with internet access, or set {MIRROR_ENV} / {ENV_VAR}")

    def __str__(self) -> str:
        return self.args[0]


def mirror_url(url: str, mirror: str | None = None) -> str:
    """`url` as fetched through the mirror `mirror` (default: $SKETCHREC_MIRROR; "" = none).

    http(s) URLs become ``<mirror>/<url without scheme>``; other URLs (file://) are kept.
    """
    base = os.environ.get(MIRROR_ENV, "") if mirror is None else mirror
    scheme, sep, rest = url.partition("://")
    if not base or not sep or scheme not in ("http", "https"):
        return url
    if "://" not in base:  # a plain folder
        base = Path(base).expanduser().resolve().as_uri()
    return base.rstrip("/") + "/" + rest


def _progress_bar(total: int | None, desc: str, enabled: bool | None, initial: int = 0):
    """A tqdm bar if wanted and installed, else None (tqdm is optional)."""
    if enabled is False:
        return None
    if enabled is None and not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                leave=False)


def _part_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.part")


def _open(url: str, offset: int, timeout: float):
    """(response, offset): asks for bytes offset.. when offset > 0; offset comes back 0 when
    the server sends the whole file instead (no range support, or the part is stale)."""
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:  # range not satisfiable: the part is no prefix of the file
            return _open(url, 0, timeout)
        raise DownloadError(url, f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(url, getattr(exc, "reason", None) or exc) from exc
    if offset:
        partial = getattr(response, "status", None) == 206
        content_range = response.headers.get("Content-Range", "") if response.headers else ""
        if partial and not content_range.startswith(f"bytes {offset}-"):  # another range: ask for all
            response.close()
            return _open(url, 0, timeout)
        if not partial:  # a 200: the whole file comes, start the part over
            offset = 0
    return response, offset


def download_file(url: str, dest: str | Path, *, sha256: str, size: int | None = None,
                  progress: bool | None = None, timeout: float = 60.0, mirror: str | None = None) -> Path:
    """Fetch `url` (through `mirror`, see `mirror_url`) to `dest`, verifying size and sha256
    before an atomic rename; resumes an earlier cut-off download of the same `dest`.

    Works for http(s):// and file:// URLs. On mismatch the partial file is
    removed and ChecksumError raised; `dest` is left untouched. Network
    failures raise DownloadError (a ConnectionError) and keep the partial file.
    """
    dest = Path(dest)
    url = mirror_url(url, mirror)
    part = _part_path(dest)
    offset = part.stat().st_size if part.is_file() else 0
    if size is not None and offset >= size:  # a complete (or overlong) part left by an earlier run
        if offset == size and sha256_file(part) == sha256:
            os.replace(part, dest)
            return dest
        part.unlink()
        offset = 0
    response, offset = _open(url, offset, timeout)
    dest.parent.mkdir(parents=True, exist_ok=True)  # only now: an offline attempt leaves no folders
    digest = hashlib.sha256()
    if offset:
        with open(part, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    announced = _content_length(response)
    received = 0
    with response, open(part, "ab" if offset else "wb") as out:
        bar = _progress_bar(size or (announced + offset if announced is not None else None), dest.name,
                            progress, initial=offset)
        try:
            while block := _read(response, url, offset + received):
                out.write(block)
                digest.update(block)
                received += len(block)
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
    n_bytes = offset + received
    if announced is not None and received < announced:
        raise DownloadError(url, f"the connection closed after {n_bytes} bytes; run again to resume")
    if size is not None and n_bytes != size:
        part.unlink()
        raise ChecksumError(url, sha256, f"{n_bytes} bytes (expected {size})",
                            "The download is incomplete or the source changed.")
    actual = digest.hexdigest()
    if actual != sha256:
        part.unlink()
        raise ChecksumError(url, sha256, actual,
                            f"The source no longer serves the registered file; {dest} was not written.")
    os.replace(part, dest)
    log.info("downloaded %s (%d bytes%s) -> %s", url, n_bytes, f", resumed at {offset}" if offset else "", dest)
    return dest


def _read(response, url: str, done: int) -> bytes:
    try:
        return response.read(_CHUNK)
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(url, f"cut off after {done} bytes ({exc}); run again to resume") from exc


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
    return int(value) if value and value.isdigit() else None


def build_file(fs: FileSpec, dest: str | Path, sources: list[Path]) -> Path:
    """Run `fs.recipe`'s converter on the verified `sources` into `dest`, keeping the result
    only if its size and sha256 are the registry's (else ChecksumError, `dest` untouched)."""
    from sketchrec.data import convert
    dest = Path(dest)
    converter = convert.get(fs.recipe.convert)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            converter(sources, out, name=dest.name, **dict(fs.recipe.options))
        size = tmp.stat().st_size
        actual = sha256_file(tmp) if size == fs.size else f"{size} bytes (expected {fs.size})"
        if actual != fs.sha256:
            raise ChecksumError(dest, fs.sha256, actual,
                                f"Converter {fs.recipe.convert!r} did not rebuild the registered file from "
                                f"its verified sources (another version of numpy / scipy / gzip can change "
                                f"the bytes); {dest} was not written.")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("built %s with %r from %d source(s)", dest, fs.recipe.convert, len(sources))
    return dest


def _source_file(spec: DatasetSpec, root: Path, src: Source, *, progress, mirror) -> tuple[Path, bool]:
    """(path of the verified original file, whether it sits in the sources cache)."""
    for rel, fs in spec.files.items():  # the source is a file of the dataset itself: fetch it in place
        if fs.url == src.url and fs.sha256 == src.sha256:
            if not _is_valid(root, rel, fs):
                download_file(fs.url, root / rel, sha256=fs.sha256, size=fs.size, progress=progress, mirror=mirror)
            return root / rel, False
    base = urllib.parse.unquote(urllib.parse.urlsplit(src.url).path.rsplit("/", 1)[-1]) or "source"
    dest = root / SOURCES_DIR / f"{src.sha256[:16]}-{base}"
    if not (dest.is_file() and sha256_file(dest) == src.sha256):
        download_file(src.url, dest, sha256=src.sha256, size=src.size, progress=progress, mirror=mirror)
    return dest, True


def fetch(name: str, *, data_dir: str | Path | None = None, force: bool = False,
          progress: bool | None = None, files: list[str] | None = None,
          include_optional: bool = True, mirror: str | None = None) -> dict[str, Path]:
    """Download the files of dataset `name` into the data dir; returns relpath -> Path.

    Files already present with the right checksum are kept (unless `force`).
    Re-packed files with a recipe are rebuilt from their downloaded originals.
    `mirror` overrides $SKETCHREC_MIRROR (see the module docstring; "" = none).
    Raises MissingDatasetError (one-line message) when a download fails, and
    NotDownloadableError if a needed file has neither URL nor recipe, listing
    every such file and how it was made, after fetching the others.
    """
    spec = get_spec(name)
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    wanted = {rel: fs for rel, fs in spec.files.items()
              if (files is None or rel in files) and (fs.required or include_optional)}
    if files is not None and (unknown := sorted(set(files) - set(spec.files))):
        raise ValueError(f"dataset {spec.name!r} has no file(s) {unknown}; it has {sorted(spec.files)}")
    # plain downloads first: a recipe may start from another file of the dataset
    ordered = sorted(wanted.items(), key=lambda item: item[1].recipe is not None)
    out, manual, cached = {}, [], set()
    try:
        for rel, fs in ordered:
            dest = root / rel
            if not force and _is_valid(root, rel, fs):
                out[rel] = dest
            elif fs.url is not None:
                out[rel] = download_file(fs.url, dest, sha256=fs.sha256, size=fs.size, progress=progress,
                                         mirror=mirror)
            elif fs.recipe is not None:
                sources = []
                for src in fs.recipe.sources:
                    path, in_cache = _source_file(spec, root, src, progress=progress, mirror=mirror)
                    sources.append(path)
                    if in_cache:
                        cached.add(path)
                out[rel] = build_file(fs, dest, sources)
            elif fs.required or files is not None:
                manual.append((rel, fs))
    except ConnectionError as exc:
        raise MissingDatasetError(spec.name, root, _short_reason(exc)) from exc
    for path in cached:  # every file built: the originals are no longer needed
        path.unlink(missing_ok=True)
    if cached and not any((root / SOURCES_DIR).iterdir()):
        (root / SOURCES_DIR).rmdir()
    if manual:
        lines = "\n".join(f"  - {rel}: {fs.note}" for rel, fs in manual)
        raise NotDownloadableError(
            f"dataset {spec.name!r}: {len(manual)} file(s) cannot be downloaded byte-identically "
            f"and must be placed by hand under {root} (see shared/datasets/README.md; "
            f"source {spec.source}):\n{lines}")
    return out


def _short_reason(exc: ConnectionError) -> str:
    if isinstance(exc, DownloadError):
        where = urllib.parse.urlsplit(exc.url)
        return f"{where.netloc or where.scheme}: {exc.reason}"
    return " ".join(str(exc).split())


def _is_valid(root: Path, rel: str, fs: FileSpec) -> bool:
    path = root / rel
    return path.is_file() and path.stat().st_size == fs.size and file_sha256(root, rel) == fs.sha256
