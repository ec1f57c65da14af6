"""GMM session clustering, the thesis's "switch case" (Algorithms 1-2).

A trained SR-GNN / TAGNN embeds validation sessions (its session vector s_h);
a Gaussian mixture clusters them; one copy of the model is fine-tuned per
cluster on the training prefixes the mixture assigns to that cluster; at test
time every session is routed to its cluster's model. Per-cluster metrics
against the shared model give the thesis's Table 5.2.
"""

from __future__ import annotations

import logging

import numpy as np

from sketchrec.data.sessions import Sessions, expand_prefixes
from sketchrec.models.base import Recommender
from sketchrec.models.srgnn import SRGNN

log = logging.getLogger(__name__)


class ClusteredSessions(Recommender):
    """base : a fitted SRGNN / TAGNN. Parameters: n_clusters, fine_tune_epochs, fine_tune_lr,
    min_cluster_prefixes (smaller clusters keep the shared model), seed, progress."""

    _param_bounds = {"n_clusters": (1, None), "fine_tune_epochs": (0, None), "fine_tune_lr": (0, None),
                     "min_cluster_prefixes": (0, None), "seed": (0, None)}

    def __init__(self, n_clusters: int = 4, fine_tune_epochs: int = 1, fine_tune_lr: float = 1e-4,
                 min_cluster_prefixes: int = 1000, seed: int = 0, progress: bool = True):
        self.n_clusters = n_clusters
        self.fine_tune_epochs = fine_tune_epochs
        self.fine_tune_lr = fine_tune_lr
        self.min_cluster_prefixes = min_cluster_prefixes
        self.seed = seed
        self.progress = progress

    def fit(self, train: Sessions, base: SRGNN | None = None,
            validation: tuple[Sessions, np.ndarray] | None = None) -> "ClusteredSessions":
        """Cluster `validation` prefixes' session vectors, fine-tune `base` per cluster on `train`.

        validation : (prefixes, targets) the mixture is fitted on (and each cluster's
            fine-tuning is early-stopped on); the test set is never used.
        """
        from sklearn.mixture import GaussianMixture
        if base is None or validation is None:
            raise ValueError("ClusteredSessions.fit needs a fitted base model and validation (prefixes, targets)")
        base._check_fitted()
        self.base_, self.n_items_ = base, base.n_items_
        v_prefixes, v_targets = validation
        self.mixture_ = GaussianMixture(self.n_clusters, covariance_type="full", init_params="kmeans",
                                        reg_covar=1e-4, random_state=self.seed).fit(base.session_vectors(v_prefixes))
        prefixes, targets = expand_prefixes(train)
        cluster = self.route(prefixes)
        v_cluster = self.route(v_prefixes)
        self.models_, self.cluster_sizes_ = [], np.bincount(cluster, minlength=self.n_clusters)
        for c in range(self.n_clusters):
            rows = np.flatnonzero(cluster == c)
            if len(rows) < self.min_cluster_prefixes:
                self.models_.append(base)
                continue
            params = {**base.get_params(), "epochs": self.fine_tune_epochs, "lr": self.fine_tune_lr,
                      "seed": self.seed + c, "progress": self.progress}
            model = type(base)(**params)
            # fine-tune on the cluster's (prefix, target) pairs: each pair as a two-part session
            pairs = _pairs_as_sessions(prefixes.take(rows), targets[rows])
            v_rows = np.flatnonzero(v_cluster == c)
            valid = (v_prefixes.take(v_rows), v_targets[v_rows]) if len(v_rows) else None
            model.fit(pairs, validation=valid, init_from=base, last_pair_only=True)
            self.models_.append(model)
            log.info("cluster %d: %d prefixes fine-tuned", c, len(rows))
        return self

    def route(self, histories: Sessions) -> np.ndarray:
        """(n_rows,) int cluster of every row (by the mixture over the base model's session vectors)."""
        return self.mixture_.predict(self.base_.session_vectors(histories))

    def score(self, histories: Sessions) -> np.ndarray:
        self._check_histories(histories)
        cluster = self.route(histories)
        out = np.empty((len(histories), self.n_items_), dtype=np.float32)
        for c in np.unique(cluster):
            rows = np.flatnonzero(cluster == c)
            out[rows] = self.models_[c].score(histories.take(rows))
        return out


def _pairs_as_sessions(prefixes: Sessions, targets: np.ndarray) -> Sessions:
    """Each (prefix, target) as one session prefix + [target] (vectorised)."""
    lengths = prefixes.lengths + 1
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    items = np.empty(indptr[-1], dtype=np.int32)
    is_target = np.zeros(indptr[-1], dtype=bool)
    is_target[indptr[1:] - 1] = True
    items[is_target] = targets
    items[~is_target] = prefixes.items
    return Sessions(indptr, items, prefixes.n_items)
