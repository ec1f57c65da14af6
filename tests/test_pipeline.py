"""The main jobs end to end on real data (small settings so they stay fast)."""

import numpy as np
import pytest

from sketchrec import pipeline
from sketchrec.data import registry
from sketchrec.data.benchmark import SessionBenchmark
from sketchrec.data.splits import user_holdout_split
from sketchrec.models import MODELS


def test_grids_name_real_parameters_and_the_old_split_name_stays():
    for name, grid in pipeline.SESSION_GRIDS.items():
        MODELS[name](**{k: v[0] for k, v in grid.items()})          # every grid key is a parameter
    assert pipeline.SESSION_GRIDS["vsknn"]["scoring"] == ["sketchrec", "session-rec"]
    assert pipeline.topk_split is user_holdout_split


def small_benchmark() -> SessionBenchmark:
    """RetailRocket with a fifth of its training sessions and 2,000 test pairs."""
    bench = registry.load("retailrocket")
    keep = np.arange(len(bench.train)) >= len(bench.train) * 4 // 5  # the most recent sessions
    rows = np.random.default_rng(0).choice(len(bench.test_targets), 2000, replace=False)
    return SessionBenchmark("rr-small", bench.train.take(keep), bench.test_prefixes.take(rows),
                            bench.test_targets[rows], bench.item_ids)


@pytest.mark.needs_dataset("retailrocket")
def test_session_job_tunes_on_validation_and_beats_popularity(monkeypatch):
    monkeypatch.setitem(pipeline.SESSION_GRIDS, "vsknn", {"neighbours": [20, 100], "decay": ["linear"]})
    seen = []
    run = pipeline.session_baselines(small_benchmark(), ["pop", "vsknn"], tune_pairs=1000,
                                     progress=False, on_result=seen.append)
    assert [r.model for r in run.results] == ["pop", "vsknn"] == [r.model for r in seen]
    assert run.chosen["vsknn"]["neighbours"] in (20, 100) and len(run.validation["vsknn"]) == 2
    pop, vsknn = (r.metrics for r in run.results)
    assert vsknn["HR@20"] > 4 * pop["HR@20"] and vsknn["MRR@20"] > 4 * pop["MRR@20"]
    assert all(r.n_eval == 2000 and r.score_seconds > 0 for r in run.results)
    assert "pop" not in run.validation          # no grid: not scored on validation unless asked
    run = pipeline.session_baselines(small_benchmark(), ["pop", "vsknn"], tune_pairs=1000, progress=False,
                                     validate_all=True)
    assert len(run.validation["pop"]) == 1 and run.validation["pop"][0]["MRR@20"] < run.validation["vsknn"][0]["MRR@20"]


@pytest.mark.needs_dataset("retailrocket", "movielens-100k")
def test_unknown_model_and_wrong_dataset_kind():
    with pytest.raises(ValueError, match="unknown model"):
        pipeline.session_baselines(small_benchmark(), ["nope"])
    with pytest.raises(ValueError, match="not a session benchmark"):
        pipeline.load_session_benchmark("movielens-100k")


@pytest.mark.needs_dataset("movielens-100k")
def test_topk_job_on_movielens_ease_beats_popularity():
    inter = registry.load("movielens-100k")
    histories = inter.select(inter.weight >= 4).to_sessions()
    out = pipeline.topk_baselines(histories, "ml-100k", models=("pop", "ease"), seeds=(0,))
    assert out["ease"]["chosen"][0]["lam"] in pipeline.TOPK_GRIDS["ease"]["lam"]
    ease, pop = out["ease"]["metrics"], out["pop"]["metrics"]
    assert ease["NDCG@20"][0] > 1.3 * pop["NDCG@20"][0]
    assert 0 < pop["Recall@20"][0] < ease["Recall@20"][0] < 1
    assert out["ease"]["n_users"] > 800
