"""Evaluation protocols on fake models with hand-computed metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sketchrec.data.benchmark import SessionBenchmark
from sketchrec.data.idmap import IdMap
from sketchrec.data.sessions import Sessions
from sketchrec.eval.protocols import (
    EvalResult, evaluate_next_item, evaluate_session_benchmark, evaluate_topk, grid_search, next_item_ranks,
    next_item_validation, over_seeds, select_epochs_then_refit,
)
from sketchrec.training import valid_metric
from sketchrec.models import Popularity, Recommender, SessionKNN

S = Sessions.from_lists


class LastItemTable(Recommender):
    """Fake model: the scores of a row are table[last item of the row] (fixed, no learning)."""

    def __init__(self, table=None):
        self.table = table

    def fit(self, train):
        self.n_items_ = train.n_items
        self.fitted_on = train
        return self

    def score(self, histories):
        self._check_histories(histories)
        self.scored = getattr(self, "scored", []) + [histories]
        return np.asarray(self.table, np.float32)[histories.last_items()]


# targets and the rank of each (items 0..4):
# row 0: [.1, .9, .5, .3, 0], target 2 -> one item above -> rank 2
# row 1: [.5, .5, .5, .1, 0], target 0 -> tied with 1 and 2: pessimistic 3, optimistic 1, average 2
# row 2: [0, 0, 0, 0, 1],     target 4 -> rank 1
# row 3: [.9, .8, .7, .6, .5], target 4 -> rank 5
TABLE = [[0.1, 0.9, 0.5, 0.3, 0.0],
         [0.5, 0.5, 0.5, 0.1, 0.0],
         [0.0, 0.0, 0.0, 0.0, 1.0],
         [0.9, 0.8, 0.7, 0.6, 0.5]]
PREFIXES = [[4, 0], [1], [3, 2], [3]]
TARGETS = np.array([2, 0, 4, 4])


def fake(table=TABLE, n_items=5):
    return LastItemTable(table).fit(S([[0]], n_items))


def test_next_item_hand_computed():
    metrics, seconds = evaluate_next_item(fake(), S(PREFIXES, 5), TARGETS, ks=(1, 3), progress=False)
    # pessimistic ranks [2, 3, 1, 5]
    assert metrics["HR@1"] == pytest.approx(1 / 4)
    assert metrics["HR@3"] == pytest.approx(3 / 4)
    assert metrics["MRR@1"] == pytest.approx(1 / 4)
    assert metrics["MRR@3"] == pytest.approx((1 / 2 + 1 / 3 + 1) / 4)
    assert metrics["NDCG@3"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4) + 1) / 4)
    assert set(metrics) == {f"{m}@{k}" for m in ("HR", "MRR", "NDCG") for k in (1, 3)}
    assert seconds >= 0


def test_next_item_ties():
    p = S(PREFIXES, 5)
    pess, _ = evaluate_next_item(fake(), p, TARGETS, ks=(1,), progress=False)
    opt, _ = evaluate_next_item(fake(), p, TARGETS, ks=(1,), ties="optimistic", progress=False)
    avg, _ = evaluate_next_item(fake(), p, TARGETS, ks=(2,), ties="average", progress=False)
    assert pess["HR@1"] == pytest.approx(1 / 4)       # row 1 tied -> rank 3
    assert opt["HR@1"] == pytest.approx(2 / 4)        # row 1 -> rank 1
    assert avg["MRR@2"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 4)  # row 1 -> rank 2
    # a model scoring everything equally gets the last rank under the default
    flat, _ = evaluate_next_item(fake(np.zeros((5, 5))), p, TARGETS, ks=(4, 5), progress=False)
    assert flat["HR@4"] == 0.0 and flat["HR@5"] == 1.0 and flat["MRR@5"] == pytest.approx(1 / 5)


@pytest.mark.parametrize("batch_size", [1, 3, 4, 1000])
def test_next_item_batch_size_invariant(batch_size):
    rng = np.random.default_rng(0)
    table = rng.integers(0, 4, (10, 10)).astype(float)  # many ties
    prefixes = S([rng.integers(0, 10, rng.integers(1, 4)).tolist() for _ in range(37)], 10)
    targets = rng.integers(0, 10, 37)
    ref, _ = evaluate_next_item(fake(table, 10), prefixes, targets, batch_size=37, progress=False)
    model = fake(table, 10)
    got, _ = evaluate_next_item(model, prefixes, targets, batch_size=batch_size, progress=False)
    assert got == ref
    assert len(model.scored) == math.ceil(37 / batch_size)


def test_next_item_length_mismatch():
    with pytest.raises(ValueError, match="targets"):
        evaluate_next_item(fake(), S(PREFIXES, 5), TARGETS[:3], progress=False)


def test_session_benchmark_fit_and_subset():
    train = S([[0, 1], [1, 2], [1]], 5)
    test = S([[0, 1, 2], [3, 1]], 5)
    bench = SessionBenchmark.from_sessions("toy", train, test, IdMap(list("abcde")))
    # pairs: [0, 1] -> 2, [0] -> 1, [3] -> 1; Popularity ranks 1 first (3 rows), 0 and 2 tie (1 row)
    res = evaluate_session_benchmark(Popularity(), bench, ks=(1,), progress=False)
    assert isinstance(res, EvalResult) and res.n_eval == 3 and res.dataset == "toy"
    assert res.model == "Popularity" and res.params == Popularity().get_params()
    assert res.metrics["HR@1"] == pytest.approx(2 / 3) and res.fit_seconds >= 0
    sub = evaluate_session_benchmark(Popularity(), bench, ks=(1,), max_pairs=2, seed=1, progress=False)
    assert sub.n_eval == 2
    # fit=False keeps the model as it is
    model = LastItemTable(np.eye(5)).fit(S([[0]], 5))
    res = evaluate_session_benchmark(model, bench, ks=(1,), fit=False, progress=False)
    assert model.fitted_on.to_lists() == [[0]] and math.isnan(res.fit_seconds)


# ----------------------------------------------------------------- top-k
class FirstItemTable(LastItemTable):
    def score(self, histories):
        self._check_histories(histories)
        return np.asarray(self.table, np.float32)[histories.items[histories.indptr[:-1]]]


TOPK_TABLE = [[1.0, 0.9, 0.1, 0.8, 0.2],   # used by input [0]
              [0.3, 1.0, 0.9, 0.5, 0.4]]   # used by input [1, 2]


def test_topk_hand_computed_with_exclusion():
    model = FirstItemTable(TOPK_TABLE).fit(S([[0]], 5))
    inputs, targets = S([[0], [1, 2]], 5), S([[1, 3], [4]], 5)
    m, _ = evaluate_topk(model, inputs, targets, ks=(1, 2), progress=False)
    # row 0 without item 0: 1 (.9), 3 (.8), 4, 2; targets {1, 3}: @1 R=1/2 NDCG=1, @2 R=1 NDCG=1
    # row 1 without 1, 2:    3 (.5), 4 (.4), 0;  target {4}:    @1 R=0 NDCG=0, @2 R=1 NDCG=1/log2(3)
    assert m["Recall@1"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["Recall@2"] == pytest.approx(1.0)
    assert m["NDCG@1"] == pytest.approx(1 / 2)
    assert m["NDCG@2"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert m["Precision@2"] == pytest.approx((2 / 2 + 1 / 2) / 2)
    assert m["n_rows"] == 2 and m["n_nan_rows"] == 0


def test_topk_without_exclusion():
    model = FirstItemTable(TOPK_TABLE).fit(S([[0]], 5))
    inputs, targets = S([[0], [1, 2]], 5), S([[1, 3], [4]], 5)
    m, _ = evaluate_topk(model, inputs, targets, ks=(2,), exclude_input=False, progress=False)
    # row 0: [0, 1] -> one hit of 2, DCG 1/log2(3), IDCG 1 + 1/log2(3); row 1: [1, 2] -> no hit
    assert m["Recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["NDCG@2"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)) / 2)


def test_topk_batch_size_invariant_and_excluded_items_never_recommended():
    rng = np.random.default_rng(1)
    n = 12
    table = rng.random((n, n))
    inputs = S([rng.choice(n, rng.integers(1, 4), replace=False).tolist() for _ in range(23)], n)
    targets = S([rng.choice(n, rng.integers(0, 3), replace=False).tolist() for _ in range(23)], n)
    model = FirstItemTable(table).fit(S([[0]], n))
    a, _ = evaluate_topk(model, inputs, targets, ks=(3, 5), batch_size=5, progress=False)
    b, _ = evaluate_topk(model, inputs, targets, ks=(3, 5), batch_size=1000, progress=False)
    assert a == b
    assert a["n_nan_rows"] == int(np.sum(targets.lengths == 0))  # rows without targets skipped
    # an input item is excluded, so it is never a hit, even when k reaches the catalogue
    # size and topk pads the row with the excluded items (at -inf)
    m, _ = evaluate_topk(model, S([[0, 1]], n), S([[1]], n), ks=(n - 2, n), progress=False)
    assert m[f"HR@{n - 2}"] == 0.0 and m[f"HR@{n}"] == 0.0 and m[f"Precision@{n}"] == 0.0
    m, _ = evaluate_topk(model, S([[0, 1]], n), S([[1]], n), ks=(n,), exclude_input=False,
                         progress=False)
    assert m[f"HR@{n}"] == 1.0


# ----------------------------------------------------------------- grid search
def test_grid_search_picks_best_and_uses_only_evaluate():
    train, valid, test = S([[0, 1]], 3), S([[1]], 3), S([[2]], 3)
    made, seen = [], []

    class Spy(LastItemTable):
        def __init__(self, a=0, b="x"):
            self.a, self.b = a, b
            made.append((a, b))

        def fit(self, data):
            seen.append(data)
            return super().fit(data)

        def score(self, histories):
            seen.append(histories)
            return np.zeros((len(histories), self.n_items_), np.float32)

    def evaluate(model):
        model.fit(train)
        model.score(valid)
        return {"score": -(model.a - 2) ** 2 + (model.b == "y"), "other": 1.0}

    best, rows = grid_search(Spy, {"a": [1, 2, 3], "b": ["x", "y"]}, evaluate, "score", progress=False)
    assert best == {"a": 2, "b": "y"}
    assert made == [(1, "x"), (1, "y"), (2, "x"), (2, "y"), (3, "x"), (3, "y")]
    assert len(rows) == 6 and rows[3] == {"a": 2, "b": "y", "score": 1, "other": 1.0}
    assert all(s is train or s is valid for s in seen) and len(seen) == 12
    assert not any(s is test for s in seen)


def test_grid_search_real_model_on_validation():
    rng = np.random.default_rng(0)
    rows = [(rng.integers(0, 4) * 5 + rng.integers(0, 5, 4)).tolist() for _ in range(120)]
    train, valid = S(rows[:100], 20), S(rows[100:], 20)
    from sketchrec.data.sessions import expand_prefixes
    prefixes, targets = expand_prefixes(valid)

    def evaluate(model):
        model.fit(train)
        return evaluate_next_item(model, prefixes, targets, ks=(5,), progress=False)[0]

    best, grid_rows = grid_search(SessionKNN, {"neighbours": [1, 50], "backfill": [False]}, evaluate, "HR@5",
                                  progress=False)
    assert best["neighbours"] == max(grid_rows, key=lambda r: r["HR@5"])["neighbours"]
    assert len(grid_rows) == 2 and all(0 <= r["HR@5"] <= 1 for r in grid_rows)


# ----------------------------------------------------------------- seeds
def test_over_seeds_mean_std():
    calls = []

    def run(seed):
        calls.append(seed)
        return {"m": float(seed), "c": 2.0}

    out = over_seeds(run, seeds=(0, 1, 2))
    assert calls == [0, 1, 2]
    assert out["m"] == pytest.approx((1.0, 1.0))     # mean 1, std (ddof=1) sqrt((1+0+1)/2) = 1
    assert out["c"] == pytest.approx((2.0, 0.0))
    assert over_seeds(run, seeds=(4,))["m"] == (4.0, 0.0)
    out = over_seeds(lambda s: {"x": [1.0, 2.0, 6.0][s]}, seeds=(0, 1, 2))
    assert out["x"] == pytest.approx((3.0, np.std([1, 2, 6], ddof=1)))


# -- select_epochs_then_refit -----------------------------------------------------------------

class EpochCurve(Recommender):
    """Tiny trainer with a known validation curve: after epoch e its validation MRR@20 is
    curve[e - 1]; like the real models it keeps the best epoch as `best_epoch_`."""

    def __init__(self, epochs: int = 1, curve=(0.10, 0.30, 0.20, 0.25, 0.05)):
        self.epochs = epochs
        self.curve = curve

    def fit(self, train, validation=None, callback=None):
        self.n_items_, self.trained_on, self.history_ = train.n_items, train, []
        best = -1.0
        for epoch in range(1, self.epochs + 1):
            row = {"epoch": epoch, "loss": 1.0 / epoch}
            if validation is not None:
                row["valid_MRR@20"] = self.curve[epoch - 1]         # SR-GNN's key format
                if row["valid_MRR@20"] > best:
                    best, self.best_epoch_ = row["valid_MRR@20"], epoch
            if callback is not None:
                callback(epoch, self, row)
            self.history_.append(row)
        return self

    def score(self, histories):
        return np.zeros((len(histories), self.n_items_), np.float32)


def test_select_epochs_then_refit_chooses_the_best_validation_epoch_and_refits_on_all():
    fit_part, everything = S([[0, 1], [1, 2]], 4), S([[0, 1], [1, 2], [2, 3]], 4)
    validation = (S([[0]], 4), np.array([1]))
    selected, seen = [], []
    out = select_epochs_then_refit(lambda epochs: EpochCurve(epochs), fit_part, validation, everything,
                                   max_epochs=5, on_selected=selected.append,
                                   probe_kwargs={"callback": lambda e, m, r: seen.append(("probe", e))},
                                   refit_kwargs={"callback": lambda e, m, r: seen.append(("refit", e))})
    assert out.epochs == 2 == out.probe.best_epoch_ and selected == [2]       # 0.30 at epoch 2
    assert out.probe.trained_on is fit_part and len(out.history) == 5
    assert [valid_metric(r) for r in out.history] == [0.10, 0.30, 0.20, 0.25, 0.05]
    assert out.model.epochs == 2 and out.model.trained_on is everything      # refit: all of train, 2 epochs
    assert seen == [("probe", e) for e in range(1, 6)] + [("refit", 1), ("refit", 2)]
    no_refit = select_epochs_then_refit(lambda epochs: EpochCurve(epochs), fit_part, validation, max_epochs=3)
    assert no_refit.epochs == 2 and no_refit.model is None


def test_select_epochs_then_refit_refuses_a_probe_without_a_chosen_epoch():
    with pytest.raises(RuntimeError, match="chose no epoch"):
        select_epochs_then_refit(lambda epochs: EpochCurve(epochs), S([[0, 1]], 3), None, max_epochs=2)


def test_next_item_validation_is_a_seeded_sample_of_the_validation_pairs():
    valid = SessionBenchmark("v", S([[0, 1]], 5), S(PREFIXES, 5), TARGETS, IdMap(["a", "b", "c", "d", "e"]))
    validation = next_item_validation(valid, n_pairs=3, seed=0)
    again = next_item_validation(valid, n_pairs=3, seed=0)
    assert len(validation) == 3 and np.array_equal(validation.targets, again.targets)
    assert validation.prefixes.to_lists() == again.prefixes.to_lists()
    assert sorted(next_item_validation(valid, n_pairs=100).targets.tolist()) == sorted(TARGETS.tolist())
    # scored as evaluate_next_item scores: pessimistic ranks [2, 3, 1, 5] of the whole set
    assert next_item_validation(valid, n_pairs=100, ks=(1, 3))(fake())["HR@3"] == pytest.approx(3 / 4)


def test_next_item_ranks_hand_computed():
    ranks, seconds = next_item_ranks(fake(), S(PREFIXES, 5), TARGETS, batch_size=3)
    assert ranks.tolist() == [2, 3, 1, 5] and seconds >= 0
