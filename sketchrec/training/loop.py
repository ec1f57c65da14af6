"""The one epoch loop of every model trained by gradient steps (EMDE, SR-GNN, TAGNN).

A model builds its network, optimiser, scheduler and random generator (a `TrainingState`) and
hands `EpochLoop.run` a function that trains one epoch and returns its mean loss. The loop does
the rest the same way for every model:

- validation after every epoch by an object the caller supplies (`Validation`: called with the
  model, it returns metrics; sketchrec.eval.validation has the next-item and top-k ones), written
  into the epoch's history row as ``valid_<metric>`` (e.g. ``valid_MRR@20``);
- the best epoch by the `select` metric: its weights are restored at the end (`best_epoch_`);
  with `patience`, training stops after that many epochs without a better one;
- a checkpoint written atomically after every epoch, resumed when it exists (`checkpoint.py`),
  and, for epochs long enough to be killed in (a log larger than memory), inside an epoch at the
  safe points the epoch function offers (`within_epoch`);
- a progress bar per epoch, a log line per epoch, callbacks ``callback(epoch, model, row)``
  after each epoch (before its checkpoint, so what a callback adds to `row` is kept).

`rollback_on_failure` gives a `fit` that fails (bad input, interrupt) the model it started with.

This module knows no model and no metric: nothing here imports sketchrec.models or sketchrec.eval.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from tqdm.auto import tqdm

from sketchrec.training.checkpoint import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

#: history rows name validation metrics with this prefix (training metrics have none)
VALID_PREFIX = "valid_"


@runtime_checkable
class Validation(Protocol):
    """Scores a model on held-out data: ``validation(model) -> {metric name: value}``.

    select : the metric (a key of what the call returns) the best epoch is chosen by, higher
        being better unless the loop is told `lower_is_better`.
    """

    select: str

    def __call__(self, model) -> dict[str, float]: ...


@dataclass
class TrainingState:
    """What a checkpoint holds besides the history: the network and what steps it."""

    net: torch.nn.Module
    optimiser: torch.optim.Optimizer
    scheduler: object            # a torch.optim.lr_scheduler with state_dict / load_state_dict / step
    rng: np.random.Generator


def check_validation(validation, owner: str) -> None:
    """Refuse (TypeError naming `owner`) a validation that is not a `Validation` object."""
    if validation is not None and not isinstance(validation, Validation):
        raise TypeError(
            f"{owner}: validation must be a Validation object (callable(model) -> metrics, with "
            f".select), e.g. sketchrec.eval.validation.NextItemValidation(prefixes, targets) or "
            f"TopkValidation(inputs, targets, exclude=...); got {type(validation).__name__}")


def valid_metric(row: dict, name: str = "MRR@20") -> float | None:
    """Validation metric `name` (e.g. "MRR@20") of a history row: its ``valid_`` key, or the
    bare key of rows EMDE wrote before the loop was shared (its checkpoints, result files on
    disk); None when the row has neither (an epoch without validation)."""
    for key in (VALID_PREFIX + name, name):
        if key in row:
            return row[key]
    return None


def _current_keys(row: dict) -> dict:
    """A history row read from a checkpoint, with EMDE's former bare validation keys
    ("MRR@20") renamed as every row now names them ("valid_MRR@20")."""
    if any(k.startswith(VALID_PREFIX) for k in row):
        return row
    return {(VALID_PREFIX + k if "@" in k else k): v for k, v in row.items()}


@contextlib.contextmanager
def rollback_on_failure(estimator):
    """On any exception (an interrupt too) inside the block, put back every attribute the
    estimator had when it was entered, then re-raise: a failed `fit` leaves a fitted model as
    it was. Attributes are restored, not deep-copied: `fit` must build new learned objects
    (a new network), not change the old ones in place."""
    before = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(before)
        raise


def torch_threads(threads: int | None) -> None:
    """Set torch's intra-op threads: `threads`, or every core when None."""
    torch.set_num_threads(threads or os.cpu_count() or 1)


