"""Model bundles: safetensors + sealed manifest, atomic saves, refusal of anything altered or inconsistent.

Hostile bundles come in two kinds here: changed files (caught by the checksums and the seal),
and changes a tester re-sealed (`reseal`: every sha256 and the seal recomputed, as anyone with
write access can when no key is set), which must still be refused by the checks of what the
model class and its parameters imply.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.numpy import load_file, save_file
from typer.testing import CliRunner

import sketchrec
from sketchrec.eval.validation import NextItemValidation
from sketchrec.bundle import (KEY_ENV, BundleError, abort_version, collect_garbage, load_bundle, new_version,
                              save_bundle)
from sketchrec.cli import app
from sketchrec.data.idmap import IdMap
from sketchrec.data.sessions import Sessions
from sketchrec.models import SRGNN, TAGNN, ClusteredSessions
from sketchrec.models.base import _REGISTRY
from sketchrec.models.baselines import EASE, VSKNN, ItemKNN, Popularity, SequentialRules, SessionKNN

N = 30


def data(n_items=N, n=300, seed=0):
    starts = np.random.default_rng(seed).integers(0, n_items, n)
    return Sessions.from_lists(((starts[:, None] + np.arange(5)) % n_items).tolist(), n_items=n_items)


PROBE = Sessions.from_lists([[1, 2, 3], [10], [28, 29]], n_items=N)
ITEMS = IdMap([f"sku-{i}" for i in range(N)], "item")


def small_emde(**kw):
    from sketchrec.models.emde import EMDE
    return EMDE(inputs=("all:cleora:1", "last:cleora:0"), outputs=("cleora:1",), n_sketches=4, n_bits=5, hidden=32,
                epochs=1, batch_size=64, progress=False, threads=1, **kw)


@pytest.fixture(scope="module")
def emde():
    return small_emde().fit(data())


@pytest.fixture(scope="module")
def rules():
    return SequentialRules().fit(data())


def current(root: Path) -> Path:
    return root / (root / "CURRENT").read_text().strip()


def seal(version: Path, manifest) -> None:
    raw = json.dumps(manifest).encode()
    (version / "manifest.json").write_bytes(raw)
    (version / "manifest.seal").write_text(f"sha256 {hashlib.sha256(raw).hexdigest()}\n")


def reseal(version: Path, edit=None) -> None:
    """What anyone with write access can do to a bundle without a key: change the manifest
    (`edit(manifest)` returns the new one, or edits in place), recompute the checksum of every
    file there is and the seal."""
    manifest = json.loads((version / "manifest.json").read_text())
    manifest = (edit(manifest) if edit else None) or manifest
    if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict):
        manifest["files"] = {f.name: {"sha256": hashlib.sha256(f.read_bytes()).hexdigest(), "bytes": f.stat().st_size}
                             for f in sorted(version.iterdir()) if f.name not in ("manifest.json", "manifest.seal")}
    seal(version, manifest)


def rewrite(version: Path, change, file="weights.safetensors") -> None:
    """Replace arrays of a tensor file (`change(arrays)` edits the dict) and re-seal."""
    arrays = load_file(str(version / file))
    change(arrays)
    save_file(arrays, str(version / file))
    reseal(version)


def refused(root, match: str) -> None:
    with pytest.raises(BundleError, match=match):
        load_bundle(root)


# -- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [Popularity, ItemKNN, EASE, SequentialRules, SessionKNN, VSKNN, small_emde,
                                  lambda: SRGNN(hidden=8, epochs=1, progress=False, threads=1),
                                  lambda: TAGNN(hidden=8, epochs=1, progress=False, threads=1)])
def test_round_trip_scores_equal(tmp_path, make):
    model = make().fit(data())
    save_bundle(tmp_path / "b", model, ITEMS, metrics={"HR@20": 0.5}, config={"dataset": "toy"})
    b = load_bundle(tmp_path / "b")
    np.testing.assert_allclose(b.model.score(PROBE), model.score(PROBE), rtol=1e-6, atol=1e-6)
    assert b.items.keys.to_pylist() == ITEMS.keys.to_pylist()
    assert b.metrics == {"HR@20": 0.5} and b.config == {"dataset": "toy"}
    assert b.manifest["sketchrec_version"] == sketchrec.__version__ and b.manifest["seal"] == "sha256"
    names = {p.name for p in b.path.iterdir()}
    assert {"weights.safetensors", "manifest.json", "manifest.seal"} <= names
    assert not any(n.endswith((".pkl", ".pickle", ".npz")) for n in names)


def test_every_bundleable_class_accepts_its_default_parameters():
    from sketchrec.bundle import bundleable
    for cls in _REGISTRY.values():
        if not cls.__module__.startswith("sketchrec."):           # (other tests' toy models)
            continue
        cls.check_params({})
        if bundleable(cls):
            cls.check_params(json.loads(json.dumps(cls().get_params())))
    assert not bundleable(ClusteredSessions)


# -- changed bytes ------------------------------------------------------------------------------

def test_tampered_truncated_and_incompatible_bundles_are_refused(tmp_path, rules):
    version = save_bundle(tmp_path / "b", rules)
    weights = version / "weights.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    refused(tmp_path / "b", "weights.safetensors does not match its sha256")
    weights.write_bytes(bytes(raw[:-4]))
    refused(tmp_path / "b", "truncated")
    version = save_bundle(tmp_path / "c", rules)
    reseal(version, lambda m: m.update(sketchrec_version="99.0.0"))
    refused(tmp_path / "c", "incompatible")
    reseal(version, lambda m: m.update(sketchrec_version=sketchrec.__version__, format=7))
    refused(tmp_path / "c", "format 7")
    refused(tmp_path / "nothing", "not a sketchrec bundle")
    with pytest.raises(BundleError, match="item ids"):
        save_bundle(tmp_path / "d", rules, IdMap(["a", "b"]))


def positions(size: int) -> list[int]:
    """Every byte of a small file; of a larger one the first 256 (headers) and 300 spread over it."""
    if size <= 4096:
        return list(range(size))
    return sorted(set(range(256)) | set(np.linspace(0, size - 1, 300).astype(int).tolist()))


@pytest.mark.parametrize("which", ["emde", "rules"])
def test_a_one_byte_change_anywhere_is_refused(tmp_path, which, request):
    model = request.getfixturevalue(which)
    extras = {"item_vectors": np.random.default_rng(0).normal(size=(N, 4)).astype(np.float32)}
    root = tmp_path / "b"
    version = save_bundle(root, model, ITEMS, metrics={"HR@20": 0.5}, extras=extras if which == "emde" else None)
    files = [root / "CURRENT"] + sorted(version.iterdir())
    expected = {"CURRENT", "manifest.json", "manifest.seal", "weights.safetensors", "items.parquet"}
    assert {f.name for f in files} == expected | ({"extras.safetensors"} if which == "emde" else set())
    flips = 0
    for f in files:
        original = f.read_bytes()
        for at in positions(len(original)):
            changed = bytearray(original)
            changed[at] ^= 0x01 if at % 2 else 0x80              # the lowest bit and the highest
            f.write_bytes(bytes(changed))
            with pytest.raises(BundleError, match=f.name if f.name != "CURRENT" else "CURRENT|v-"):
                load_bundle(root, retries=0)
            flips += 1
        f.write_bytes(original)
    assert flips > 1000
    np.testing.assert_allclose(load_bundle(root).model.score(PROBE), model.score(PROBE), rtol=1e-6, atol=1e-6)


def test_edited_parameters_are_refused(tmp_path, emde):
    """The tester's edits: prior 1.0 -> 9.0, decay 0.9 -> 0.1, a flipped byte in lr_decay."""
    version = save_bundle(tmp_path / "b", emde, ITEMS)
    original = (version / "manifest.json").read_text()
    for old, new in [('"prior": 1.0', '"prior": 9.0'), ('"decay": 0.9', '"decay": 0.1'),
                     ('"lr_decay": 0.5', '"lr_decay": 0.7')]:
        assert old in original
        (version / "manifest.json").write_text(original.replace(old, new))
        refused(tmp_path / "b", "manifest.json does not match its seal")
    (version / "manifest.json").write_text(original)
    assert load_bundle(tmp_path / "b").model.prior == 1.0


