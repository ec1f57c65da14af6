"""Most-popular baseline."""

from __future__ import annotations

import numpy as np

from sketchrec.data.sessions import Sessions
from sketchrec.models.base import Recommender


class Popularity(Recommender):
    """Scores every item by its number of training clicks (same list for everyone).

    Parameters
    ----------
    distinct_per_row : count an item once per training row (session/user) rather
        than once per click.
    threads : taken like every baseline's; counting is one vectorised pass, single-threaded.
    """

    _state = ("counts_",)
    _param_bounds = {"threads": (1, None)}

    def __init__(self, distinct_per_row: bool = True, threads: int | None = None):
        self.distinct_per_row = distinct_per_row
        self.threads = threads

    def fit(self, train: Sessions) -> "Popularity":
        if self.distinct_per_row:
            m = train.to_csr(binary=True)
            counts = np.bincount(m.indices, minlength=train.n_items)
        else:
            counts = train.item_counts()
        self.counts_ = (counts / max(counts.max(), 1)).astype(np.float32)
        self.n_items_ = train.n_items
        return self

    def score(self, histories: Sessions) -> np.ndarray:
        self._check_histories(histories)
        return np.broadcast_to(self.counts_, (len(histories), self.n_items_)).copy()
