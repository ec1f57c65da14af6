"""Dataset registry and download: specs, checksums, errors, file:// downloads."""

import hashlib
import os
import re
import shutil

import pytest

from sketchrec.data import registry
from sketchrec.data.download import NotDownloadableError, download_file, fetch
from sketchrec.data.registry import ChecksumError, DatasetSpec, FileSpec, UnknownDatasetError

EXPECTED_NAMES = {
    "diginetica", "yoochoose1-64", "retailrocket", "nowplaying", "diginetica-sample", "yoochoose-100k",
    "otto-sample", "trivago-sample", "movielens-100k", "movielens-latest-small", "ml-100k-kg", "beauty",
    "sports", "toys", "yelp", "facebook-page-page", "cora", "citeseer", "pubmed", "lastfm-asia",
    "deezer-europe", "twitch-engb", "wikipedia-crocodile", "reddit10k", "blogcatalog", "email-eu-core",
    "email-enron", "sst2", "ag-news", "wildnlp-samples", "wildnlp-resources", "mnist-test", "orl-faces",
    "sklearn-digits", "coil20", "jaffe", "umist", "yaleb", "yale", "fashion-catalog", "fashion-images",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def tiny_dataset(tmp_path):
    """A registered one-file dataset served from a file:// URL."""
    source = tmp_path / "source" / "a.txt"
    source.parent.mkdir()
    source.write_bytes(b"1 2 3\n4 5\n")
    spec = DatasetSpec(
        "tiny-test", "sessions", "test", {"tiny/a.txt": FileSpec(_sha(source.read_bytes()), 10, source.as_uri())},
        "none", "none", "local", {}, lambda paths: paths["tiny/a.txt"].read_text())
    registry.register(spec, overwrite=True)
    yield spec, source
    registry.unregister("tiny-test")


# -- catalogue -----------------------------------------------------------------

def test_every_expected_name_is_registered():
    names = {s.name for s in registry.list_datasets()}
    assert EXPECTED_NAMES <= names
    for spec in registry.list_datasets():
        assert spec.family in registry.FAMILIES and spec.files and spec.loader is not None
        assert spec.source and spec.citation and spec.licence
        for rel, fs in spec.files.items():
            assert re.fullmatch(r"[0-9a-f]{64}", fs.sha256) and fs.size > 0, rel
            assert fs.url is None or fs.url.startswith("https://raw.githubusercontent.com/"), rel
            assert fs.url is not None or fs.note, f"{rel}: url=None needs a note saying how it was made"
    assert registry.list_datasets("graph") and all(s.family == "graph" for s in registry.list_datasets("graph"))


def test_urls_point_at_the_origin_commit():
    cora = registry.get_spec("cora").files
    assert cora["planetoid/raw/ind.cora.x"].url == (
        "https://raw.githubusercontent.com/kimiyoung/planetoid/af6abf468a772cc055bec88c52e4d6f51b7c37e3/data/ind.cora.x")
    assert cora["planetoid/converted/cora_edges.csv"].url is None
    otto = registry.get_spec("otto-sample").files["otto-sample/otto_train_first20_sessions.jsonl"]
    assert otto.url.endswith("/otto-de/recsys-dataset/f404284240ac654d0b924b2fabec0aea7b23f168/test/resources/train.jsonl")
    sst = registry.get_spec("sst2").files
    assert sst["text/sst2/test_labeled.tsv"].url.endswith("/SST-2/test.tsv")
    assert sst["text/sst2/train.tsv.gz"].url is None  # gzipped by the staging


def test_specs_cover_exactly_the_readme_checksum_list(shared):
    if not (shared / "README.md").is_file():
        pytest.skip(f"the datasets README.md is not staged under {shared}")
    text = (shared / "README.md").read_text()
    # two layouts: the closing list ("sha  size  path") and the per-section lists of files not yet
    # in it ("  `sha` size `path`", e.g. section 17)
    listed = {m.group(3): (m.group(1), int(m.group(2)))
              for pattern in (r"^([0-9a-f]{64})\s+(\d+)\s+(\S+)$", r"^\s*`([0-9a-f]{64})`\s+(\d+)\s+`(\S+)`\s*$")
              for m in re.finditer(pattern, text, flags=re.M)}
    specs = {rel: (fs.sha256, fs.size) for s in registry.list_datasets() for rel, fs in s.files.items()}
    assert specs == listed


@pytest.mark.slow
@pytest.mark.needs_dataset(*(spec.name for spec in registry.list_datasets()))
def test_all_files_present_and_checksums_match(shared):
    """Hashes ~140 MB once; later runs read the (size, mtime)-keyed verify cache."""
    for spec in registry.list_datasets():
        result = registry.verify(spec.name)
        assert all(result.values()), f"{spec.name}: {[r for r, ok in result.items() if not ok]}"


@pytest.mark.needs_dataset("cora")
def test_info_and_quick_verify(shared):
    info = registry.info("cora")
    assert info["complete"] and info["data_dir"] == str(shared) and info["family"] == "graph"
    edges = info["files"]["planetoid/converted/cora_edges.csv"]
    assert edges["present"] and edges["size"] == edges["expected_size"] == 48450
    assert info["counts"]["nodes"] == 2708
    assert all(registry.verify("cora", quick=True).values())


def test_data_dir_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert registry.data_dir() == tmp_path / "sketchrec" / "datasets"
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path / "data"))
    assert registry.data_dir() == tmp_path / "data"