# -- re-sealed changes: what the class and parameters imply --------------------------------------

@pytest.mark.parametrize("edit, match", [
    (lambda m: m["params"].update(readout="bayez"), "readout='bayez' is not one of"),
    (lambda m: m["params"].update(bogus=1), "no parameter 'bogus'"),
    (lambda m: m["params"].update(hidden="32"), "hidden='32': wrong type"),
    (lambda m: m["params"].update(n_sketches=4.0), "n_sketches=4.0: wrong type"),
    (lambda m: m["params"].update(inputs="all:cleora:1"), "inputs='all:cleora:1': wrong type"),
    (lambda m: m["params"].update(decay=9.0), r"decay=9.0 lies outside \[0, 1\]"),
    (lambda m: m["params"].update(batch_size=0), "batch_size=0 lies outside"),
    (lambda m: m["params"].update(prior=float("nan")), "prior=nan is not a finite number"),
    (lambda m: m["params"].update(inputs=["sideways:cleora:1"]), "do not make a model of class EMDE"),
    (lambda m: m["params"].update(inputs=["all:glove"]), "array 'codes.glove' is missing"),
    (lambda m: m["params"].update(hidden=64), r"'net.input_bias' has shape \(32,\), expected \(64,\)"),
    (lambda m: m["params"].update(n_bits=6), "'n_inputs_' is 256, expected 512"),
    (lambda m: m.update(params=[1, 2]), "parameters must be a mapping"),
    (lambda m: m.update(model_class="SRGNN", params={"hidden": 32}), "array 'net.att_all.bias' is missing"),
    (lambda m: m.update(model_class="Popularity", params={}), "array 'counts_' is missing"),
    (lambda m: m.update(model_class="ClusteredSessions", params={}), "cannot be loaded from a bundle"),
    (lambda m: m.update(model_class="os.system"), "unknown model class"),
    (lambda m: m.update(n_items=31), "'n_items_' is 30, expected 31"),
    (lambda m: m.update(n_items="30"), "n_items must be a positive integer"),
    (lambda m: m.update(metrics=[0.5]), "metrics must be a JSON object"),
    (lambda m: {k: v for k, v in m.items() if k != "files"}, "'files' must map"),
    (lambda m: m.update(files=[]), "'files' must map"),
    (lambda m: [m], "must hold a JSON object, not a list"),
    (lambda m: m.update(seal="hmac-sha256"), "says it is sealed with 'hmac-sha256'"),
    (lambda m: m.update(kind="catalogue-search"), "not a model bundle"),
])
def test_resealed_manifest_changes_are_refused(tmp_path, emde, edit, match):
    version = save_bundle(tmp_path / "b", emde, ITEMS)
    reseal(version, edit)
    refused(tmp_path / "b", match)


