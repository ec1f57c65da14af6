"""`SessionBenchmark`: a next-item benchmark with fixed train / test parts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sketchrec.data.idmap import IdMap
from sketchrec.data.sessions import Sessions, expand_prefixes, validation_split


@dataclass
class SessionBenchmark:
    """Training sessions and next-item test pairs over one item universe.

    train : training sessions (internal item ids; row order = time order)
    test_prefixes : (n_pairs rows) session prefixes to score
    test_targets : (n_pairs,) int32 next item of each prefix
    item_ids : external item id of every internal id
    test_sessions : the whole test sessions, when known
    """

    name: str
    train: Sessions
    test_prefixes: Sessions
    test_targets: np.ndarray
    item_ids: IdMap
    test_sessions: Sessions | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return self.train.n_items

    @classmethod
    def from_sessions(cls, name: str, train: Sessions, test: Sessions, item_ids: IdMap,
                      **meta) -> "SessionBenchmark":
        prefixes, targets = expand_prefixes(test)
        return cls(name, train, prefixes, targets, item_ids, test_sessions=test, meta=meta)

    def validation(self, share: float = 0.1) -> "SessionBenchmark":
        """A benchmark for model selection: the last `share` of train sessions become the test part.

        The real test set is not touched: tune on this, report on `self`.
        """
        fit, held_out = validation_split(self.train, share)
        return SessionBenchmark.from_sessions(f"{self.name}/validation", fit, held_out, self.item_ids,
                                              **self.meta)

    def __repr__(self) -> str:
        return (f"SessionBenchmark({self.name!r}: {len(self.train):,} train sessions "
                f"({self.train.nnz:,} clicks), {len(self.test_targets):,} test pairs, "
                f"{self.n_items:,} items)")
