"""Library functions that benchmark scripts drive (issue 29): result-file tables, the serve
load-test harness, and their helpers."""

from __future__ import annotations

import json

import numpy as np

from sketchrec.eval import runs
from sketchrec.serve import loadtest


def test_run_names_and_keys():
    assert runs.run_name("srgnn", "base", "model", 0, "diginetica") == "diginetica-srgnn-base-s0"
    assert runs.run_name("tagnn", "i2i", "cleora", 2, "dg", "refit", "thesis", "cell") == \
        "dg-tagnn-i2i-cleora-thesis-cellblur-s2-refit"
    old = {"model": "srgnn", "variant": "blur", "source": None}         # before recipes and blur modes
    assert runs.run_key(old) == ("srgnn", "validation", "ours", "blur", None, "session")
    assert runs.variant_label("i2i", "cell") == "i2i+Blur (per cell)"
    assert runs.variant_label("base", None) == "Base"


def _result(variant, seed, hr, source=None):
    return {"model": "srgnn", "protocol": "validation", "recipe": "ours", "variant": variant, "source": source,
            "seed": seed, "dataset": "toy", "blur_mode": None if variant == "base" else "session",
            "test": {"HR@20": hr, "MRR@20": hr / 3, "HR@10": hr / 2, "MRR@10": hr / 4},
            "history": [{"seconds": 2.0}], "best_epoch": 1, "params": {"threads": 1}}


def test_augmentation_report_pairs_variants_with_base(tmp_path):
    results = tmp_path / "runs"
    results.mkdir()
    for seed in (0, 1):
        for variant, hr in (("base", 0.50 + seed / 100), ("blur", 0.52 + seed / 50)):
            r = _result(variant, seed, hr)
            name = runs.run_name("srgnn", variant, "", seed, "toy")
            (results / f"{name}.json").write_text(json.dumps(r))
            ranks = np.arange(1, 41) if variant == "base" else np.arange(40, 0, -1)
            np.savez_compressed(results / f"{name}.ranks.npz", ranks=ranks)
    page = runs.augmentation_report(results, tmp_path)
    assert "## toy" in page
    blur = next(line for line in page.split("\n") if "| Blur (per session) |" in line)
    assert "| 2 | 53.00 ± 1.41 |" in blur and "HR +2.50 ± 0.71" in blur and "McNemar" in blur
    assert not list(tmp_path.glob("*.png"))         # validation runs only: no refit figure


def test_summarize_locust_entry():
    entry = {"response_times": {"10": 98, "50": 1, "200": 1}, "num_requests": 100, "num_failures": 2,
             "start_time": 0.0, "last_request_timestamp": 10.0}
    s = loadtest.summarize(entry, per_request=5)
    assert s["p50_ms"] == 10 and s["p99_ms"] == 50 and s["requests_per_s"] == 10
    assert s["users_per_s"] == 98 * 5 / 10 and s["errors"] == 2


def test_write_payloads_and_free_port(tmp_path):
    prefixes = [[f"i{j}" for j in range(i % 5 + 1)] for i in range(300)]
    files = loadtest.write_payloads(tmp_path, prefixes, n_items=1000, k=7, batches=[10, 100])
    assert files == {10: ("batch10.jsonl", 10), 100: ("batch100.jsonl", 100)}
    first = json.loads((tmp_path / "batch10.jsonl").read_bytes().split(b"\n")[0])
    assert len(first["sessions"]) == 10 and first["k"] == 7
    assert json.loads((tmp_path / "hostile_huge_k").read_text())["k"] == 10 ** 6
    assert (tmp_path / "hostile_nan").read_bytes().endswith(b"NaN}")
    assert 0 < loadtest.free_port() < 65536


def test_image_tensor_and_shift_flip():
    import torch

    from sketchrec.retrieval.transforms import image_tensor, shift_flip
    x = image_tensor(np.random.default_rng(0).integers(0, 256, (4, 112, 92), dtype=np.uint8))
    assert x.shape == (4, 1, 56, 46) and abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-4
    batch = torch.arange(2 * 5 * 5, dtype=torch.float32).view(2, 1, 5, 5)
    out = shift_flip(batch, pad=2)
    assert out.shape == batch.shape
    assert shift_flip(torch.ones(3, 1, 4, 4)).eq(1).all()       # replicate padding keeps a constant image


