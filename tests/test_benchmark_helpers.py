"""The plumbing benchmark scripts share (sketchrec.eval.report) and the library pieces moved out of
them: augmentation run records (sketchrec.eval.runs), ANN library sweeps (sketchrec.eval.ann) and
training-step timing (sketchrec.eval.batch_profiles)."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from sketchrec.eval import report, runs


def test_timed_read_json_and_command(tmp_path):
    out, seconds = report.timed(sorted, [3, 1, 2])
    assert out == [1, 2, 3] and 0 <= seconds < 5
    assert report.read_json(tmp_path / "missing.json", {"x": 1}) == {"x": 1}
    (tmp_path / "r.json").write_text(json.dumps({"a": [1]}))
    assert report.read_json(tmp_path / "r.json") == {"a": [1]}
    assert report.command("emde_topk", datasets=["a", "b"], epochs=None, bf16=False, max_train_sessions=0) == \
        "`python benchmarks/emde_topk.py --datasets a b --max-train-sessions 0`"
    assert report.command("x", fast=True, lr=1e-4) == "`python benchmarks/x.py --fast --lr 0.0001`"


def test_module_versions_and_code_version(tmp_path):
    v = report.module_versions("numpy", "surely_not_a_module_xyz")
    assert v["numpy"] == np.__version__ and v["surely_not_a_module_xyz"] is None
    (tmp_path / "a.py").write_text("x = 1\n")
    before = report.code_version(tmp_path, ["*.py"])
    assert before == report.code_version(tmp_path, ["*.py"]) and len(before) == 12
    (tmp_path / "a.py").write_text("x = 2\n")
    assert report.code_version(tmp_path, ["*.py"]) != before


def test_earlier_run_reuses_only_the_same_run():
    old = {"args": {"epochs": 3, "batches": 5}, "meta": {"n": 1}, "code": "abc", "when": "then", "HR@20": 0.5}
    same = report.earlier_run(old, {"epochs": 3, "batches": 9}, {"n": 1}, "abc", ignore=("batches",))
    assert same["reused"] and same["when"] == "then" and same["args"] == {"epochs": 3, "batches": 9}
    assert report.earlier_run(old, {"epochs": 4, "batches": 5}, {"n": 1}, "abc") is None       # other arguments
    assert report.earlier_run(old, {"epochs": 3, "batches": 5}, {"n": 2}, "abc") is None       # other data
    assert report.earlier_run(old, {"epochs": 3, "batches": 5}, {"n": 1}, "new") is None       # other code
    assert report.earlier_run(None, {}, {}) is None


def test_seeds_mean_std_and_write_page_echo(tmp_path, capsys):
    s = report.seeds_mean_std([{"HR": 0.5, "MRR": 0.1}, {"HR": 0.7, "MRR": 0.1}], ["HR"])
    assert list(s) == ["HR"] and s["HR"][0] == pytest.approx(0.6) and s["HR"][1] == pytest.approx(0.1414, abs=1e-4)
    assert report.seeds_mean_std([{"HR": 0.5}], ["HR"]) == {"HR": (0.5, 0.0)}
    report.write_page(tmp_path / "p.md", "# page\n", data={"a": 1}, echo=True)
    assert capsys.readouterr().out == "# page\n"
    assert (tmp_path / "p.md").read_text() == "# page\n" and json.loads((tmp_path / "p.json").read_text()) == {"a": 1}


def test_recipe_settings_and_refit_epochs(tmp_path):
    thesis = {"model": {"l2": 1e-5, "patience": 5, "epochs": 20}, "augmented": {"l2": 1e-6, "patience": 4}}
    assert runs.recipe_settings(thesis, "base", {"epochs": None, "patience": 7}) == {"l2": 1e-5, "patience": 7,
                                                                                     "epochs": 20}
    assert runs.recipe_settings(thesis, "i2i", {"epochs": 3}) == {"l2": 1e-6, "patience": 4, "epochs": 3}
    assert runs.refit_epochs(tmp_path, ["a", "b"]) is None
    (tmp_path / "b.json").write_text(json.dumps({"best_epoch": 6}))
    assert runs.refit_epochs(tmp_path, ["a", "b"]) == (6, "b.json")


def test_run_result_and_saved_ranks(tmp_path):
    model = types.SimpleNamespace(best_epoch_=2, history_=[{"seconds": 1.0}], bf16_=False, bf16_attention_=False,
                                  get_params=lambda: {"hidden": 100})
    aug = types.SimpleNamespace(name="Blur", blur_mode="cell", blur=True, p_blur=0.5, blur_mean=0.01, blur_std=0.01,
                                p_edge=0.5, n_clusters=8, gmm_init="labels")
    fields = {"protocol": "refit", "epochs_from": "x.json", "model": "srgnn", "variant": "blur", "source": "model",
              "seed": 0, "dataset": "toy", "recipe": "ours", "recipe_overrides": {}}
    ranks = np.array([1, 3, 30, 2])
    r = runs.run_result(fields, model, aug, ranks, fit_s=1.0, score_s=0.5, source_s=0.0)
    assert list(r)[:10] == [*fields, "blur_mode"] and r["source"] is None and r["blur_mode"] == "cell"
    assert r["test"]["HR@20"] == 0.75 and r["n_test"] == 4 and r["augmentation"]["p_edge"] == 0.5
    base = runs.run_result({**fields, "variant": "base"}, model, None, ranks, fit_s=1.0, score_s=0.5, source_s=0.0)
    assert base["source"] is None and base["augmentation"] is None and base["blur_mode"] is None
    json.dumps(r)
    runs.save_ranks(tmp_path / "r.ranks.npz", ranks)
    loaded = np.load(tmp_path / "r.ranks.npz")["ranks"]
    assert loaded.dtype == np.uint16 and loaded.tolist() == ranks.tolist()


def test_ann_recall_and_faiss_sweep(tmp_path):
    from sketchrec.eval import ann
    assert ann.recall(np.array([[0, 1], [2, 3]]), np.array([[1, 0], [2, 5]])) == 0.75
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    base = rng.normal(size=(500, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    build_s, size, found = ann.hnsw_sweep("faiss", base, base[:20], 5, [8, 64], 1, tmp_path)
    assert build_s >= 0 and size > base.nbytes and [ef for ef, _, _ in found] == [8, 64]
    assert found[-1][2].dtype == np.int64 and (found[-1][2][:, 0] == np.arange(20)).all()   # each finds itself
    with pytest.raises(ImportError):
        ann.hnsw_sweep("surely_not_a_module_xyz", base, base[:2], 5, [8], 1, tmp_path)


def test_network_step_rows():
    torch = pytest.importorskip("torch")
    from sketchrec.eval.batch_profiles import PRECISIONS, network_step_rows
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    rows = network_step_rows("toy", torch.nn.Linear(4, 1), lambda net: net(x),
                             lambda out: ((out.float() - y) ** 2).mean())
    assert [r["precision"] for r in rows] == [p for p, _ in PRECISIONS] and all(r["ms"] > 0 for r in rows)


def test_cached_json_and_core_pins(tmp_path):
    path = tmp_path / "seed0.json"
    assert report.cached_json(path, "k") is None
    path.write_text(json.dumps({"params": "k", "HR@20": 0.5}))
    assert report.cached_json(path, "k") == {"params": "k", "HR@20": 0.5}
    assert report.cached_json(path, "other settings") is None
    server, load, note = report.core_pins()
    assert (server == load == []) == ("share" in note)
    assert not server or (server[-1], load[-1]) == ("0", "1")


def test_page_head():
    head = report.page_head("Title", report.command("x", rows=5), "; total 3 s")
    lines = head.split("\n")
    assert lines[0] == "# Title" and lines[1] == "" and lines[2].endswith("; total 3 s")
    assert lines[4] == "Command: `python benchmarks/x.py --rows 5`" and head.endswith("`\n\n")
