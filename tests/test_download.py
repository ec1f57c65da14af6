"""fetch over real HTTP: rebuilt files, checksums, resumed downloads, mirrors, offline errors.

A real `http.server` on 127.0.0.1 serves a temporary folder in the mirror
layout (``<mirror>/raw.githubusercontent.com/OWNER/REPO/COMMIT/PATH``), with
Range support that can be switched off and a switch to cut responses short.
The always-run tests use small synthetic sources registered as temporary
datasets; the real-data ones regenerate the original pickles / raw files from
the staged datasets and check that fetch rebuilds every staged file exactly.
"""

import gzip
import hashlib
import io
import pickle
import re
import shutil
import socket
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sketchrec.cli import app
from sketchrec.data import registry
from sketchrec.data.download import MIRROR_ENV, DownloadError, MissingDatasetError, download_file, fetch, mirror_url
from sketchrec.data.registry import ChecksumError, DatasetSpec, FileSpec, Source, raw_url, recipe
from sketchrec.data.safe_pickle import UnsafePickleError

REPO, COMMIT = "example/sessions", "0123456789abcdef0123456789abcdef01234567"
TRAIN = [[1, 2], [3, 4, 5], [6, 7, 6]]
TEST = ([[8, 9, 10], [8, 9], [8], [11]], [12, 10, 9, 2])  # sessions 8 9 10 12 and 11 2
RAW = b"sessionId\titemId\n1\t214586805\n1\t214509260\n" * 50


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _staging_gzip(name: str, text: str) -> bytes:
    """The staging's gzip writer (see shared/datasets/README.md)."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", compresslevel=9, fileobj=buf, mtime=0) as gz:
        gz.write(text.encode())
    return buf.getvalue()


class _Handler(SimpleHTTPRequestHandler):
    """Static files with `Range: bytes=N-` support (unless server.ranges is False) and an
    optional cut-off after server.cut_after bytes (the Content-Length still announces all)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        asked = self.headers.get("Range")
        if not path.is_file():
            self.server.requests.append((self.path, asked, 404))
            self.send_error(404)
            return
        data = path.read_bytes()
        wanted = re.fullmatch(r"bytes=(\d+)-", asked or "")
        start = int(wanted.group(1)) if wanted and self.server.ranges else 0
        if start >= len(data) > 0:
            self.server.requests.append((self.path, asked, 416))
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        self.server.requests.append((self.path, asked, 206 if start else 200))
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if self.server.cut_after is not None:
            body, self.server.cut_after = body[:self.server.cut_after], None
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    """(mirror base URL, mirror folder, the HTTP server) serving tmp_path/mirror."""
    root = tmp_path / "mirror"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(root)))
    httpd.requests, httpd.ranges, httpd.cut_after = [], True, None
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root, httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _publish(mirror_root: Path, url: str, data: bytes) -> Source:
    """Put `data` where the mirror serves `url`; its Source."""
    path = mirror_root / url.split("://", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Source(url, _sha(data), len(data))


@pytest.fixture
def sessions_dataset(server):
    """A registered dataset whose files are all rebuilt from pickles (and one raw file) on the mirror."""
    base, root, _ = server
    train = _publish(root, raw_url(REPO, COMMIT, "datasets/all_train_seq.txt"), pickle.dumps(TRAIN, protocol=3))
    test = _publish(root, raw_url(REPO, COMMIT, "datasets/test.txt"), pickle.dumps(TEST, protocol=3))
    expected = {
        "dl-test/train_sessions.txt.gz": (_staging_gzip("train_sessions.txt", "1 2\n3 4 5\n6 7 6\n"),
                                          recipe("sessions-train", train)),
        "dl-test/test_pairs.tsv.gz": (_staging_gzip("test_pairs.tsv", "8 9 10\t12\n8 9\t10\n8\t9\n11\t2\n"),
                                      recipe("sessions-test-pairs", test)),
        "dl-test/test_sessions.txt.gz": (_staging_gzip("test_sessions.txt", "8 9 10 12\n11 2\n"),
                                         recipe("sessions-test-sessions", test)),
    }
    if shutil.which("gzip"):
        raw = _publish(root, raw_url(REPO, COMMIT, "raw.tsv"), RAW)
        made = subprocess.run(["gzip", "-n", "-6", "-c"], input=RAW, capture_output=True, check=True).stdout
        expected["dl-test/raw.tsv.gz"] = (made, recipe("gzip", raw, level=6))
    files = {rel: FileSpec(_sha(data), len(data), note="rebuilt from pickles", recipe=how)
             for rel, (data, how) in expected.items()}
    spec = registry.register(DatasetSpec("dl-test", "sessions", "test", files, "none", "none", REPO),
                             overwrite=True)
    yield spec, {rel: data for rel, (data, _) in expected.items()}
    registry.unregister("dl-test")


# -- always run: synthetic sources -----------------------------------------------------

def test_fetch_rebuilds_files_through_the_mirror_env(sessions_dataset, server, tmp_path, monkeypatch):
    spec, expected = sessions_dataset
    base, _, httpd = server
    monkeypatch.setenv(MIRROR_ENV, base)
    data = tmp_path / "data"
    paths = fetch("dl-test", data_dir=data, progress=False)
    assert {rel: p.read_bytes() for rel, p in paths.items()} == expected
    assert {path for path, _, _ in httpd.requests} >= {
        f"/raw.githubusercontent.com/{REPO}/{COMMIT}/datasets/all_train_seq.txt",
        f"/raw.githubusercontent.com/{REPO}/{COMMIT}/datasets/test.txt"}
    assert len(httpd.requests) == len({p for p, _, _ in httpd.requests})  # test.txt fetched once for two files
    assert not (data / ".sketchrec-sources").exists()  # originals dropped once everything is built
    httpd.requests.clear()
    assert fetch("dl-test", data_dir=data, progress=False) == paths and httpd.requests == []  # all valid


def test_mirror_url_layout(monkeypatch, tmp_path):
    url = raw_url("owner/repo", COMMIT, "data/x.txt")
    assert mirror_url(url, "http://artifacts.local/sketchrec/") == \
        f"http://artifacts.local/sketchrec/raw.githubusercontent.com/owner/repo/{COMMIT}/data/x.txt"
    assert mirror_url(url, str(tmp_path)) == f"{tmp_path.as_uri()}/raw.githubusercontent.com/owner/repo/{COMMIT}/data/x.txt"
    monkeypatch.setenv(MIRROR_ENV, "http://m:1")
    assert mirror_url(url) == f"http://m:1/raw.githubusercontent.com/owner/repo/{COMMIT}/data/x.txt"
    assert mirror_url(url, "") == url  # explicitly no mirror
    assert mirror_url((tmp_path / "a").as_uri()) == (tmp_path / "a").as_uri()  # local files are not mirrored


def test_rebuilt_file_with_wrong_checksum_writes_nothing(sessions_dataset, server, tmp_path):
    spec, _ = sessions_dataset
    rel = "dl-test/test_pairs.tsv.gz"
    bad = DatasetSpec("dl-test-bad", "sessions", "test", {rel: FileSpec("0" * 64, spec.files[rel].size,
                      note="x", recipe=spec.files[rel].recipe)}, "none", "none", REPO)
    registry.register(bad, overwrite=True)
    try:
        with pytest.raises(ChecksumError, match="did not rebuild the registered file"):
            fetch("dl-test-bad", data_dir=tmp_path / "data", mirror=server[0], progress=False)
    finally:
        registry.unregister("dl-test-bad")
    assert list((tmp_path / "data" / "dl-test").iterdir()) == []  # no output, no temporary file


def test_source_with_wrong_checksum_is_refused(sessions_dataset, server, tmp_path):
    _, root, _ = server
    (root / f"raw.githubusercontent.com/{REPO}/{COMMIT}/datasets/test.txt").write_bytes(
        pickle.dumps(([[1]], [2]), protocol=3))  # the source changed upstream
    data = tmp_path / "data"
    with pytest.raises(ChecksumError, match="test.txt"):
        fetch("dl-test", data_dir=data, mirror=server[0], progress=False)
    assert not (data / "dl-test/test_pairs.tsv.gz").exists()
    assert not list((data / ".sketchrec-sources").glob("*test.txt*"))  # the bad download was deleted


def test_cut_off_download_resumes_with_range(server, tmp_path):
    base, root, httpd = server
    payload = bytes(range(256)) * 400
    src = _publish(root, raw_url(REPO, COMMIT, "big.bin"), payload)
    dest = tmp_path / "data" / "big.bin"
    httpd.cut_after = 30_000
    with pytest.raises(DownloadError, match="run again to resume"):
        download_file(src.url, dest, sha256=src.sha256, size=src.size, progress=False, mirror=base)
    part = dest.with_name(".big.bin.part")
    assert part.stat().st_size == 30_000 and not dest.exists()
    download_file(src.url, dest, sha256=src.sha256, size=src.size, progress=True, mirror=base)
    assert dest.read_bytes() == payload and not part.exists()
    assert httpd.requests[-1] == (f"/raw.githubusercontent.com/{REPO}/{COMMIT}/big.bin", "bytes=30000-", 206)


def test_server_without_range_support_restarts_the_file(server, tmp_path):
    base, root, httpd = server
    httpd.ranges = False
    payload = b"0123456789" * 1000
    src = _publish(root, raw_url(REPO, COMMIT, "plain.bin"), payload)
    dest = tmp_path / "plain.bin"
    dest.with_name(".plain.bin.part").write_bytes(b"stale bytes from another version")
    download_file(src.url, dest, sha256=src.sha256, size=src.size, progress=False, mirror=base)
    assert dest.read_bytes() == payload and httpd.requests[-1][1:] == ("bytes=32-", 200)  # asked, got it all


def test_malicious_source_pickle_is_refused(server, tmp_path):
    class Payload:
        def __reduce__(self):
            return subprocess.call, (["touch", str(marker)],)

    marker = tmp_path / "pwned"
    src = _publish(server[1], raw_url(REPO, COMMIT, "evil/all_train_seq.txt"), pickle.dumps([[1, 2], Payload()]))
    rel = "dl-evil/train_sessions.txt.gz"
    registry.register(DatasetSpec("dl-evil", "sessions", "test", {rel: FileSpec("0" * 64, 10, note="x",
                      recipe=recipe("sessions-train", src))}, "none", "none", REPO), overwrite=True)
    try:
        with pytest.raises(UnsafePickleError, match="refused to load global subprocess.call"):
            fetch("dl-evil", data_dir=tmp_path / "data", mirror=server[0], progress=False)
    finally:
        registry.unregister("dl-evil")
    assert not marker.exists() and not (tmp_path / "data" / rel).exists()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def test_offline_fetch_is_one_clear_line(sessions_dataset, tmp_path, monkeypatch):
    data = tmp_path / "data"
    with pytest.raises(MissingDatasetError) as err:
        fetch("dl-test", data_dir=data, mirror=_closed_port_url(), progress=False)
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError) and "\n" not in msg
    assert msg.startswith(f"dataset 'dl-test' is not in {data} and could not be downloaded (127.0.0.1:")
    assert "`sketchrec datasets fetch dl-test`" in msg and "SKETCHREC_MIRROR / SKETCHREC_DATA" in msg

    monkeypatch.setenv(registry.ENV_VAR, str(data))
    monkeypatch.setenv(MIRROR_ENV, _closed_port_url())
    result = CliRunner().invoke(app, ["datasets", "fetch", "dl-test"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "could not be downloaded" in result.output


def test_cli_fetch(sessions_dataset, server, tmp_path, monkeypatch):
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path / "data"))
    monkeypatch.setenv(MIRROR_ENV, server[0])
    result = CliRunner().invoke(app, ["datasets", "fetch", "dl-test", "--force"])
    assert result.exit_code == 0, result.output
    assert "ok dl-test/test_sessions.txt.gz" in result.output