@pytest.mark.parametrize("change, match", [
    (lambda a: a.update({"net.output.weight": np.zeros((64, 32), np.float32)}),
     r"'net.output.weight' has shape \(64, 32\)"),
    (lambda a: a.update({"net.output.bias": a["net.output.bias"].astype(np.float64)}), "has dtype float64"),
    (lambda a: a.update({"codes.cleora:1": a["codes.cleora:1"].astype(np.int32)}), "has dtype int32, expected int16"),
    (lambda a: a["codes.cleora:1"].__setitem__((0, 0), 32), r"values outside \[0, 32\)"),
    (lambda a: a["codes.cleora:0"].__setitem__((3, 1), -1), r"values outside \[0, 32\)"),
    (lambda a: a.update({"item_counts_": a["item_counts_"][:-1]}), r"'item_counts_' has shape \(29,\)"),
    (lambda a: a["item_counts_"].__setitem__(4, np.nan), "non-finite"),
    (lambda a: a.update({"n_inputs_": np.array(512)}), "'n_inputs_' is 512, expected 256"),
    (lambda a: a.pop("net.input_bias"), "'net.input_bias' is missing"),
    (lambda a: a.update({"net.backdoor": np.zeros(3, np.float32)}), "unexpected array 'net.backdoor'"),
    (lambda a: a.update({"codes.glove": np.zeros((30, 4), np.int16)}), "unexpected array 'codes.glove'"),
    (lambda a: a.update({"n_items_": np.array(31)}), "'n_items_' is 31, expected 30"),
])
def test_arrays_unlike_what_the_class_and_parameters_imply_are_refused(tmp_path, emde, change, match):
    version = save_bundle(tmp_path / "b", emde, ITEMS)
    rewrite(version, change)
    refused(tmp_path / "b", match)


