"""EMDE settings on a top-k benchmark's validation split (`sketchrec.eval.topk_ablation`) and the
script that stores and reports them."""

from __future__ import annotations

import numpy as np
import pytest

from sketchrec.data.loaders.topk import TopkBenchmark, rows_from_pairs
from sketchrec.eval.topk_ablation import ablation_page, best_readout, parse_settings, validation_run
from sketchrec.models import EMDE


def blocks(n_users: int = 120, n_items: int = 40, seed: int = 0) -> TopkBenchmark:
    """Users in 4 blocks of 10 items, each with 6 items of their block in train, 2 in valid, 2 in test."""
    rng = np.random.default_rng(seed)
    parts = {"train": ([], []), "valid": ([], []), "test": ([], [])}
    for u in range(n_users):
        items = (u % 4) * 10 + rng.permutation(10)
        for name, chosen in (("train", items[:6]), ("valid", items[6:8]), ("test", items[8:])):
            parts[name][0].extend([u] * len(chosen))
            parts[name][1].extend(chosen)
    rows = {k: rows_from_pairs(np.array(u), np.array(i), n_users, n_items) for k, (u, i) in parts.items()}
    return TopkBenchmark("blocks", rows["train"], rows["valid"], rows["test"])


def test_validation_run_scores_every_readout_and_never_reads_test():
    bench = blocks()
    bench.test = rows_from_pairs(np.zeros(0, int), np.zeros(0, int), len(bench.train), bench.n_items)  # unreadable
    params = dict(inputs=("all:cleora:1",), outputs=("cleora:1",), target="holdout", decay=None, n_sketches=4,
                  n_bits=4, hidden=32, n_blocks=0, batch_norm=False, epochs=3, batch_size=16, lr=1e-2,
                  progress=False, threads=1, cleora_dim=16)
    result = validation_run(bench, EMDE, params)
    assert set(result["readouts"]) == {"bayes/prior=0", "bayes/prior=0.5", "bayes/prior=1", "bayes/prior=1.5",
                                       "bayes/prior=2", "bayes/prior=3", "bayes/prior=4", "min"}
    name, metrics = best_readout(result)
    assert metrics["NDCG@20"] == max(r["NDCG@20"] for r in result["readouts"].values())
    assert metrics["Recall@20"] > 0.45          # 2 of the user's 4 unseen block items, among 34 candidates
    assert len(result["history"]) == 3 and 1 <= result["best_epoch"] <= 3
    page = ablation_page({"blocks": [dict(result, tag="base"), dict(result, tag="wide", params={**params, "hidden": 64})]},
                         {"blocks": {"EASE": {"Recall@20": 0.5, "NDCG@20": 0.4}}}, "machine", "cmd")
    assert "| wide | hidden=64 |" in page and "| base | (base) |" in page and "| EASE | (baseline, tuned)" in page


def test_parse_settings():
    assert parse_settings(["n_bits=10", "readout=min", "inputs=all:cleora:1,all:cleora:0", "outputs=cleora:1",
                           "reconstruct=True"]) == {"n_bits": 10, "readout": "min", "reconstruct": True,
                                                    "inputs": ("all:cleora:1", "all:cleora:0"), "outputs": ("cleora:1",)}


def test_validated_refit_and_test_uses_the_validated_epochs_and_readout_per_seed():
    from sketchrec.eval.public_topk import validated_refit_and_test

    bench = blocks()
    params = dict(inputs=("all:cleora:1",), outputs=("cleora:1",), target="holdout", decay=None, n_sketches=4,
                  n_bits=4, hidden=32, n_blocks=0, batch_norm=False, epochs=3, batch_size=16, lr=1e-2,
                  progress=False, threads=1, cleora_dim=16)
    seen = []
    out = validated_refit_and_test(bench, EMDE, params, seeds=(0, 1), on_seed=seen.append)
    assert [r["seed"] for r in out["seeds"]] == [0, 1] and seen == out["seeds"]
    for row in out["seeds"]:
        alone = validation_run(bench, EMDE, {**params, "seed": row["seed"]})      # deterministic per seed
        assert row["epochs"] == alone["best_epoch"] and row["readout"] == best_readout(alone)[0]
        assert row["test"]["Recall@20"] > 0.45 and row["users_per_second"] > 0
    recalls = [r["test"]["Recall@20"] for r in out["seeds"]]
    assert np.isclose(out["mean"]["Recall@20"], np.mean(recalls))
    assert np.isclose(out["std"]["Recall@20"], np.std(recalls, ddof=1))
    assert out["n_test_users"] == 120


@pytest.mark.needs_dataset("lastfm")
def test_speed_rows_fit_and_score_each_model_in_its_own_process():
    from sketchrec.eval.public_topk import speed_rows

    rows = speed_rows("lastfm", {"pop": {"class": "Popularity", "params": {}},
                                 "rp3beta": {"class": "RP3beta", "params": {"beta": 0.2}}}, threads=1)
    assert [r["model"] for r in rows] == ["pop", "rp3beta"]
    assert rows[1]["params"] == {"beta": 0.2} and rows[0]["seconds_per_epoch"] is None
    assert rows[1]["NDCG@20"] > rows[0]["NDCG@20"] > 0.05          # Last.fm test: 0.256 vs 0.101
    assert all(r["users_per_second"] > 0 and r["peak_rss_mib"] > 100 for r in rows)


def test_speed_page_names_the_machine_and_leaves_blanks_for_missing_figures():
    from sketchrec.eval.public_topk import speed_page

    page = speed_page("gowalla", [{"model": "pop", "params": {"threads": 2}, "fit_seconds": 1.25,
                                   "seconds_per_epoch": None, "users_per_second": 12345.0, "peak_rss_mib": 512.0,
                                   "Recall@20": 0.0416, "NDCG@20": 0.0317}], 2, "`cmd`")
    assert "avx" in page.lower() or "cpu" in page.lower()
    assert "| pop | - | 1.2 | - | 12,345 | 512 | 0.0416 | 0.0317 |" in page


def test_readout_settings_undo_the_readout_names():
    from sketchrec.eval.topk_ablation import readout_settings

    assert readout_settings("bayes/prior=1.5") == {"readout": "bayes", "prior": 1.5}
    assert readout_settings("min") == {"readout": "min"}
