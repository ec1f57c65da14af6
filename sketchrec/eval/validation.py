"""Validation objects for the training loop (`sketchrec.training.Validation`).

A model's `fit(train, validation=...)` takes one of these: after every epoch the loop calls it
with the model and keeps the epoch whose `select` metric is best. The model never sees how
metrics are computed, so nothing in sketchrec.models imports sketchrec.eval.

- `NextItemValidation(prefixes, targets)`: every target ranked among all items (ties
  pessimistic, as `evaluate_next_item`): HR / MRR / NDCG@K; with ``loss=True`` also "loss", the
  mean cross-entropy of the softmax over all items' scores (SR-GNN's `stop_on="loss"`).
- `TopkValidation(inputs, targets, exclude=None)`: the held-out items among the top K of each
  input row, its items removed (as `evaluate_topk`): Recall / Precision / NDCG / MAP / HR@K.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sketchrec.data.sessions import Sessions
from sketchrec.eval.metrics import session_metrics, target_ranks


@dataclass
class NextItemValidation:
    """prefixes : session prefixes (n rows). targets : (n,) int the next item of each.
    ks : cut-offs of HR / MRR / NDCG. loss : also report "loss" (mean cross-entropy over all
    items). select : the metric the best epoch is chosen by. batch_size : rows scored at once."""

    prefixes: Sessions
    targets: np.ndarray
    ks: tuple[int, ...] = (10, 20)
    loss: bool = False
    select: str = "MRR@20"
    batch_size: int = 1000

    def __post_init__(self):
        self.targets = np.asarray(self.targets)
        if len(self.prefixes) != len(self.targets):
            raise ValueError(f"NextItemValidation: {len(self.prefixes)} prefixes but {len(self.targets)} targets")

    def __len__(self) -> int:
        return len(self.targets)

    def take(self, rows) -> "NextItemValidation":
        """The same validation on a subset of its (prefix, target) pairs."""
        rows = np.asarray(rows)
        return replace(self, prefixes=self.prefixes.take(rows), targets=self.targets[rows])

    def __call__(self, model) -> dict[str, float]:
        n = len(self.targets)
        ranks, loss = np.empty(n, dtype=np.int64), 0.0
        for start in range(0, n, self.batch_size):
            rows = np.arange(start, min(start + self.batch_size, n))
            scores = model.score(self.prefixes.take(rows))
            ranks[rows] = target_ranks(scores, self.targets[rows])
            if self.loss:
                loss += _cross_entropy_sum(scores, self.targets[rows])
        metrics = session_metrics(ranks, ks=self.ks)
        if self.loss:
            metrics["loss"] = loss / max(n, 1)
        return metrics


@dataclass
class TopkValidation:
    """inputs : input histories (n rows). targets : their held-out items (n rows).
    exclude : the rows whose items are removed from the ranking when they differ from `inputs`
    (see `evaluate_topk`). ks : cut-offs. select : the metric the best epoch is chosen by."""

    inputs: Sessions
    targets: Sessions
    exclude: Sessions | None = None
    ks: tuple[int, ...] = (10, 20)
    select: str = "NDCG@20"

    def __post_init__(self):
        if len(self.inputs) != len(self.targets):
            raise ValueError(f"TopkValidation: {len(self.inputs)} input rows but {len(self.targets)} target rows")

    def __len__(self) -> int:
        return len(self.inputs)

    def __call__(self, model) -> dict[str, float]:
        # imported here: eval.protocols may build validations (this module stays importable from it)
        from sketchrec.eval.protocols import evaluate_topk
        metrics, _ = evaluate_topk(model, self.inputs, self.targets, ks=self.ks, exclude=self.exclude,
                                   progress=False)
        return {k: v for k, v in metrics.items() if "@" in k}


def _cross_entropy_sum(scores: np.ndarray, targets: np.ndarray) -> float:
    """Sum over rows of -log softmax(scores)[target] (torch's, as the models train with)."""
    import torch
    return float(torch.nn.functional.cross_entropy(torch.from_numpy(scores),
                                                   torch.from_numpy(targets.astype(np.int64)), reduction="sum"))
