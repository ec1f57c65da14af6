"""Library functions moved out of the benchmark scripts in the second round (issue 29): the
centroid-retrieval experiment and page, EMDE top-k epoch + prior selection, the EMDE sessions and
top-k page sections, the SR-GNN vs RecBole page, the Cleora comparison rows and the SR-GNN
variant timings."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest


# -- retrieval.tables: the instance vs centroid experiment ------------------------------------------
def _modes(map_=0.5):
    row = {"mAP": map_, "gallery_rows": 3, **{f"Acc@{k}": 0.25 for k in (1, 5)}}
    return {"instance": dict(row), "centroid": dict(row, gallery_rows=2)}


def test_ctl_methods_and_legacy_rows(tmp_path):
    from sketchrec.retrieval.tables import ctl_methods, load_results, rename_legacy
    names = [name for name, _ in ctl_methods(["squared", "euclidean"])]
    assert names == ["base", "base+CTL (squared)", "base+CTL (euclidean)"]
    weights = dict(ctl_methods(["squared"]))
    assert weights["base"].ctl == 0.0 and weights["base+CTL (squared)"].ctl == 1.0
    assert weights["base+CTL (squared)"].ctl_distance == "squared"
    assert rename_legacy({"base": 1, "base+CTL": 2}) == {"base": 1, "base+CTL (euclidean)": 2}
    assert load_results(tmp_path / "missing.json") == {}
    saved = [{"dataset": "orl-faces", "methods": {"base+CTL": [1]}},
             {"dataset": "fashion-images", "galleries": {"g": {"held_out": {"base+CTL": [2], "train_groups": 3}},
                                                         "h": {}}}]
    (tmp_path / "r.json").write_text(json.dumps(saved))
    got = load_results(tmp_path / "r.json")
    assert list(got) == ["orl-faces", "fashion-images"]
    assert got["orl-faces"]["methods"] == {"base+CTL (euclidean)": [1]}
    assert got["fashion-images"]["galleries"]["g"]["held_out"] == {"base+CTL (euclidean)": [2], "train_groups": 3}


def test_reusable_rows_only_from_a_result_with_the_same_settings():
    from sketchrec.retrieval.tables import reusable_rows
    settings = {"seeds": [0, 1, 2], "epochs": 40}
    saved = {"settings": settings, "methods": {"pixels": [0], "base": [1], "base+CTL (squared)": [2]}}
    assert reusable_rows(saved, settings) == {"base": [1], "base+CTL (squared)": [2]}
    assert reusable_rows(saved, {"seeds": [0, 1, 2], "epochs": 25}) == {}
    assert reusable_rows(saved, {"seeds": [0], "epochs": 40}) == {}
    assert reusable_rows({"methods": {"base": [1]}}, settings) == {}          # saved before settings were
    assert reusable_rows(None, settings) == {}
    fashion = {"settings": settings, "galleries": {"colour+articleType": {"held_out": {
        "train_groups": 3, "pretrained": {}, "base": [4]}}}}
    assert reusable_rows(fashion, settings) == {"base": [4]}


def test_trained_runs_one_row_per_seed():
    from sketchrec.retrieval.ctl import LossWeights, MLPHead
    from sketchrec.retrieval.tables import trained_runs
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(8), 6)
    x = (np.eye(8)[y] + 0.1 * rng.normal(size=(len(y), 8))).astype(np.float32)
    query = np.tile([True, False, False, False, False, False], 8)
    runs = trained_runs((1, 5), lambda: MLPHead(8, 16, 4), LossWeights(ctl=1.0), [0, 1], (x, y), (x, y), query,
                        epochs=1, p=4, m=2, threads=1)
    assert len(runs) == 2
    for row, trainer in runs:
        assert set(row) == {"instance", "centroid", "train_s"} and row["train_s"] > 0
        assert row["centroid"]["gallery_rows"] == 8 and 0 <= row["instance"]["mAP"] <= 1
        assert trainer.embed(x).shape == (len(y), 4)


def test_centroid_report_sections():
    from sketchrec.retrieval.tables import centroid_report
    instance = {"dataset": "orl-faces", "images": 400, "identities": 40, "train_identities": 20,
                "test_identities": 20, "queries": 40, "gallery": 160, "image_shape": [1, 56, 46],
                "methods": {"pixels": [_modes()], "base": [dict(_modes(), train_s=2.0)] * 2}}
    costs = [{"mode": "instance", "backend": "exact", "rows": 3, "disk_bytes": 2**20, "build_s": 0.1,
              "query_s": 0.2, "queries": 5}]
    fashion = {"dataset": "fashion-images", "images": 10, "galleries": {"articleType": {
        "groups": 2, "images": 10, "queries": 4, "pretrained": _modes(), "costs": costs,
        "held_out": {"train_groups": 1, "test_groups": 1, "pretrained": _modes(), "base+CTL (squared)": [_modes()]}}}}
    page = centroid_report([fashion, instance], (1, 5), 3, "`python -m benchmarks.centroid_retrieval`")
    lines = page.splitlines()
    assert lines[0].startswith("# Instance vs centroid retrieval") and "3 threads" in lines[2]
    assert lines[2].endswith("Command: `python -m benchmarks.centroid_retrieval`.")
    # instance sets first whatever the order given, then fashion
    assert page.index("## orl-faces") < page.index("## Fashion product photos")
    assert "400 images of 40 identities (56×46 px); trained on 20, tested on 20: 40 queries, 160 gallery images." in page
    assert "| base (2 seeds) | instance | 50.0 ± 0.0 | 25.0 ± 0.0 | 25.0 ± 0.0 | 3 | 2.0 ± 0.0 |" in page
    assert "Trained MLP head (1280 → 1024 → 256) on 1 groups, tested on the other 1:" in page
    assert "| base+CTL (squared) (1 seed) | centroid |" in page
    assert "| instance | exact | 3 | 1.00 MiB |" in page and lines[-1].startswith("Peak RSS: ")


# -- eval.protocols: epochs, then the readout prior ----------------------------------------------
class _PriorModel:
    """Scores item `best` highest once the prior is 2.0; keeps epoch 2 of 3 on validation."""

    def __init__(self, epochs, n_items=5, best=3):
        self.epochs, self.n_items, self.best, self.prior, self._readout = epochs, n_items, best, 1.0, "cached"

    def fit(self, data, validation=None):
        self.history_ = [{"epoch": e + 1, **validation(self)} for e in range(self.epochs)]
        self.best_epoch_ = 2
        return self

    def score(self, batch):
        scores = np.tile(np.arange(self.n_items, 0, -1, dtype=np.float32), (len(batch), 1))
        if self.prior == 2.0:
            scores[:, self.best] = 100.0
        return scores


def test_select_epochs_then_prior():
    from sketchrec.data.sessions import Sessions
    from sketchrec.eval.protocols import select_epochs_then_prior
    inputs = Sessions(np.array([0, 1, 2]), np.array([0, 1], dtype=np.int32), 5)
    targets = Sessions(np.array([0, 1, 2]), np.array([3, 3], dtype=np.int32), 5)
    made = []

    def make(epochs):
        made.append(epochs)
        return _PriorModel(epochs)

    chosen, prior, ndcg = select_epochs_then_prior(make, None, inputs, targets, inputs, max_epochs=3,
                                                   priors=(1.0, 2.0, 4.0), k=2)
    assert made == [3] and chosen.epochs == 2 and len(chosen.history) == 3 and chosen.model is None
    assert prior == 2.0 and ndcg == pytest.approx(1.0)
    assert chosen.probe.prior == 4.0 and chosen.probe._readout is None     # the last prior tried stays set
    _, prior, ndcg = select_epochs_then_prior(make, None, inputs, targets, inputs, max_epochs=3, priors=(1.0, 4.0), k=2)
    assert prior == 1.0 and ndcg < 1.0                                       # a tie goes to the first


# -- eval.report: page sections ------------------------------------------------------------------
def test_session_run_sections():
    from sketchrec.eval.report import session_run_sections
    metrics = ["HR@20", "MRR@20"]
    runs = [{"seed": s, "metrics": {"HR@20": 0.5 + s / 10, "MRR@20": 0.2}, "fit_s": 10.0, "score_s": 2.0,
             "epoch_s": [4.0, 6.0], "n_pairs": 100, "peak_rss_mib": 1000.0 + s} for s in (0, 1)]
    results = {"dg": {"baselines": {"sknn": {"metrics": {"HR@20": 0.4, "MRR@20": 0.1}, "fit_s": 1.0, "score_s": 4.0,
                                             "params": {"neighbours": 5}}},
                      "emde": {"epochs": 3, "validation": [{"MRR@20": 0.1}, {"MRR@20": 0.125}], "runs": runs}}}
    part, = session_run_sections(results, metrics)
    lines = part.splitlines()
    assert lines[0] == "## dg" and lines[2] == "| model | HR@20 | MRR@20 | fit s | score s | prefixes/s | settings |"
    assert lines[4] == "| sknn | 40.00 | 10.00 | 1.0 | 4.0 | 25 | neighbours=5 |"
    assert lines[5].startswith("| **EMDE** | 55.00 ± 7.07 | 20.00 ± 0.00 | 10 | 2.0 | 50 | epochs=3 (validation), seeds [0, 1]")
    assert lines[-1] == ("EMDE: 5 s per training epoch; peak RSS 1,001 MiB; validation MRR@20 by epoch: "
                         "10.00 → 12.50.")


def test_topk_sections():
    from sketchrec.eval.report import topk_sections
    results = {"ml": {"ease": {"metrics": {"NDCG@5": (0.3, 0.01)}, "users": 9, "fit_s": 1.23, "score_s": 0.456,
                               "chosen": {}},
                      "EMDE": {"metrics": {"NDCG@5": (0.2, 0.0)}, "users": 9, "fit_s": 2.0, "score_s": 1.0,
                               "chosen": {"epochs": 2, "prior": 4.0}}}}
    part, = topk_sections(results, ["NDCG@5"])
    assert part.endswith("\n") and part.startswith("## ml\n\n| model | NDCG@5 | users |")
    assert "| ease | 30.00 ± 1.00 | 9 | 1.2 | 0.46 | - |" in part
    assert "| EMDE | 20.00 ± 0.00 | 9 | 2.0 | 1.00 | epochs=2, prior=4.0 |" in part


# -- eval.runs: SR-GNN vs RecBole ----------------------------------------------------------------
def test_recbole_page():
    from sketchrec.eval.runs import recbole_page
    check = {"n_items": 7, "n_train": 250, "n_test": 5}
    speed = {"ours": {"s_per_batch": 0.01, "batches": 10, "peak_rss_mb": 100.0, "breakdown": {"graphs_s": 0.02}},
             "ours_bf16": {"s_per_batch": 0.005, "batches": 10, "peak_rss_mb": 100.0},
             "recbole": {"s_per_batch": 0.04, "batches": 10, "peak_rss_mb": 900.0, "recbole": "1.2.1",
                         "torch": "2.x", "check": check, "breakdown": {"get_slice_s": 0.1}},
             "recbole_anomaly_off": {"s_per_batch": 0.02, "batches": 10, "peak_rss_mb": 900.0}}
    quality = {k: {"epochs": 1, "pairs": 250, "fit_seconds": 9.0, "HR@20": 0.5, "MRR@20": 0.2, "peak_rss_mb": 1.0,
                   "when": "then", "reused": k == "ours", "code": "abc" if k == "ours" else None,
                   "recbole": "1.2.1", "anomaly_detection": False} for k in ("ours", "ours_bf16", "recbole")}
    results = {"meta": {"n_train": 250_000, "n_test": 5, "n_items": 7}, "speed": speed, "quality": quality}
    args = types.SimpleNamespace(threads=2, warmup=1, batches=10, epochs=1, lr_decay=1.0, bf16=False)
    text = recbole_page(results, args, 100, "{n_pairs} pairs, {check[n_items]} items, {warmup}+{batches}",
                        "{epochs} epochs, anomaly {anomaly}", "`cmd`")
    assert text[0] == "# SR-GNN training: sketchrec vs RecBole 1.2.1" and "Command: `cmd`" in text
    assert "250000 pairs, 7 items, 1+10" in text and "1 epochs, anomaly off" in text
    assert "| sketchrec | 10.0 ms | 2.0 ms | 25 | 10 | 100 |" in text          # 2,500 batches an epoch
    assert "| RecBole 1.2.1, anomaly detection turned off | 20.0 ms | ? | 50 | 10 | 900 |" in text
    assert not any("sketchrec, bf16 autocast" in line or "with bf16 autocast:" in line for line in text)
    assert results["speed_ratio_recbole_over_ours"] == pytest.approx(4.0)
    assert results["speed_ratio_recbole_anomaly_off_over_ours"] == pytest.approx(2.0)
    assert "| sketchrec | 1 | 250 | 9 | 0.5000 | 0.2000 | 1 | then (reused), model code abc |" in text
    args.bf16, args.epochs = True, 0
    text = recbole_page(results, args, 100, "", "", "`cmd`")
    assert results["speed_ratio_recbole_over_ours_bf16"] == pytest.approx(8.0)
    assert any(line.startswith("RecBole / ours with bf16 autocast: **8.00x**") for line in text)
    assert not any("HR@20" in line for line in text)


# -- eval.graph_tasks: comparisons -------------------------------------------------------------
def test_cleora_comparisons():
    from sketchrec.eval import graph_tasks as gt
    rng = np.random.default_rng(0)
    n = 40
    edges = np.unique(np.sort(rng.integers(0, n, (160, 2)), axis=1), axis=0)
    edges = edges[edges[:, 0] != edges[:, 1]]
    train, val, test = gt.split_edges_keeping_nodes(edges, 0.2, 0.1, seed=0)
    rows, summary = gt.linkpred_comparison(lambda e: {m: gt.cleora_by_iterations(e, n, 8, [1, 2])
                                                      for m in ("ours", "pycleora")}, train, val, test, [1, 2])
    assert [r[0] for r in rows] == [1, 2] and all(len(r) == 11 for r in rows)
    assert all(r[1] == r[2] and r[3] == r[4] for r in rows)  # the same vectors on both sides: the same cells
    assert summary["ours"] == summary["pycleora"] and summary["ours"]["iterations"] in (1, 2)
    tables = gt.linkpred_tables(rows, summary)
    assert tables[2].startswith(f"| ours | {summary['ours']['iterations']} | ") and len(tables) == 2 + 2 + 1 + 2 + 2
    from sketchrec.graph import initial_vectors
    swapped = gt.propagated_linkpred(initial_vectors(n, 8, 0), train, test, n)
    assert set(swapped) >= {"MRR", "HR@10"} and 0 <= swapped["MRR"] <= 1
    labels = rng.integers(0, 2, n)
    ds = types.SimpleNamespace(edges=edges, n_nodes=n, labels=labels,
                               split={"train": np.arange(20), "val": np.arange(20, 30), "test": np.arange(30, 40)})
    peer = {it: np.eye(2)[labels] + 0.01 * rng.normal(size=(n, 2)) for it in (1, 2)}  # a perfect peer
    lines, summary = gt.nodeclf_comparison("toy", ds, 8, [1, 2], peer, seeds=(0, 1))
    assert lines[0].startswith("| toy | Planetoid public split | accuracy | ") and "| 1.0000 (1; C " in lines[0]
    assert lines[1].startswith("| toy | 80/20, 2 seeds | accuracy | ") and "| 1.0000 ± 0.0000 (1; C " in lines[1]
    assert lines[2].startswith("| toy | 80/20, 2 seeds | macro_f1 | ") and len(lines) == 3
    assert summary["public"]["pycleora"] == summary["80/20"]["pycleora"] == 1.0
    assert set(summary["80/20"]) == {"ours", "ours + self-loops", "pycleora"}
    ds.split = None
    lines, summary = gt.nodeclf_comparison("toy", ds, 8, [1, 2], peer, seeds=(0, 1))
    assert len(lines) == 2 and set(summary) == {"80/20"}
    assert gt.nodeclf_head(8)[-2].startswith("| dataset | protocol |")


# -- models.srgnn.profiling: the variants, interleaved -----------------------------------------
def test_variant_step_times_and_top_operators():
    import torch

    from sketchrec.data.sessions import Sessions
    from sketchrec.models.srgnn import session_graphs
    from sketchrec.models.srgnn.profiling import VARIANTS, top_operators, variant_step_times
    prefixes = Sessions(np.array([0, 2, 5, 6, 8]), np.array([1, 2, 3, 1, 4, 2, 5, 1], dtype=np.int32), 6)
    targets = torch.tensor([3, 5, 1, 2])
    batches = [np.array([0, 1]), np.array([2, 3])]
    graphs = [session_graphs(prefixes.take(rows)).tensors() for rows in batches]
    torch.manual_seed(0)
    times, losses, runs = variant_step_times(6, graphs, targets, batches, passes=2)
    assert times.shape == (2, len(VARIANTS), 2) and (times > 0).all()
    assert [len(v) for v in losses] == [2] * len(VARIANTS)              # pass 1 only
    # float32 plain and fused start from the same weights and take the same first step: the same loss
    assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-4)
    assert [(bf16, fused) for _, _, bf16, fused in runs] == [(b, f) for _, b, f, _ in VARIANTS]
    top = top_operators(*runs[-1][:2], graphs, targets, batches, 2, top=3)
    assert len(top) == 3 and top[0].self_cpu_time_total >= top[-1].self_cpu_time_total


def test_tagnn_variant_times():
    import torch

    from sketchrec.data.sessions import Sessions
    from sketchrec.models.srgnn.profiling import TAGNN_VARIANTS, tagnn_variant_times
    prefixes = Sessions(np.array([0, 2, 5, 6, 8]), np.array([1, 2, 3, 1, 4, 2, 5, 1], dtype=np.int32), 6)
    targets = torch.tensor([3, 5, 1, 2])
    epoch = [np.array([0, 1]), np.array([2, 3])]
    torch.manual_seed(0)
    run = tagnn_variant_times(6, prefixes, targets, epoch, epoch[:1])
    assert run["times"].shape == (len(TAGNN_VARIANTS), 1) and (run["times"] > 0).all()
    assert run["drift"][1] == 0.0 and run["loss_gap"][1] == 0.0            # the reference itself
    assert run["loss_gap"][0] < 1e-3                                      # plain float32: the same formula
    assert len(run["load"]) == 2 and [len(v) for v in run["losses"]] == [1] * len(TAGNN_VARIANTS)


# -- eval.batch_profiles: pages ------------------------------------------------------------------
def test_srgnn_profile_and_tagnn_speed_pages():
    from sketchrec.eval.batch_profiles import srgnn_profile_page, tagnn_speed_page
    args = types.SimpleNamespace(batches=4, fit_batches=3, fit_repeats=1, threads=2)
    times = np.full((2, 4, 4), 0.01)
    times[:, 1] = 0.005                                   # the fused float32 path twice as fast
    variants = [("float32", "plain"), ("float32", "fused"), ("bf16", "plain"), ("bf16", "fused")]
    top = [types.SimpleNamespace(key="aten::mm", self_cpu_time_total=4000.0, count=8)]
    fits = [{"padded": True, "batches": 3, "seconds": 10.0, "graphs_s": 1.0, "forward_backward_s": 8.0,
             "optimiser_s": 1.0}, {"padded": False, "batches": 3, "seconds": 15.0, "graphs_s": 1.0,
                                   "forward_backward_s": 13.0, "optimiser_s": 1.0}]
    lines = srgnn_profile_page(args, times, [[1.0, 0.5]] * 4, variants, 1, top, 2, fits)
    assert lines[0] == "# SR-GNN: one training batch on CPU" and "--batches 4 --fit-batches 3 --fit-repeats 1" in lines[2]
    assert "| float32 | fused | 5.0 | 5.0 | 5.0 | 5.0 | 0.5000 |" in lines
    assert "Fused over plain, pass 2 means: float32 2.00x, bf16 1.00x." in lines
    assert "| aten::mm | 2.00 | 4 |" in lines and "| unpadded | 1 | 15.0 | 1.0 | 13.0 | 1.0 |" in lines
    assert lines[-1] == "Mean: padded 10.0 ms, unpadded 15.0 ms per batch (1.50x)."
    run = {"load": (0.5, 1.5), "times": np.array([[0.2, 0.2], [0.1, 0.1]]), "drift": [0.001, 0.0],
           "loss_gap": [0.0001, 0.0]}
    lines = tagnn_speed_page(args, [("plain autograd", "float32"), ("chunked", "float32")], run, 600, 2, 12.34)
    assert "load average 0.5 -> 1.5" in lines[2] and "(mean padded graph size 12.3 nodes; the epoch has 600 batches)" in lines[2]
    assert lines[-1] == "| chunked | float32 | 100 | 100 | 1 | 2.00x | 0 | 0 |"
    assert lines[-2] == "| plain autograd | float32 | 200 | 200 | 2 | 1.00x | 0.001 | 0.0001 |"


# -- robustness.events: the experiment ---------------------------------------------------------
class _CountModel:
    """Scores items by their click counts in training (a popularity model)."""

    def fit(self, train):
        self.counts = np.bincount(train.items, minlength=train.n_items).astype(np.float32)
        return self

    def score(self, batch):
        return np.tile(self.counts, (len(batch), 1))


def test_session_robustness():
    from sketchrec.data.sessions import Sessions
    from sketchrec.robustness.events import CORRUPTIONS, session_robustness
    rng = np.random.default_rng(0)
    items = rng.integers(0, 6, 200).astype(np.int32)
    train = Sessions(np.arange(0, 201, 4), items, 6)
    prefixes = Sessions(np.arange(0, 21, 2), items[:20], 6)
    bench = types.SimpleNamespace(train=train, test_prefixes=prefixes, test_targets=items[20:30])
    rows = session_robustness(bench, {"pop": _CountModel, "pop2": _CountModel}, [0.1, 0.5], seed=0, train_share=0.5)
    assert len(rows) == 2 * (1 + 2 * len(CORRUPTIONS))
    assert [(r["corruption"], r["severity"]) for r in rows[:3]] == [("clean", 0.0), ("drop", 0.1), ("drop", 0.5)]
    assert {r["model"] for r in rows} == {"pop", "pop2"} and all(0 <= r["MRR@20"] <= r["HR@20"] <= 1 for r in rows)
    assert rows[0]["HR@20"] == 1.0                        # 6 items: every target within the top 20


def test_graph_robustness_and_text_stability():
    from sketchrec.robustness import ASPECTS
    from sketchrec.robustness.events import graph_robustness, text_neighbour_stability
    rng = np.random.default_rng(0)
    edges = np.unique(np.sort(rng.integers(0, 60, (300, 2)), axis=1), axis=0)
    ds = types.SimpleNamespace(edges=edges[edges[:, 0] != edges[:, 1]], n_nodes=60)
    rows = graph_robustness(ds, [0.2], seed=0)
    assert [(r["corruption"], r["severity"]) for r in rows] == [("clean", 0.0), ("drop", 0.2), ("add", 0.2)]
    assert all(0 <= r["MRR"] <= 1 for r in rows)

    def encode(titles):                                   # letter counts, normalised
        v = np.array([[t.lower().count(c) for c in "abcdefghijklmnopqrstuvwxyz "] for t in titles], np.float32) + 1e-3
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    titles = [f"{c} {k} shirt number {i}" for i, (c, k) in enumerate(zip(["red", "blue", "green"] * 10,
                                                                        ["cotton", "linen", "silk", "wool", "denim"] * 6))]
    rows = text_neighbour_stability(titles, encode, 20, seed=0)
    assert [r["aspect"] for r in rows] == list(ASPECTS) and all(0 <= r["jaccard@10"] <= 1 for r in rows)
    same = text_neighbour_stability(titles, lambda ts: encode([""] * len(ts)) + np.eye(len(ts), 27), 20, seed=0)
    assert all(r["jaccard@10"] == 1.0 for r in same)        # text-blind vectors: the same neighbours


def test_step_speed_page():
    from sketchrec.eval.batch_profiles import step_speed_page
    rows = [{"what": "EMDE", "precision": "float32", "ms": 10.0}, {"what": "EMDE", "precision": "bf16", "ms": 5.0,
                                                                  "resolved": "bf16"}]
    store = {"old cpu": {"when": "2020", "machine": "m1", "threads": 1, "note": "n1", "rows": rows},
             "new cpu": {"when": "2026", "machine": "m2", "threads": 2, "note": "n2", "rows": rows[1:]}}
    page = step_speed_page(store, "# Title\n\n$sections\nend")
    lines = page.split("\n")
    assert lines[0] == "# Title" and lines[-1] == "end" and "$sections" not in page
    assert page.index("## new cpu") < page.index("## old cpu")          # newest first
    assert "torch threads 1; n1" in lines and "| EMDE | bf16 | bf16 | 5.0 | 0.50x |" in lines
    assert "| EMDE | bf16 | bf16 | 5.0 |  |" in lines                    # no float32 row on that CPU: no ratio


def test_validated_settings(tmp_path):
    from sketchrec.eval.protocols import validated_settings
    path = tmp_path / "session_baselines.json"
    with pytest.raises(SystemExit, match="no validated baseline settings for dg"):
        validated_settings(path, "dg", ["sknn"])
    path.write_text(json.dumps({"dg": {"chosen": {"sknn": {"k": 50}, "sr": {}, "pop": {}}}}))
    assert validated_settings(path, "dg", ["sknn", "sr"]) == {"sknn": {"k": 50}, "sr": {}}
    with pytest.raises(SystemExit, match="session_baselines.py --datasets ... yc"):
        validated_settings(path, "yc", ["sknn"])


class _ModalityModel:
    """Two input modalities over 4 items: "all:genres" favours item 0, "all:clicks" item 1."""
    inputs = ("all:clicks", "all:genres")

    def score(self, histories, without=()):
        s = np.zeros((len(histories), 4), np.float32)
        if "all:genres" not in without:
            s[:, 0] += 2.0
        if "all:clicks" not in without:
            s[:, 1] += 1.0
        return s


def test_attribution_summary():
    from sketchrec.data.sessions import Sessions
    from sketchrec.eval.attribution import attribution_summary
    histories = Sessions(np.array([0, 1, 2, 3]), np.array([2, 3, 2], dtype=np.int32), 4)
    genres = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], np.float32)
    explained = [{"modalities": {"all:clicks": 0.0, "all:genres": 2.0}}] * 3
    summary, hist_genres = attribution_summary(_ModalityModel(), histories, explained, np.zeros(3, int), genres,
                                               np.random.default_rng(0))
    assert list(summary) == ["share", "dominant", "mean_contribution", "deletion", "genre_agreement"]
    assert summary["share"] == {"all:clicks": 0.0, "all:genres": 1.0}
    assert summary["dominant"] == {"all:clicks": 0.0, "all:genres": 1.0}
    assert summary["deletion"]["top-attributed"]["changed"] == 1.0         # without genres item 1 wins
    assert summary["deletion"]["least-attributed"]["changed"] == 0.0
    assert summary["genre_agreement"]["genres-driven users"] == 3 and summary["genre_agreement"]["others"] is None
    assert summary["genre_agreement"]["genres-driven"] == pytest.approx(2 / 3)   # histories of items 2, 3, 2
    assert hist_genres.shape == (3, 2)