def test_retrieval_tables():
    from sketchrec.retrieval.tables import index_cost_lines, index_costs, method_lines, retrieval_modes
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 6)
    emb = rng.normal(size=(24, 8)).astype(np.float32) + 5 * np.eye(8, dtype=np.float32)[labels]
    query = np.tile([True, False, False, False, False, False], 4)
    rows = retrieval_modes((1, 5), emb, labels, query)
    assert set(rows) == {"instance", "centroid"} and rows["centroid"]["gallery_rows"] == 4
    table = method_lines((1, 5), "features", {"toy": [rows, rows]})
    assert table[0].startswith("| features | mode | mAP | Acc@1 | Acc@5 |") and "toy (2 seeds)" in table[2]
    costs = index_costs(emb[~query], labels[~query], emb[query])
    assert [(c["mode"], c["backend"]) for c in costs] == [("instance", "exact"), ("instance", "hnsw"),
                                                          ("centroid", "exact"), ("centroid", "hnsw")]
    lines = index_cost_lines(costs)
    assert len(lines) == 6 and lines[2].endswith("| — |") and "| centroid | exact | 4 |" in lines[4]


def test_crossmodal_run_helpers():
    import argparse

    from sketchrec.retrieval import crossmodal_runs as cm
    config = {"n": 16, "k": 32, "d": 32, "temperature": 0.3, "lr": 2e-3}
    assert cm.describe(config) == "N 16 × K 32, D 32, τ 0.3, lr 0.002"
    assert cm.describe_base({}) == "a-priori setting kept" and cm.describe_base({"dim": 1024}) == "dim 1024"
    assert cm.best_config([]) is None
    assert cm.best_config([{"config": {"a": 1}, "valid_rsum": 1.0}, {"config": {"a": 2}, "valid_rsum": 2.0}]) == {"a": 2}
    test = {f"{d}_{m}": 0.5 for d, m in cm.TEST_METRICS} | {"rsum": 3.0}
    rows = [{"pooling": "mean", "seed": s, "test": test, "epoch_s": 1.0, "inference_s": 0.1, "parameters": 10,
             "best_epoch": 2, "history": [{"valid_rsum": 2.0}]} for s in (0, 1)]
    settings = argparse.Namespace(threads=1, seeds=[0, 1], epochs=2, region_pca=0, tune=False, tune_baselines=False,
                                  dim=8, n=4, k=4, d=4, temperature=1.0, batch_size=2, lr=1e-3)
    page = cm.report(rows, settings, [7, 1, 2], [])
    assert "| mean pooling | 2 | 50.0 ± 0.0 |" in page and "7 train / 1 validation / 2 test" in page


def test_graph_task_helpers():
    from sketchrec.eval import graph_tasks as gt
    rng = np.random.default_rng(0)
    assert gt.mean_abs_cosine(np.eye(4, 8), rows=4) == 0.0
    edges = np.array([[0, 1], [1, 2], [2, 0], [3, 4]])
    assert gt.isolated_nodes_note(edges, 7) == "2 nodes without training edges"
    vectors = gt.cleora_by_iterations(edges, 7, 8, [1, 3])
    assert set(vectors) == {1, 3} and vectors[1].shape == (7, 8)
    labels = rng.integers(0, 2, 100)
    tr, te = gt.random_split(labels, seed=0)
    assert len(tr) == 80 and len(te) == 20 and not set(tr) & set(te)
    fit, va = gt.validation_split(labels, tr, 0.2, seed=0)
    assert len(fit) == 64 and len(va) == 16 and set(fit) | set(va) == set(tr)
    good = np.eye(2)[labels] + 0.01 * rng.normal(size=(100, 2))
    assert gt.choose_on_validation({1: rng.normal(size=(100, 2)), 2: good}, labels, fit, va)[0] == 2


def test_serve_load_report():
    import argparse

    from sketchrec.serve.loadtest import load_report
    r = {"requests": 10, "errors": 0, "p50_ms": 5.0, "p99_ms": 9.0, "requests_per_s": 2.0, "users_per_s": 20_000.0}
    args = argparse.Namespace(seconds=20, hostile_seconds=60, hostile_users=8, k=20, bundle=None, workers=2)
    page = load_report(args, [("single session, 1 user", r, 100.0, 101.0)], {"warm": 100.0, "after hostile + 5 s idle": 102.0},
                       {"/x": r}, {"/x": {"413": 10}}, r, (1000, 1100), 200, 3.0, "EMDE", 50, "pinned", 60.0,
                       [("batches", r, [{"cpu": 0.5, "rss": 1.0, "uss": 1.0, "weights_rss": 1.0, "weights_pss": 0.5}])],
                       {"whole request in-process, float32": 100.0}, {"float32": (50.0, 20.0), "int8": (49.0, 19.0)})
    assert "Command: `python benchmarks/serve_load.py`" in page and "| /x | 10 | 413: 10 | 0 | 5 | 9 |" in page
    assert "target is met." in page and "+2 MB against after the warm-up" in page and not page.endswith("\n")


