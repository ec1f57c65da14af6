"""Sequential rules (SR): item -> items that follow it soon after in training sessions.

As in session-rec's SR (Ludewig & Jannach 2018): for every training session and
every pair of positions p < q with q - p <= `steps`, the rule
item[p] -> item[q] gains weight 1 / (q - p). A prefix is scored by the rules of
its last item. Built with one sparse matrix per gap, no loop over sessions.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sketchrec._threads import compute_threads
from sketchrec.data.sessions import Sessions
from sketchrec.models.base import Recommender, backfill, item_popularity, sparse_rows_to_dense
from sketchrec.models.baselines.itemknn import prune_rows


class SequentialRules(Recommender):
    """Parameters
    ----------
    steps : largest gap between the two items of a rule.
    weighting : "div" (1/gap), "linear" (1 - 0.1·(gap-1), floored at 0) or "same" (1).
    prune : keep the `prune` strongest rules per item (0 = keep all).
    backfill : rank items without a rule by popularity (see `models.base.backfill`).
    threads : numba threads of `fit` (None: all cores); results do not depend on it.
    """

    _state = ("rules_", "popularity_")
    _param_choices = {"weighting": ("div", "linear", "same")}
    _param_bounds = {"steps": (1, None), "prune": (0, None), "threads": (1, None)}

    def __init__(self, steps: int = 10, weighting: str = "div", prune: int = 0,
                 backfill: bool = True, threads: int | None = None):
        self.steps = steps
        self.weighting = weighting
        self.prune = prune
        self.backfill = backfill
        self.threads = threads

    def _gap_weight(self, gap: int) -> float:
        if self.weighting == "div":
            return 1.0 / gap
        if self.weighting == "linear":
            return max(1.0 - 0.1 * (gap - 1), 0.0)
        if self.weighting == "same":
            return 1.0
        raise ValueError(f"weighting must be 'div', 'linear' or 'same', got {self.weighting!r}")

    def fit(self, train: Sessions) -> "SequentialRules":
        n = train.n_items
        rows = train.row_of_click()
        rules = sp.csr_matrix((n, n), dtype=np.float32)
        for gap in range(1, self.steps + 1):  # loop over gaps (<= steps), vectorised inside
            same = rows[gap:] == rows[:-gap]
            if not same.any():
                break
            src, dst = train.items[:-gap][same], train.items[gap:][same]
            w = np.full(len(src), self._gap_weight(gap), dtype=np.float32)
            rules = rules + sp.csr_matrix((w, (src, dst)), shape=(n, n))
        rules.sum_duplicates()
        with compute_threads(self.threads):
            self.rules_ = prune_rows(rules, self.prune) if self.prune else rules
        self.popularity_ = item_popularity(train)
        self.n_items_ = n
        return self

    def score(self, histories: Sessions) -> np.ndarray:
        self._check_histories(histories)
        scores = sparse_rows_to_dense(self.rules_[histories.last_items()])
        return backfill(scores, self.popularity_) if self.backfill else scores
