"""Model bundles: safetensors + manifest with checksums, atomic saves, refusal of bad bundles."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import sketchrec
from sketchrec.bundle import BundleError, load_bundle, save_bundle
from sketchrec.data.idmap import IdMap
from sketchrec.data.sessions import Sessions
from sketchrec.models import SRGNN
from sketchrec.models.baselines import EASE, VSKNN, ItemKNN, Popularity, SequentialRules


def data(n_items=30, n=300, seed=0):
    starts = np.random.default_rng(seed).integers(0, n_items, n)
    return Sessions.from_lists(((starts[:, None] + np.arange(5)) % n_items).tolist(), n_items=n_items)


PROBE = Sessions.from_lists([[1, 2, 3], [10], [28, 29]], n_items=30)


def small_emde():
    from sketchrec.models.emde import EMDE
    return EMDE(inputs=("all:cleora:1", "last:cleora:0"), outputs=("cleora:1",), n_sketches=4, n_bits=5, hidden=32,
                epochs=1, batch_size=64, progress=False, threads=1)


@pytest.mark.parametrize("make", [Popularity, ItemKNN, EASE, SequentialRules, VSKNN, small_emde,
                                  lambda: SRGNN(hidden=8, epochs=1, progress=False, threads=1)])
def test_round_trip_scores_equal(tmp_path, make):
    model = make().fit(data())
    items = IdMap([f"sku-{i}" for i in range(30)], "item")
    save_bundle(tmp_path / "b", model, items, metrics={"HR@20": 0.5}, config={"dataset": "toy"})
    b = load_bundle(tmp_path / "b")
    np.testing.assert_allclose(b.model.score(PROBE), model.score(PROBE), rtol=1e-6, atol=1e-6)
    assert b.items.keys.to_pylist() == items.keys.to_pylist()
    assert b.metrics == {"HR@20": 0.5} and b.config == {"dataset": "toy"}
    assert b.manifest["sketchrec_version"] == sketchrec.__version__
    names = {p.name for p in b.path.iterdir()}
    assert "weights.safetensors" in names and not any(n.endswith((".pkl", ".pickle", ".npz")) for n in names)


def test_tampered_truncated_and_incompatible_bundles_are_refused(tmp_path):
    model = Popularity().fit(data())
    version = save_bundle(tmp_path / "b", model)
    weights = version / "weights.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(tmp_path / "b")
    weights.write_bytes(bytes(raw[:-4]))
    with pytest.raises(BundleError, match="truncated"):
        load_bundle(tmp_path / "b")
    version = save_bundle(tmp_path / "c", model)
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["sketchrec_version"] = "99.0.0"
    (version / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="incompatible"):
        load_bundle(tmp_path / "c")
    manifest["sketchrec_version"], manifest["format"] = sketchrec.__version__, 7
    (version / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format"):
        load_bundle(tmp_path / "c")
    with pytest.raises(BundleError, match="not a sketchrec bundle"):
        load_bundle(tmp_path / "nothing")
    with pytest.raises(BundleError, match="item ids"):
        save_bundle(tmp_path / "d", model, IdMap(["a", "b"]))


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
