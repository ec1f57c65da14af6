"""Both retrieval trainers train in the shared `sketchrec.training.EpochLoop` (issue 29 item 2)."""

import json

import numpy as np
import pytest
import torch

from sketchrec.retrieval.crossmodal import CrossModalTrainer, PairedValidation
from sketchrec.retrieval.ctl import LossWeights, MLPHead, RetrievalTrainer
from sketchrec.training import Validation


def identities(n_ids=8, per=6, dim=16, seed=0):
    r = np.random.default_rng(seed)
    centres = r.normal(size=(n_ids, dim))
    y = np.repeat(np.arange(n_ids), per)
    return (centres[y] + 0.3 * r.normal(size=(len(y), dim))).astype(np.float32), y


def products(n=96, seed=0):
    r = np.random.default_rng(seed)
    z = r.normal(size=(n, 4))
    regions = (z[:, None, :] + 0.3 * r.normal(size=(n, 3, 4))) @ r.normal(size=(4, 6))
    tokens = (z[:, None, :] + 0.3 * r.normal(size=(n, 4, 4))) @ r.normal(size=(4, 5))
    mask = np.arange(4)[None, :] < r.integers(1, 5, n)[:, None]
    return regions.astype(np.float32), tokens.astype(np.float32), mask


def ctl_trainer(seed=0, **kw):
    torch.manual_seed(seed)                    # the backbone is built before fit seeds torch
    return RetrievalTrainer(MLPHead(16, 32, 8), LossWeights(), **{"epochs": 2, "p": 4, "m": 4, "seed": seed,
                                                                 "threads": 1, "progress": False, **kw})


def xm_trainer(**kw):
    return CrossModalTrainer("temde", **{"dim": 8, "n": 2, "k": 4, "d": 4, "epochs": 3, "batch_size": 32,
                                         "lr": 3e-3, "threads": 1, "progress": False, **kw})


def test_retrieval_trainer_history_rows_and_repeatability():
    x, y = identities()
    a, b = ctl_trainer().fit(x, y), ctl_trainer().fit(x, y)
    assert [list(r) for r in a.history_] == [["epoch", "loss", "seconds", "ce", "triplet", "centre", "ctl"]] * 2
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(a.history_) == strip(b.history_)
    np.testing.assert_array_equal(a.embed(x), b.embed(x))
    assert a.report_.history is a.history_ and a.report_.seconds > 0
    assert not a.net_.training and not hasattr(a, "best_epoch_")       # no validation: the last epoch
    with pytest.warns(DeprecationWarning, match="history_"):
        assert a.history == a.history_


def test_retrieval_trainer_rolls_back_a_failed_fit():
    x, y = identities()
    trainer = ctl_trainer().fit(x, y)
    net, history = trainer.net_, trainer.history_
    with pytest.raises(Exception):
        trainer.fit(x[:, :3], y)                                       # wrong input width
    assert trainer.net_ is net and trainer.history_ is history


def test_retrieval_trainer_plots_reports_saved_before_the_loop(tmp_path):
    x, y = identities()
    trainer = ctl_trainer().fit(x, y)
    trainer.save(tmp_path / "ctl.npz")
    with np.load(tmp_path / "ctl.npz", allow_pickle=False) as saved:
        arrays = dict(saved)
    old = json.loads(str(arrays["report_json"]))          # rows as written before: "total", no "loss"
    old["history"] = [{("total" if k == "loss" else k): v for k, v in r.items()} for r in old["history"]]
    arrays["report_json"] = np.array(json.dumps(old))
    np.savez(tmp_path / "old.npz", **arrays)
    back = RetrievalTrainer.load(tmp_path / "old.npz")
    assert back.history_[0]["total"] == trainer.history_[0]["loss"]
    back.plot_losses(tmp_path / "losses.png")
    assert (tmp_path / "losses.png").stat().st_size > 1000


def test_crossmodal_validation_is_a_validation_object_keyed_valid_rsum():
    train, valid = products(96, 1), products(32, 2)
    assert isinstance(PairedValidation(*valid), Validation) and PairedValidation(*valid).select == "rsum"
    a = xm_trainer().fit(*train, validation=valid)
    b = xm_trainer().fit(*train, validation=PairedValidation(*valid))
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(a.history_) == strip(b.history_) and a.best_epoch_ == b.best_epoch_
    best = max(a.history_, key=lambda r: r["valid_rsum"])
    assert a.best_epoch_ == best["epoch"]
    assert a.evaluate(*valid)["rsum"] == pytest.approx(best["valid_rsum"])   # the best epoch's weights
    assert not a.model_.training


def test_crossmodal_patience_is_checked_before_each_epoch():
    train, valid = products(96, 1), products(32, 2)
    stopped = xm_trainer(epochs=8, patience=1, lr=0.5).fit(*train, validation=valid)
    scores = [r["valid_rsum"] for r in stopped.history_]
    improving = [s > max(scores[:i], default=-np.inf) for i, s in enumerate(scores)]
    if len(scores) < 8:                  # stopped after the first epoch without a better R-sum
        assert improving == [True] * (len(scores) - 1) + [False]
    assert xm_trainer(patience=0).fit(*train, validation=valid).history_ == []     # 0: no epoch trained
    assert len(xm_trainer(patience=0).fit(*train).history_) == 3                  # patience needs validation


def test_crossmodal_rolls_back_a_failed_fit():
    train, valid = products(96, 1), products(32, 2)
    trainer = xm_trainer(epochs=1).fit(*train, validation=valid)
    model, history = trainer.model_, trainer.history_
    with pytest.raises(Exception):
        trainer.fit(*train, validation=(valid[0][:, :, :2], valid[1], valid[2]))   # wrong region width
    assert trainer.model_ is model and trainer.history_ is history