@pytest.mark.parametrize("change, match", [
    (lambda a: a["rules_.csr_indices"].__setitem__(0, 30), r"values outside \[0, 30\)"),
    (lambda a: a.update({"rules_.csr_indptr": a["rules_.csr_indptr"][::-1].copy()}), "do not make a 30 x 30 CSR"),
    (lambda a: a.update({"rules_.csr_shape": np.array([30, 31])}), "do not make a 30 x 30 CSR"),
    (lambda a: a.update({"rules_.csr_data": a["rules_.csr_data"][:-1]}),
     r"'rules_.csr_indices' has shape \(120,\), expected \(119,\) \(rules_ entries as in the arrays before it\)"),
])
def test_broken_sparse_matrices_are_refused(tmp_path, rules, change, match):
    version = save_bundle(tmp_path / "b", rules, ITEMS)
    rewrite(version, change)
    refused(tmp_path / "b", match)


def test_session_knn_arrays_must_agree_on_the_session_count(tmp_path):
    version = save_bundle(tmp_path / "b", SessionKNN().fit(data()), ITEMS)
    rewrite(version, lambda a: a.update({"norm_": a["norm_"][:-1]}))
    refused(tmp_path / "b", r"'norm_' has shape \(299,\), expected \(300,\)")


def test_unknown_files_are_refused(tmp_path, rules):
    root = tmp_path / "b"
    version = save_bundle(root, rules, ITEMS)
    save_file({"rules_.csr_data": np.zeros(3, np.float32)}, str(version / "override.safetensors"))
    refused(root, "override.safetensors: not listed in the manifest")
    reseal(version)                                  # listed now: still not a file a model bundle has
    refused(root, "lists override.safetensors, which a model bundle does not have")
    (version / "override.safetensors").unlink()
    reseal(version)
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["files"]["../../etc/passwd"] = manifest["files"]["items.parquet"]
    seal(version, manifest)
    refused(root, "lists a file named '../../etc/passwd'")
    reseal(version)
    (version / "items.parquet").rename(tmp_path / "items.parquet")
    (version / "items.parquet").symlink_to(tmp_path / "items.parquet")
    refused(root, "items.parquet is a symbolic link")
    (version / "items.parquet").unlink()
    refused(root, "items.parquet is missing")


def test_current_may_only_name_a_sibling_version(tmp_path, rules, emde):
    root, other = tmp_path / "b", tmp_path / "other"
    save_bundle(root, rules, ITEMS)
    other_version = save_bundle(other, emde, ITEMS)
    name = (root / "CURRENT").read_text()
    for pointer in [str(other_version) + "\n", f"../other/{other_version.name}\n", name.strip(), name + "\n",
                    " " + name, name.strip() + "\r\n", "", "\x00" * 10]:
        (root / "CURRENT").write_text(pointer)
        refused(root, "CURRENT: must hold the name of a version directory beside it")
    shutil.copytree(other_version, root / other_version.name, symlinks=True)
    (root / "CURRENT").write_text(other_version.name + "\n")
    assert type(load_bundle(root).model).__name__ == "EMDE"         # a complete sealed version beside it: fine
    shutil.rmtree(root / other_version.name)
    (root / other_version.name).symlink_to(other_version)
    refused(root, "not a link or a file")
    (root / "CURRENT").write_text("v-" + "9" * 20 + "-abcdef\n")
    refused(root, "which does not exist")
    (root / "CURRENT").unlink()
    (root / "CURRENT").symlink_to(other / "CURRENT")
    refused(root, "CURRENT is a symbolic link")