def test_srgnn_profiling_train_step():
    import torch

    from sketchrec.data.sessions import Sessions
    from sketchrec.models.srgnn import GatedGraphNet, session_graphs
    from sketchrec.models.srgnn.profiling import VARIANTS, PlainNet, train_step
    assert len(VARIANTS) == 4
    prefixes = Sessions(np.array([0, 2, 5]), np.array([1, 2, 3, 1, 4], dtype=np.int32), 6)
    graphs = session_graphs(prefixes).tensors()
    targets = torch.tensor([3, 5])
    for cls, fused in ((PlainNet, False), (GatedGraphNet, True)):
        net = cls(6, 8, 1)
        opt = torch.optim.Adam(net.parameters())
        losses = []
        assert train_step(net, opt, graphs, targets, bf16=False, fused=fused, losses=losses) > 0 and len(losses) == 1


def test_attribution_deletion_test(tmp_path):
    from sketchrec.data.sessions import Sessions
    from sketchrec.eval.attribution import deletion_test, plot_attribution, rank_of, unseen_scores

    class Model:
        def score(self, histories, without=()):
            return np.tile(np.arange(5, dtype=np.float64), (len(histories), 1)) * (0 if without else 1)

    hist = Sessions(np.array([0, 1, 2]), np.array([4, 0], dtype=np.int32), 5)
    full = unseen_scores(Model(), hist)
    assert np.isneginf(full[0, 4]) and np.isneginf(full[1, 0]) and full[0].argmax() == 3
    assert list(rank_of(full, np.array([3, 1]))) == [1, 4]
    occluded = {"a": np.tile([0.0, 0, 0, 0, 9], (2, 1)), "b": full}
    out = deletion_test(occluded, ["a", "b"], np.array([0, 1]), np.array([3, 4]))
    assert out == {"changed": 0.5, "median_rank": 3.0, "out_of_top10": 0.0}
    summary = {"share": {"a": 0.6, "b": 0.4}, "dominant": {"a": 1.0, "b": 0.0},
               "deletion": {arm: out for arm in ("top-attributed", "random", "least-attributed")}}
    plot_attribution(summary, tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 0


def test_corrupt_edges_and_events_report():
    from sketchrec.robustness.events import corrupt_edges, events_report_lines
    edges = np.arange(200).reshape(100, 2)
    assert corrupt_edges(edges, "clean", 0.3, 10, np.random.default_rng(0)) is edges
    dropped = corrupt_edges(edges, "drop", 0.3, 10, np.random.default_rng(0))
    assert 50 < len(dropped) < 90 and set(map(tuple, dropped)) <= set(map(tuple, edges))
    added = corrupt_edges(edges, "add", 0.3, 10, np.random.default_rng(0))
    assert len(added) == 130 and added[100:].max() < 10
    results = {"graph": [{"corruption": "clean", "severity": 0.0, "MRR": 0.1, "HR@10": 0.2},
                         {"corruption": "drop", "severity": 0.1, "MRR": 0.08, "HR@10": 0.2}],
               "text": [{"aspect": "qwerty", "jaccard@10": 0.5}]}
    lines = events_report_lines(results, 0.25)
    assert "| drop | 10% | 8.00 | -2.00 | 20.00 | +0.00 |" in lines and "| qwerty | 0.500 |" in lines


def test_genre_profiles():
    from sketchrec.data.sessions import Sessions
    from sketchrec.eval.profiles import fit_predict, genre_shares, labels_of, scores
    genres = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    rows = Sessions(np.array([0, 2, 3]), np.array([0, 2, 1], dtype=np.int32), 3)
    assert labels_of(rows, genres).tolist() == [[1, 1], [0, 1]]
    assert genre_shares(rows, genres).tolist() == [[1.0, 0.5], [0.0, 1.0]]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = np.stack([(x[:, 0] > 0), (x[:, 1] > 0), np.zeros(200, bool)], 1).astype(np.int64)
    proba, c, _, active = fit_predict(x[:150], y[:150], x[150:], seed=0)
    assert proba.shape == (50, 3) and list(active) == [True, True, False] and c in (0.1, 1.0, 10.0)
    assert scores(y[150:], proba)["mAP"] > 0.8


def test_edge_files_and_copy_bandwidth(tmp_path):
    from sketchrec.eval.report import copy_bandwidth_gbs
    from sketchrec.graph.edge_files import write_powerlaw_tsv
    write_powerlaw_tsv(tmp_path / "g.tsv", nodes=100, edges=500, seed=0)
    lines = (tmp_path / "g.tsv").read_text().splitlines()
    assert lines[0] == "a\tb" and len(lines) == 501
    a, b = lines[1].split("\t")
    assert a.startswith("u") and b.startswith("p") and int(a[1:]) < 50 and int(b[1:]) < 50
    assert copy_bandwidth_gbs(size_mb=4, repeats=2) > 0