# -- errors ----------------------------------------------------------------------

def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownDatasetError, match="Did you mean 'diginetica'") as err:
        registry.get_spec("digenetica")
    assert isinstance(err.value, KeyError)
    assert registry.get_spec("YOOCHOOSE1_64").name == "yoochoose1-64"  # case and "_" tolerated


def test_missing_file_names_file_dir_and_remedy(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        registry.load("ag-news", data_dir=tmp_path)
    msg = str(err.value)
    assert "text/ag_news/test.csv" in msg and str(tmp_path) in msg and "fetch('ag-news')" in msg
    with pytest.raises(FileNotFoundError, match="place it there by hand"):
        registry.load("orl-faces", data_dir=tmp_path)  # no byte-identical download


@pytest.mark.needs_dataset("cora")
def test_checksum_mismatch_is_a_clear_error(shared, tmp_path):
    for rel in registry.get_spec("cora").files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared / rel, tmp_path / rel)
    assert registry.load("cora", data_dir=tmp_path).n_nodes == 2708
    assert (tmp_path / ".sketchrec-verified.json").is_file()  # writable dir: cache next to the files
    target = tmp_path / "planetoid/converted/cora_labels.csv"
    data = bytearray(target.read_bytes())
    data[-2] = ord("6") if data[-2] != ord("6") else ord("5")  # same size, different content
    os.chmod(target, 0o644)
    target.write_bytes(bytes(data))
    assert registry.verify("cora", data_dir=tmp_path)["planetoid/converted/cora_labels.csv"] is False
    with pytest.raises(ChecksumError, match="cora_labels.csv: checksum mismatch") as err:
        registry.load("cora", data_dir=tmp_path)
    assert err.value.expected == registry.get_spec("cora").files["planetoid/converted/cora_labels.csv"].sha256
    registry.load("cora", data_dir=tmp_path, verify=False)  # opt-out still loads


# -- download ----------------------------------------------------------------------

def test_download_file_url_verifies_and_renames(tmp_path):
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(200_000))
    dest = tmp_path / "out" / "copy.bin"
    download_file(source.as_uri(), dest, sha256=_sha(source.read_bytes()), size=200_000, progress=False)
    assert dest.read_bytes() == source.read_bytes()


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    source = tmp_path / "src.bin"
    source.write_bytes(b"real content")
    dest = tmp_path / "out" / "copy.bin"
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        download_file(source.as_uri(), dest, sha256="0" * 64, progress=False)
    with pytest.raises(ChecksumError, match="incomplete"):
        download_file(source.as_uri(), dest, sha256=_sha(b"real content"), size=99, progress=False)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    with pytest.raises(ConnectionError):
        download_file((tmp_path / "absent").as_uri(), dest, sha256="0" * 64, progress=False)


def test_fetch_then_load_registered_dataset(tiny_dataset, tmp_path):
    spec, source = tiny_dataset
    root = tmp_path / "data"
    paths = fetch("tiny-test", data_dir=root, progress=False)
    assert paths["tiny/a.txt"].read_bytes() == source.read_bytes()
    assert registry.load("tiny-test", data_dir=root) == "1 2 3\n4 5\n"
    source.write_bytes(b"changed!!\n")  # present and valid: fetch does not download again
    assert fetch("tiny-test", data_dir=root, progress=False) == paths
    with pytest.raises(ChecksumError):
        fetch("tiny-test", data_dir=root, force=True, progress=False)
    assert paths["tiny/a.txt"].read_bytes() == b"1 2 3\n4 5\n"  # failed re-download kept the good file


def test_fetch_refuses_repacked_files(tmp_path):
    with pytest.raises(NotDownloadableError, match="must be placed by hand") as err:
        fetch("orl-faces", data_dir=tmp_path)
    assert "orl_faces_pgm.tar.gz" in str(err.value) and "tar.gz made by the dataset staging" in str(err.value)


@pytest.mark.needs_dataset("cora")
def test_fetch_keeps_valid_files_without_network(shared):
    paths = fetch("cora", data_dir=shared)  # everything staged and valid: nothing to download
    assert set(paths) == set(registry.get_spec("cora").files)