@pytest.mark.parametrize("write_items, match", [
    (lambda path: path.write_bytes(b"PAR1 this is not parquet PAR1"), "not a readable item id file"),
    (lambda path: pq.write_table(pa.table({"item": [f"x{i}" for i in range(29)]}), path),
     "29 item ids for a model of 30"),
    (lambda path: pq.write_table(pa.table({"item": ["dup"] * 30}), path), "item ids repeat"),
    (lambda path: pq.write_table(pa.table({"item": ["x"] + [None] * 29}), path), "null"),
    (lambda path: pq.write_table(pa.table({"item": [[1]] * 30}), path), "must be text or integers"),
])
def test_bad_item_id_files_are_refused(tmp_path, rules, write_items, match):
    version = save_bundle(tmp_path / "b", rules, ITEMS)
    write_items(version / "items.parquet")
    reseal(version)
    refused(tmp_path / "b", match)


def test_extras_the_service_reads_must_fit_the_items(tmp_path, rules):
    version = save_bundle(tmp_path / "b", rules, ITEMS, extras={"item_vectors": np.ones((N, 4), np.float32)})
    rewrite(version, lambda a: a.update(item_vectors=np.ones((N - 1, 4), np.float32)), "extras.safetensors")
    refused(tmp_path / "b", r"extra 'item_vectors' must be \(30, d\) floats")
    (version / "extras.safetensors").write_bytes(b"\xff" * 64)
    reseal(version)
    refused(tmp_path / "b", "extras.safetensors: not a readable safetensors file")


def test_save_refuses_what_load_would_refuse(tmp_path, rules, emde):
    base = SRGNN(hidden=8, epochs=1, progress=False, threads=1).fit(data())
    clustered = ClusteredSessions(n_clusters=2, min_cluster_prefixes=10_000, progress=False).fit(
        data(), base=base, validation=NextItemValidation(PROBE, np.array([4, 11, 0])))
    with pytest.raises(BundleError, match="cannot bundle a ClusteredSessions"):
        save_bundle(tmp_path / "c", clustered)
    bad = small_emde(readout="bayez").fit(data())
    with pytest.raises(BundleError, match="readout='bayez' is not one of"):
        save_bundle(tmp_path / "e", bad)
    with pytest.raises(BundleError, match="extra 'item_vectors'"):
        save_bundle(tmp_path / "r", rules, ITEMS, extras={"item_vectors": np.ones((3, 2), np.float32)})
    with pytest.raises(BundleError, match="item ids repeat"):
        save_bundle(tmp_path / "r", rules, IdMap(["a"] * N))
    assert not any((tmp_path / name).exists() for name in "cer")         # nothing was written


# -- seals and keys -------------------------------------------------------------------------------

def test_signed_bundles_need_the_key(tmp_path, rules, monkeypatch):
    root = tmp_path / "b"
    monkeypatch.setenv(KEY_ENV, "right key")
    version = save_bundle(root, rules, ITEMS)
    assert (version / "manifest.seal").read_text().startswith("hmac-sha256 ")
    assert load_bundle(root).manifest["seal"] == "hmac-sha256"
    monkeypatch.setenv(KEY_ENV, "wrong key")
    refused(root, "altered, or signed with another key")
    monkeypatch.delenv(KEY_ENV)
    refused(root, f"the bundle is signed .*set {KEY_ENV}")
    assert load_bundle(root, key="right key").model.n_items_ == N
    reseal(version, lambda m: m.update(seal="sha256"))           # stripped of its signature
    assert load_bundle(root).manifest["seal"] == "sha256"        # a plain seal is all a keyless reader can check
    monkeypatch.setenv(KEY_ENV, "right key")
    refused(root, f"not signed, and {KEY_ENV} is set")
    unsigned = save_bundle(tmp_path / "u", rules, ITEMS, key="")
    assert (unsigned / "manifest.seal").read_text().startswith("sha256 ")
    refused(tmp_path / "u", "not signed")


