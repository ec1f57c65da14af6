"""Download registered datasets from their official sources, verified by sha256.

Each file is streamed to a temporary file next to its destination while being
hashed; only when size and sha256 match the registry is it renamed into place
(atomic on one file system), so an interrupted or corrupted download never
leaves a half file under the data dir.

Files that were re-packed when the datasets were staged (gzipped, tarred,
converted from pickles) have no byte-identical source: their `FileSpec.url` is
None and `fetch` refuses them with a message that says how the file was made
and where to place it by hand (see shared/datasets/README.md).

    >>> from sketchrec.data.download import fetch
    >>> fetch("movielens-100k")        # -> {relpath: Path}
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from sketchrec.data.registry import (
    ChecksumError, FileSpec, data_dir as default_data_dir, file_sha256, get_spec,
)

log = logging.getLogger(__name__)

__all__ = ["fetch", "download_file", "ChecksumError", "NotDownloadableError"]

_CHUNK = 1 << 16
_USER_AGENT = "sketchrec-dataset-fetch/0.1"


class NotDownloadableError(RuntimeError):
    """The file has no byte-identical download source; it must be placed by hand."""


def _progress_bar(total: int | None, desc: str, enabled: bool | None):
    """A tqdm bar if wanted and installed, else None (tqdm is optional)."""
    if enabled is False:
        return None
    if enabled is None and not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)


def download_file(url: str, dest: str | Path, *, sha256: str, size: int | None = None,
                  progress: bool | None = None, timeout: float = 60.0) -> Path:
    """Fetch `url` to `dest`, verifying size and sha256 before an atomic rename.

    Works for http(s):// and file:// URLs. On mismatch the temporary file is
    removed and ChecksumError raised; `dest` is left untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    digest, n_bytes = hashlib.sha256(), 0
    try:
        out = os.fdopen(fd, "wb")
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except (urllib.error.URLError, OSError) as exc:
            out.close()
            raise ConnectionError(f"could not download {url}: {exc}") from exc
        with response, out:
            total = size or _content_length(response)
            bar = _progress_bar(total, dest.name, progress)
            try:
                while block := response.read(_CHUNK):
                    out.write(block)
                    digest.update(block)
                    n_bytes += len(block)
                    if bar is not None:
                        bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()
        if size is not None and n_bytes != size:
            raise ChecksumError(url, sha256, f"{n_bytes} bytes (expected {size})",
                                "The download is incomplete or the source changed.")
        actual = digest.hexdigest()
        if actual != sha256:
            raise ChecksumError(url, sha256, actual,
                                f"The source no longer serves the registered file; {dest} was not written.")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("downloaded %s (%d bytes) -> %s", url, n_bytes, dest)
    return dest


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length") if hasattr(response, "headers") else None
    return int(value) if value and value.isdigit() else None


def fetch(name: str, *, data_dir: str | Path | None = None, force: bool = False,
          progress: bool | None = None, files: list[str] | None = None,
          include_optional: bool = True) -> dict[str, Path]:
    """Download the files of dataset `name` into the data dir; returns relpath -> Path.

    Files already present with the right checksum are kept (unless `force`).
    Raises NotDownloadableError if a needed file has no download URL, listing
    every such file and how it was made, after fetching the downloadable ones.
    """
    spec = get_spec(name)
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    wanted = {rel: fs for rel, fs in spec.files.items()
              if (files is None or rel in files) and (fs.required or include_optional)}
    if files is not None and (unknown := sorted(set(files) - set(spec.files))):
        raise ValueError(f"dataset {spec.name!r} has no file(s) {unknown}; it has {sorted(spec.files)}")
    out, manual = {}, []
    for rel, fs in wanted.items():
        dest = root / rel
        if not force and _is_valid(root, rel, fs):
            out[rel] = dest
            continue
        if fs.url is None:
            if fs.required or files is not None:
                manual.append((rel, fs))
            continue
        out[rel] = download_file(fs.url, dest, sha256=fs.sha256, size=fs.size, progress=progress)
    if manual:
        lines = "\n".join(f"  - {rel}: {fs.note}" for rel, fs in manual)
        raise NotDownloadableError(
            f"dataset {spec.name!r}: {len(manual)} file(s) cannot be downloaded byte-identically "
            f"and must be placed by hand under {root} (see shared/datasets/README.md; "
            f"source {spec.source}):\n{lines}")
    return out


def _is_valid(root: Path, rel: str, fs: FileSpec) -> bool:
    path = root / rel
    return path.is_file() and path.stat().st_size == fs.size and file_sha256(root, rel) == fs.sha256