# -- real data: the staged files, rebuilt from their regenerated originals ----------------------

def _serve_sources(spec, shared: Path, mirror_root: Path, originals: dict) -> None:
    """Publish every URL and recipe source of `spec`: registered files from the staged copy,
    recipe sources from `originals` (url -> bytes), each checked against its registered sha256."""
    for rel, fs in spec.files.items():
        if fs.url is not None:
            _publish(mirror_root, fs.url, (shared / rel).read_bytes())
        for src in fs.recipe.sources if fs.recipe else ():
            data = originals.get(src.url) or (shared / next(
                r for r, f in spec.files.items() if f.url == src.url)).read_bytes()
            assert _sha(data) == src.sha256, f"regenerated {src.url} differs from the registered original"
            _publish(mirror_root, src.url, data)


def _check_rebuilt(spec, paths: dict) -> None:
    assert set(paths) == set(spec.files)
    for rel, path in paths.items():
        assert registry.sha256_file(path) == spec.files[rel].sha256, rel


@pytest.mark.needs_dataset("diginetica")
def test_diginetica_rebuilt_from_regenerated_pickles(shared, server, tmp_path):
    """The source pickles are protocol-3 dumps of the staged text; fetch turns them back exactly."""
    spec = registry.get_spec("diginetica")
    folder = shared / "session-benchmarks/diginetica"

    def rows(name):
        with gzip.open(folder / name, "rt") as fh:
            return [line.rstrip("\n").split("\t") for line in fh]
    train = [[int(i) for i in r[0].split()] for r in rows("train_sessions.txt.gz")]
    pairs = rows("test_pairs.tsv.gz")
    test = ([[int(i) for i in p.split()] for p, _ in pairs], [int(label) for _, label in pairs])
    recipes = {rel: fs.recipe for rel, fs in spec.files.items()}
    originals = {recipes["session-benchmarks/diginetica/train_sessions.txt.gz"].sources[0].url:
                 pickle.dumps(train, protocol=3),
                 recipes["session-benchmarks/diginetica/test_pairs.tsv.gz"].sources[0].url:
                 pickle.dumps(test, protocol=3)}
    raw_ids = "session-benchmarks/diginetica/cikm16_test_raw_ids.tsv.gz"
    if shutil.which("gzip") is None:
        pytest.skip("no GNU gzip command to rebuild cikm16_test_raw_ids.tsv.gz")
    originals[recipes[raw_ids].sources[0].url] = gzip.decompress((shared / raw_ids).read_bytes())
    _serve_sources(spec, shared, server[1], originals)
    paths = fetch("diginetica", data_dir=tmp_path / "data", mirror=server[0], progress=False)
    _check_rebuilt(spec, paths)


@pytest.mark.needs_dataset("cora")
def test_cora_rebuilt_from_the_raw_planetoid_pickles(shared, server, tmp_path):
    """Python-2 pickles of numpy / scipy objects, read with safe_pickle's allowlist -> CSV / npz / JSON."""
    spec = registry.get_spec("cora")
    _serve_sources(spec, shared, server[1], {})
    paths = fetch("cora", data_dir=tmp_path / "data", mirror=server[0], progress=False)
    _check_rebuilt(spec, paths)
