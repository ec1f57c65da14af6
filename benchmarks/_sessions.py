"""Session subsets shared by the SR-GNN speed benchmarks (srgnn_vs_recbole, srgnn_batch_profile)."""

from __future__ import annotations

import numpy as np

from sketchrec.data.sessions import Sessions

__all__ = ["whole_sessions"]


def whole_sessions(sessions: Sessions, n_pairs: int, seed: int) -> Sessions:
    """A seeded random set of whole sessions, in their original order, whose (prefix, next item)
    pairs just reach n_pairs: timed training runs see real sessions, not cut ones."""
    order = np.random.default_rng(seed).permutation(len(sessions))
    pairs = np.cumsum(np.maximum(sessions.lengths[order] - 1, 0))
    return sessions.take(np.sort(order[:int(np.searchsorted(pairs, n_pairs)) + 1]))