def parameter_defaults(estimator) -> dict:
    """``__init__``'s defaults of the estimator's class, by parameter name."""
    return {p.name: p.default for p in inspect.signature(type(estimator).__init__).parameters.values()
            if p.default is not inspect.Parameter.empty}


@dataclass
class EpochLoop:
    """Epochs, validation, best-epoch restore, patience, checkpoints, progress and callbacks.

    epochs : the number of epochs (at most, with patience).
    validation : optional `Validation`, run after every epoch with the network in eval mode.
    select : the validation metric the best epoch is chosen by (default: `validation.select`).
    lower_is_better : the select metric is a loss.
    patience : stop after this many epochs without a better validation score (None: never;
        the check comes before each epoch, so 0 trains no epoch). Needs validation.
    checkpoint : optional .npz path written after every epoch; resumed when it exists and was
        written for the same parameters and training rows.
    callback : optional callable(epoch, model, row), or a list of them, after every epoch.
    progress : show a progress bar over each epoch's batches (`bar`).
    name : the progress bar's label, e.g. "emde" ("emde epoch 3").
    within_epoch_every : seconds between checkpoints inside an epoch (with `checkpoint`): the epoch
        function calls `within_epoch(epoch, progress)` at its safe points (e.g. after each buffer
        of a stream) and, when this long has passed since the last write, the state is written
        with its `progress`; a resumed run gets that dict back from `resumed_progress(epoch)`
        and carries on from there. None: epoch boundaries only.
    """

    epochs: int
    validation: Validation | None = None
    select: str | None = None
    lower_is_better: bool = False
    patience: int | None = None
    checkpoint: str | os.PathLike | None = None
    callback: Callable | Sequence[Callable] | None = None
    progress: bool = True
    name: str = "training"
    within_epoch_every: float | None = None

    def __post_init__(self):
        self._run = None           # what `within_epoch` writes: set by `run` while it trains
        self._resume = None        # a checkpoint's progress inside an epoch, until the epoch takes it

    def bar(self, batches: Iterable, epoch: int):
        """`batches` wrapped in this epoch's progress bar (`epoch` counts from 0)."""
        return tqdm(batches, desc=f"{self.name} epoch {epoch + 1}", unit="batch", leave=False,
                    disable=not self.progress)

    def _callbacks(self) -> list[Callable]:
        if self.callback is None:
            return []
        return list(self.callback) if isinstance(self.callback, (list, tuple)) else [self.callback]

    def run(self, model, state: TrainingState, train_epoch: Callable[[int], dict],
            fingerprint: str = "") -> None:
        """Train `model` (an estimator whose network is `state.net`) for the remaining epochs.

        train_epoch(epoch) trains one epoch (`epoch` counts from 0; the network is in train
        mode) and returns {"loss": mean training loss, ...further timings or counts}; the loop
        steps the scheduler after it. Sets `model.history_` (one dict per epoch: epoch, loss,
        seconds, what train_epoch returned, the ``valid_`` metrics and what callbacks added)
        and, with validation, `model.best_epoch_`, whose weights the network ends with.
        fingerprint : identifies the training data in the checkpoint.
        """
        check_validation(self.validation, type(model).__name__)
        select = self.select or getattr(self.validation, "select", None)
        kind = type(model).__name__
        model.history_, best, best_state, first_epoch, stale = [], -np.inf, None, 0, 0
        if self.checkpoint is not None and os.path.exists(self.checkpoint):
            first_epoch, history, best, best_state, extra = load_checkpoint(
                self.checkpoint, params=model.get_params(), defaults=parameter_defaults(model),
                fingerprint=fingerprint, net=state.net, optimiser=state.optimiser,
                scheduler=state.scheduler, rng=state.rng)
            model.history_ = [_current_keys(row) for row in history]
            stale = extra.get("stale", 0)
            if extra.get("best_epoch") is not None:
                model.best_epoch_ = extra["best_epoch"]
            self._resume = extra.get("within")
            log.info("%s: resumed from %s after epoch %d%s", kind, self.checkpoint, first_epoch,
                     " (and part of the next)" if self._resume else "")
        for epoch in range(first_epoch, self.epochs):
            if self.validation is not None and self.patience is not None and stale >= self.patience:
                break
            state.net.train()
            t_epoch = time.perf_counter() - (self._resume or {}).get("seconds", 0.0)
            self._run = dict(model=model, state=state, fingerprint=fingerprint, epoch=epoch, t_epoch=t_epoch,
                             t_saved=time.perf_counter(), best=best, best_state=best_state, stale=stale)
            result = dict(train_epoch(epoch))
            self._run, self._resume = None, None
            state.scheduler.step()
            row = {"epoch": epoch + 1, "loss": result.pop("loss"), "seconds": time.perf_counter() - t_epoch,
                   **result}
            if self.validation is not None:
                state.net.eval()
                row.update({VALID_PREFIX + k: v for k, v in self.validation(model).items()})
                if VALID_PREFIX + select not in row:
                    raise ValueError(f"{kind}: the validation gave no {select!r} to select the best epoch by "
                                     f"(it gave {sorted(k[len(VALID_PREFIX):] for k in row if k.startswith(VALID_PREFIX))})")
                score = row[VALID_PREFIX + select]
                score = -score if self.lower_is_better else score          # higher is better from here
                if score > best:
                    best, stale, model.best_epoch_ = score, 0, epoch + 1
                    best_state = {k: v.detach().clone() for k, v in state.net.state_dict().items()}
                else:
                    stale += 1
            for callback in self._callbacks():
                callback(epoch + 1, model, row)
            model.history_.append(row)
            log.info("%s epoch %s", kind, row)
            if self.checkpoint is not None:
                save_checkpoint(self.checkpoint, params=model.get_params(), fingerprint=fingerprint,
                                epoch=epoch + 1, net=state.net, optimiser=state.optimiser,
                                scheduler=state.scheduler, rng=state.rng, history=model.history_, best=best,
                                best_state=best_state,
                                extra={"stale": stale, "best_epoch": getattr(model, "best_epoch_", None)})
        if best_state is not None:
            state.net.load_state_dict(best_state)
        state.net.eval()

    def resumed_progress(self, epoch: int) -> dict | None:
        """The `progress` dict a checkpoint written inside epoch `epoch` (from 0) recorded, when
        this run resumed from one; else None. The network, optimiser and random states are
        already those of that moment."""
        if self._resume is None or self._resume["epoch"] != epoch:
            return None
        return self._resume["progress"]

    def within_epoch_due(self) -> bool:
        """Whether a checkpoint inside the epoch is due (`within_epoch_every` seconds since the
        last write). Processes that must write at the same point (data-parallel ranks) agree on
        this first and then call `within_epoch(..., force=True)` together."""
        return (self.checkpoint is not None and self.within_epoch_every is not None and self._run is not None
                and time.perf_counter() - self._run["t_saved"] >= self.within_epoch_every)

    def within_epoch(self, epoch: int, progress: dict, force: bool = False) -> bool:
        """A safe point inside epoch `epoch`: write a checkpoint holding `progress` (JSON-able:
        what the epoch function needs to carry on, e.g. blocks done and loss so far) when
        `within_epoch_every` seconds have passed since the last write (or `force`). The state
        written is the one of this moment (weights, Adam, random generators), with the epochs
        before it finished. Returns whether it wrote."""
        run = self._run
        if not (force or self.within_epoch_due()) or self.checkpoint is None or run is None:
            return False
        state, model = run["state"], run["model"]
        within = {"epoch": epoch, "progress": progress, "seconds": time.perf_counter() - run["t_epoch"]}
        save_checkpoint(self.checkpoint, params=model.get_params(), fingerprint=run["fingerprint"],
                        epoch=epoch, net=state.net, optimiser=state.optimiser, scheduler=state.scheduler,
                        rng=state.rng, history=model.history_, best=run["best"], best_state=run["best_state"],
                        extra={"stale": run["stale"], "best_epoch": getattr(model, "best_epoch_", None),
                               "within": within})
        run["t_saved"] = time.perf_counter()
        return True
