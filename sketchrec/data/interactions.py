"""`Interactions`: columnar behavioural events with their id maps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from sketchrec.data.idmap import IdMap
from sketchrec.data.sessions import Sessions, sessionize


@dataclass
class Interactions:
    """Events as parallel columns, ids already internal.

    user : (n,) int32 internal user or session id (see `user_ids`)
    item : (n,) int32 internal item id (see `item_ids`)
    timestamp : optional (n,) int64 Unix seconds
    event : optional (n,) int16 event-type code (see `event_ids`)
    weight : optional (n,) float32, non-negative
    items : optional pyarrow Table of item attributes, row i = internal item i
    report : the `IngestReport` of the read (bad rows skipped, ...)
    """

    user: np.ndarray
    item: np.ndarray
    user_ids: IdMap
    item_ids: IdMap
    timestamp: np.ndarray | None = None
    event: np.ndarray | None = None
    event_ids: IdMap | None = None
    weight: np.ndarray | None = None
    items: pa.Table | None = None
    report: object = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.item)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __repr__(self) -> str:
        cols = [c for c in ("timestamp", "event", "weight") if getattr(self, c) is not None]
        return (f"Interactions(rows={len(self):,}, users={self.n_users:,}, items={self.n_items:,}, "
                f"columns={['user', 'item'] + cols})")

    def select(self, mask: np.ndarray) -> "Interactions":
        """Rows where mask is True; id maps are kept (ids stay stable)."""
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return Interactions(self.user[mask], self.item[mask], self.user_ids, self.item_ids,
                            timestamp=pick(self.timestamp), event=pick(self.event),
                            event_ids=self.event_ids, weight=pick(self.weight), items=self.items,
                            report=self.report, meta=dict(self.meta))

    def to_matrix(self, binary: bool = False) -> sp.csr_matrix:
        """(n_users, n_items) CSR; duplicates summed (weights if present, else counts)."""
        data = self.weight if self.weight is not None else np.ones(len(self), np.float32)
        m = sp.csr_matrix((data, (self.user, self.item)), shape=(self.n_users, self.n_items),
                          dtype=np.float32)
        if binary:
            m.data[:] = 1.0
        return m

    def to_sessions(self, gap_seconds: float | None = None) -> Sessions:
        """Group events into time-ordered rows, one per user/session id.

        With `gap_seconds`, a user's events are further split wherever the
        inactivity gap exceeds it. Sorting is a stable lexsort (no Python loop).
        """
        ts = self.timestamp if self.timestamp is not None else np.zeros(len(self), np.int64)
        order = np.lexsort((ts, self.user))
        user, ts_sorted = self.user[order], ts[order]
        codes = sessionize(user, ts_sorted, gap_seconds) if gap_seconds is not None else user
        if gap_seconds is None:
            # compact codes so users with no events do not leave empty rows
            _, codes = np.unique(user, return_inverse=True)
        first = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.zeros(0, int)
        return Sessions.from_sorted_codes(
            codes, self.item[order], self.n_items,
            timestamps=ts_sorted if self.timestamp is not None else None,
            weights=None if self.weight is None else self.weight[order],
            row_ids=user[first])