def test_unsealed_bundles_ask_to_be_saved_again(tmp_path, rules):
    version = save_bundle(tmp_path / "b", rules)
    (version / "manifest.seal").unlink()
    refused(tmp_path / "b", "manifest.seal is missing: an unsealed bundle .* save the model again")
    (version / "manifest.seal").write_text("md5 0123\n")
    refused(tmp_path / "b", "manifest.seal: not a seal")


def test_serve_refuses_hostile_bundles_with_one_line(tmp_path, emde):
    """`sketchrec serve` on the tester's bundles: exit code 2 and a one-line error, no traceback."""
    hostile = {
        "readout": lambda v: reseal(v, lambda m: m["params"].update(readout="bayez")),
        "params": lambda v: reseal(v, lambda m: m["params"].update(hidden=[32])),
        "class": lambda v: reseal(v, lambda m: m.update(model_class="TAGNN")),
        "list": lambda v: reseal(v, lambda m: [m]),
        "no-files": lambda v: reseal(v, lambda m: {k: v for k, v in m.items() if k != "files"}),
        "items": lambda v: ((v / "items.parquet").write_bytes(os.urandom(200)), reseal(v)),
        "shape": lambda v: rewrite(v, lambda a: a.update({"net.output.bias": np.zeros(3, np.float32)})),
        "prior": lambda v: (v / "manifest.json").write_text(
            (v / "manifest.json").read_text().replace('"prior": 1.0', '"prior": 9.0')),
    }
    for name, damage in hostile.items():
        damage(save_bundle(tmp_path / name, emde, ITEMS))
        result = CliRunner().invoke(app, ["serve", str(tmp_path / name)])
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (name, result.output)
        assert result.output.startswith("error:") and "Traceback" not in result.output, result.output


# -- atomic saves and leftovers --------------------------------------------------------------------

def test_resave_replaces_and_cleans_old_versions(tmp_path):
    for seed in range(3):
        save_bundle(tmp_path / "b", Popularity().fit(data(seed=seed)))
    second = Popularity().fit(data(seed=4))
    save_bundle(tmp_path / "b", second)
    versions = [p for p in (tmp_path / "b").iterdir() if p.is_dir()]
    assert len(versions) == 2
    np.testing.assert_array_equal(load_bundle(tmp_path / "b").model.score(PROBE), second.score(PROBE))


