"""The shared epoch loop (sketchrec.training): best epoch, patience, checkpoints and their older
format, callbacks, rollback, the validation object; and EMDE / SR-GNN using it."""

import json

import numpy as np
import pytest
import torch

from sketchrec.base import Estimator
from sketchrec.data.sessions import Sessions
from sketchrec.models import EMDE, SRGNN
from sketchrec.training import (EpochLoop, TrainingState, check_validation, rollback_on_failure, save_checkpoint,
                                valid_metric)


class Toy(Estimator):
    """A linear net stepped by Adam on random batches: every epoch draws from the rng."""

    def __init__(self, lr: float = 0.1, seed: int = 0):
        self.lr = lr
        self.seed = seed

    def fit(self, epochs: int, **loop) -> "Toy":
        torch.manual_seed(self.seed)
        self.net_ = torch.nn.Linear(2, 1)
        optimiser = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimiser, 1, 0.5)
        rng = np.random.default_rng(self.seed)

        def epoch(e):
            x = torch.from_numpy(rng.normal(size=(8, 2)).astype(np.float32))
            loss = ((self.net_(x) - 1) ** 2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            return {"loss": loss.item(), "batches": 1}
        EpochLoop(epochs, progress=False, **loop).run(self, TrainingState(self.net_, optimiser, scheduler, rng),
                                                      epoch, "rows")
        return self

    def weights(self) -> np.ndarray:
        return torch.cat([p.detach().ravel() for p in self.net_.parameters()]).numpy().copy()


class Scripted:
    """A validation returning the given MRR@20 values epoch after epoch (and loss = 1 - MRR)."""

    select = "MRR@20"

    def __init__(self, values):
        self.values, self.calls = list(values), 0

    def __call__(self, model):
        value = self.values[self.calls]
        self.calls += 1
        return {"MRR@20": value, "loss": 1 - value}


def weights_by_epoch():
    seen = {}

    def record(epoch, model, row):
        seen[epoch] = model.weights()
    return seen, record


def test_best_epoch_is_restored_and_patience_stops():
    seen, record = weights_by_epoch()
    model = Toy().fit(10, validation=Scripted([0.1, 0.3, 0.2, 0.25, 0.5, 0.6]), patience=2, callback=record)
    # epochs 3 and 4 do not beat epoch 2: the check before epoch 5 stops
    assert [r["epoch"] for r in model.history_] == [1, 2, 3, 4]
    assert model.best_epoch_ == 2 and [r["valid_MRR@20"] for r in model.history_] == [0.1, 0.3, 0.2, 0.25]
    np.testing.assert_array_equal(model.weights(), seen[2])
    assert set(model.history_[0]) == {"epoch", "loss", "seconds", "batches", "valid_MRR@20", "valid_loss"}
    assert not model.net_.training


def test_no_patience_trains_every_epoch_and_a_loss_selects_its_lowest():
    model = Toy().fit(5, validation=Scripted([0.1, 0.3, 0.2, 0.25, 0.15]))
    assert len(model.history_) == 5 and model.best_epoch_ == 2
    model = Toy().fit(5, validation=Scripted([0.1, 0.3, 0.2, 0.25, 0.15]), select="loss", lower_is_better=True)
    assert model.best_epoch_ == 2                                   # the lowest 1 - MRR
    model = Toy().fit(5, validation=Scripted([0.5, 0.1, 0.2, 0.3, 0.4]), select="loss", patience=1)
    assert model.best_epoch_ == 2 and len(model.history_) == 3      # the highest loss, as asked


def test_patience_zero_trains_no_epoch_and_without_validation_patience_is_ignored():
    assert Toy().fit(3, validation=Scripted([0.5] * 3), patience=0).history_ == []
    assert len(Toy().fit(3, patience=0).history_) == 3


def test_a_select_metric_the_validation_lacks_is_named():
    with pytest.raises(ValueError, match="'HR@20'"):
        Toy().fit(2, validation=Scripted([0.1, 0.2]), select="HR@20")


def test_callbacks_run_in_order_and_what_they_add_is_kept(tmp_path):
    calls = []

    def first(epoch, model, row):
        calls.append(("first", epoch))
        row["note"] = epoch * 10

    def second(epoch, model, row):
        calls.append(("second", epoch, row["note"]))
    model = Toy().fit(2, callback=[first, second], checkpoint=tmp_path / "c.npz")
    assert calls == [("first", 1), ("second", 1, 10), ("first", 2), ("second", 2, 20)]
    assert [r["note"] for r in model.history_] == [10, 20]
    meta = json.loads(str(np.load(tmp_path / "c.npz")["meta"]))
    assert [r["note"] for r in meta["history"]] == [10, 20]


class Stop(Exception):
    pass


def stop_at(n):
    def callback(epoch, model, row):
        if epoch == n:
            raise Stop
    return callback


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    ckpt = tmp_path / "toy.ckpt.npz"
    full = Toy().fit(5, validation=Scripted([0.1, 0.4, 0.2, 0.3, 0.35]), patience=3)
    with pytest.raises(Stop):          # stopped in epoch 3's callback: the checkpoint holds epochs 1-2
        Toy().fit(5, validation=Scripted([0.1, 0.4, 0.2]), patience=3, checkpoint=ckpt, callback=stop_at(3))
    resumed = Toy().fit(5, validation=Scripted([0.2, 0.3, 0.35]), patience=3, checkpoint=ckpt)
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3, 4, 5]
    assert [r["loss"] for r in resumed.history_] == [r["loss"] for r in full.history_]
    assert resumed.best_epoch_ == full.best_epoch_ == 2
    np.testing.assert_array_equal(resumed.weights(), full.weights())
    with pytest.raises(ValueError, match="other settings"):
        Toy(lr=0.2).fit(5, checkpoint=ckpt)