def test_kill_during_save_leaves_a_loadable_bundle(tmp_path):
    """kill -9 a process that keeps re-saving a large bundle; the bundle must always load."""
    target = tmp_path / "b"
    script = textwrap.dedent(f"""
        import numpy as np
        from sketchrec.bundle import save_bundle
        from sketchrec.models.baselines import Popularity
        model = Popularity()
        model.n_items_ = 2_000_000
        rng = np.random.default_rng(0)
        while True:
            model.counts_ = rng.random(2_000_000)
            save_bundle({str(target)!r}, model)
            print("saved", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "saved"          # one complete bundle exists
    for delay in (0.05, 0.13, 0.21):
        time.sleep(delay)
        b = load_bundle(target)                              # concurrent reads see a complete bundle
        assert len(b.model.counts_) == 2_000_000
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    b = load_bundle(target)
    assert len(b.model.counts_) == 2_000_000


def writer(root: Path) -> tuple[subprocess.Popen, Path]:
    """A process in the middle of a save: its partial version half written, then it waits."""
    script = textwrap.dedent(f"""
        import time
        from sketchrec.bundle import new_version
        tmp = new_version({str(root)!r})
        (tmp / "weights.safetensors").write_bytes(b"x" * 100_000)
        print(tmp, flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    return proc, Path(proc.stdout.readline().strip())


def age(path: Path, seconds: float) -> None:
    os.utime(path, (time.time() - seconds, time.time() - seconds))


def test_partials_of_dead_writers_are_cleaned_by_the_next_save(tmp_path, rules):
    root = tmp_path / "b"
    save_bundle(root, rules)
    proc, partial = writer(root)
    try:
        age(partial, 3600)
        save_bundle(root, rules)                             # a live writer's partial is left alone, however old
        assert partial.exists()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    save_bundle(root, rules)
    assert not partial.exists()
    proc, partial = writer(root)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    save_bundle(root, rules)                                 # changed a moment ago: kept a few seconds more
    assert partial.exists()
    age(partial, 60)
    save_bundle(root, rules)
    assert not partial.exists() and not list(root.glob("*.partial"))
    own = new_version(root)                                  # this process's own save in progress
    age(own, 3600)
    save_bundle(root, rules)
    assert own.exists()
    abort_version(own)
    assert not own.exists() and load_bundle(root).model.n_items_ == N


def test_bundle_gc_removes_stale_partials_and_old_versions(tmp_path, rules):
    root = tmp_path / "b"
    for _ in range(3):
        save_bundle(root, rules, keep_versions=3)
    proc, partial = writer(root)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert collect_garbage(root, keep_versions=3) == []     # dead, but only just
    result = CliRunner().invoke(app, ["bundle", "gc", str(root), "--min-age", "0", "--keep", "1"])
    assert result.exit_code == 0, result.output
    output = result.output.replace("\n", "")
    assert partial.name in output and "3 removed" in output
    assert [p.name for p in root.iterdir() if p.is_dir()] == [current(root).name]
    assert load_bundle(root).model.n_items_ == N
    result = CliRunner().invoke(app, ["bundle", "gc", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "not a sketchrec bundle" in result.output


def test_weights_are_a_shared_copy_on_write_map(tmp_path, emde):
    """load_bundle maps weights.safetensors: the EMDE network's tensors are views of the map (no
    copy per process), the arrays are exactly what safetensors reads, and writing to them changes
    neither the file nor the next load."""
    import torch

    from sketchrec.bundle import map_safetensors
    version = save_bundle(tmp_path / "b", emde)
    weights = version / "weights.safetensors"
    mapped, read = map_safetensors(weights), load_file(str(weights))
    assert mapped.keys() == read.keys()
    for name in read:
        assert mapped[name].dtype == read[name].dtype and np.array_equal(mapped[name], read[name])
    model = load_bundle(tmp_path / "b").model
    w = model.net_.output.weight
    maps = [m for m in open(f"/proc/{os.getpid()}/maps") if m.rstrip().endswith(str(weights))]
    spans = [tuple(int(x, 16) for x in m.split()[0].split("-")) for m in maps]
    assert any(a <= w.data_ptr() < b for a, b in spans), "the network's weights are not in the file's map"
    before = weights.read_bytes()
    with torch.no_grad():
        w.add_(1.0)
    assert weights.read_bytes() == before
    again = load_bundle(tmp_path / "b").model
    assert not torch.equal(again.net_.output.weight, w)
    assert load_bundle(tmp_path / "b", mmap=False).model.net_.output.weight.data_ptr() != again.net_.output.weight.data_ptr()


@pytest.mark.parametrize("damage, match", [
    (lambda raw, n: (10 ** 12).to_bytes(8, "little") + raw[8:], "header length"),
    (lambda raw, n: raw[:8] + b"[" + raw[9:], "not a readable"),
    (lambda raw, n: raw[:-4], "end at byte|offsets"),
    (lambda raw, n: raw + b"\0" * 4, "end at byte"),
    (lambda raw, n: raw.replace(b'"F32"', b'"X32"', 1), "bad dtype"),
])
def test_mapped_weights_refuse_bad_layouts(tmp_path, damage, match):
    from sketchrec.bundle import map_safetensors
    path = tmp_path / "w.safetensors"
    save_file({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.arange(4, dtype=np.int64)}, str(path))
    raw = path.read_bytes()
    path.write_bytes(damage(raw, int.from_bytes(raw[:8], "little")))
    with pytest.raises(BundleError, match=match):
        map_safetensors(path)


def test_mapped_weights_refuse_overlapping_tensors(tmp_path):
    from sketchrec.bundle import map_safetensors
    header = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 12)
    with pytest.raises(BundleError, match="overlap"):
        map_safetensors(path)