def test_checkpoints_of_the_former_format_resume(tmp_path):
    """A checkpoint written before a parameter existed resumes when the parameter is at its
    default; EMDE's former bare validation keys ("MRR@20") are read as "valid_MRR@20"."""
    ckpt = tmp_path / "old.ckpt.npz"
    with pytest.raises(Stop):
        Toy().fit(3, checkpoint=ckpt, callback=stop_at(2))
    with np.load(ckpt) as z:
        arrays = dict(z)
    meta = json.loads(str(arrays["meta"]))
    meta["params"] = json.dumps({"seed": 0}, sort_keys=True)                   # written before `lr` existed
    meta["history"] = [{"epoch": 1, "loss": 1.0, "seconds": 0.1, "MRR@20": 0.2, "HR@20": 0.5}]
    meta["extra"] = {"best_epoch": 1}                                         # EMDE's extra: no "stale"
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(ckpt, **arrays)
    resumed = Toy().fit(3, checkpoint=ckpt)
    assert resumed.history_[0] == {"epoch": 1, "loss": 1.0, "seconds": 0.1, "valid_MRR@20": 0.2, "valid_HR@20": 0.5}
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3] and resumed.best_epoch_ == 1
    with pytest.raises(ValueError, match="other settings"):                  # the new one not at its default
        Toy(lr=0.2).fit(3, checkpoint=ckpt)
    assert valid_metric(meta["history"][0], "MRR@20") == 0.2 == valid_metric(resumed.history_[0], "MRR@20")
    assert valid_metric(resumed.history_[1], "MRR@20") is None                # an epoch without validation


def test_save_checkpoint_is_atomic(tmp_path):
    model = Toy().fit(1)
    state = torch.optim.Adam(model.net_.parameters())
    save_checkpoint(tmp_path / "a.npz", params={}, fingerprint="x", epoch=1, net=model.net_, optimiser=state,
                    scheduler=torch.optim.lr_scheduler.StepLR(state, 1), rng=np.random.default_rng(0), history=[],
                    best=-np.inf, best_state=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]       # no .tmp left behind


def test_rollback_on_failure_restores_the_attributes():
    model = Toy().fit(1)
    net, history = model.net_, model.history_
    with pytest.raises(Stop):
        with rollback_on_failure(model):
            model.net_, model.extra_ = None, 1
            raise Stop
    assert model.net_ is net and model.history_ is history and not hasattr(model, "extra_")


def test_a_validation_must_be_an_object():
    with pytest.raises(TypeError, match="NextItemValidation"):
        check_validation((Sessions.from_lists([[1]], n_items=3), np.array([2])), "Model.fit")
    check_validation(Scripted([]), "Model.fit")
    check_validation(None, "Model.fit")


def cycle_sessions(n_items=30, n_sessions=200, seed=0):
    starts = np.random.default_rng(seed).integers(0, n_items, n_sessions)
    return Sessions.from_lists(((starts[:, None] + np.arange(5)) % n_items).tolist(), n_items=n_items)


def test_emde_patience_stops_and_default_trains_every_epoch():
    kw = dict(inputs=("all:cleora:0",), outputs=("cleora:0",), n_sketches=4, n_bits=4, hidden=16, epochs=6,
              batch_size=64, progress=False, threads=1)
    model = EMDE(**kw, patience=1).fit(cycle_sessions(), validation=Scripted([0.5, 0.4, 0.3, 0.2, 0.1, 0.0]))
    assert len(model.history_) == 2 and model.best_epoch_ == 1
    model = EMDE(**kw).fit(cycle_sessions(), validation=Scripted([0.5, 0.4, 0.3, 0.2, 0.1, 0.0]))
    assert len(model.history_) == 6 and model.best_epoch_ == 1


def test_srgnn_fit_that_fails_leaves_the_fitted_model_as_it_was():
    train, rows = cycle_sessions(), Sessions.from_lists([[1, 2], [5]], n_items=30)
    model = SRGNN(hidden=8, epochs=1, progress=False, threads=1).fit(train)
    before, history = model.score(rows), model.history_
    with pytest.raises(Stop):
        model.fit(cycle_sessions(seed=1), callback=stop_at(1))
    np.testing.assert_array_equal(model.score(rows), before)
    assert model.history_ is history
