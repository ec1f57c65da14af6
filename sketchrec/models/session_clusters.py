"""GMM session clustering, the thesis's "switch case" (Algorithms 1-2).

A trained SR-GNN / TAGNN embeds validation sessions (its session vector s_h);
a Gaussian mixture clusters them; one copy of the model is fine-tuned per
cluster on the training prefixes the mixture assigns to that cluster; at test
time every session is routed to its cluster's model. Per-cluster metrics
against the shared model give the thesis's Table 5.2.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from sketchrec.data.sessions import Sessions, expand_prefixes
from sketchrec.models.base import Recommender, model_arrays, restore_model
from sketchrec.models.srgnn import SRGNN
from sketchrec.training import rollback_on_failure

log = logging.getLogger(__name__)

#: the fitted GaussianMixture's attributes `save` keeps (all `predict` needs, and its fit record)
_MIXTURE = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_", "converged_", "n_iter_",
            "lower_bound_")


class ClusteredSessions(Recommender):
    """Parameters: n_clusters, fine_tune_epochs, fine_tune_lr, min_cluster_prefixes (smaller
    clusters keep the shared model), seed, progress. `fit` takes the fitted SRGNN / TAGNN base.

    Learned: base_ (the shared model), mixture_ (a scikit-learn GaussianMixture over its session
    vectors), models_ (one model per cluster: the base itself or its fine-tuned copy),
    cluster_sizes_ (training prefixes per cluster), fine_tuned_ (which clusters have their own).
    All of it saves without pickle (the mixture's arrays; each model's parameters and weights).
    """

    _param_bounds = {"n_clusters": (1, None), "fine_tune_epochs": (0, None), "fine_tune_lr": (0, None),
                     "min_cluster_prefixes": (0, None), "seed": (0, None)}
    _state = ("cluster_sizes_", "fine_tuned_")

    def __init__(self, n_clusters: int = 4, fine_tune_epochs: int = 1, fine_tune_lr: float = 1e-4,
                 min_cluster_prefixes: int = 1000, seed: int = 0, progress: bool = True):
        self.n_clusters = n_clusters
        self.fine_tune_epochs = fine_tune_epochs
        self.fine_tune_lr = fine_tune_lr
        self.min_cluster_prefixes = min_cluster_prefixes
        self.seed = seed
        self.progress = progress

    def fit(self, train: Sessions, base: SRGNN | None = None, validation=None) -> "ClusteredSessions":
        """Cluster the validation prefixes' session vectors, fine-tune `base` per cluster on `train`.

        validation : a next-item validation (`sketchrec.eval.validation.NextItemValidation`):
            the mixture is fitted on its prefixes, and each cluster's fine-tuning is early-stopped
            on its part of it (``validation.take(rows)``); the test set is never used. A
            ``(prefixes, targets)`` tuple is still taken, with a DeprecationWarning, for the
            mixture only: it cannot early-stop, so it is refused when a cluster is fine-tuned.
        """
        from sklearn.mixture import GaussianMixture
        if base is None or validation is None:
            raise ValueError("ClusteredSessions.fit needs a fitted base model and a validation "
                             "(NextItemValidation(prefixes, targets))")
        base._check_fitted()
        if isinstance(validation, tuple):
            warnings.warn("ClusteredSessions.fit(validation=(prefixes, targets)) is deprecated: pass "
                          "sketchrec.eval.validation.NextItemValidation(prefixes, targets)", DeprecationWarning,
                          stacklevel=2)
            v_prefixes = validation[0]
        else:
            v_prefixes = validation.prefixes
        with rollback_on_failure(self):
            self.base_, self.n_items_ = base, base.n_items_
            self.mixture_ = GaussianMixture(self.n_clusters, covariance_type="full", init_params="kmeans",
                                            reg_covar=1e-4, random_state=self.seed).fit(base.session_vectors(v_prefixes))
            prefixes, targets = expand_prefixes(train)
            cluster = self.route(prefixes)
            v_cluster = self.route(v_prefixes)
            self.cluster_sizes_ = np.bincount(cluster, minlength=self.n_clusters)
            self.fine_tuned_ = self.cluster_sizes_ >= self.min_cluster_prefixes
            if self.fine_tuned_.any() and isinstance(validation, tuple):
                raise TypeError("ClusteredSessions.fit: fine-tuning a cluster needs a validation object that "
                                "early-stops on the cluster's part (NextItemValidation(prefixes, targets)), "
                                "not a (prefixes, targets) tuple")
            self.models_ = []
            for c in range(self.n_clusters):
                if not self.fine_tuned_[c]:
                    self.models_.append(base)
                    continue
                rows = np.flatnonzero(cluster == c)
                params = {**base.get_params(), "epochs": self.fine_tune_epochs, "lr": self.fine_tune_lr,
                          "seed": self.seed + c, "progress": self.progress}
                model = type(base)(**params)
                # fine-tune on the cluster's (prefix, target) pairs: each pair as a two-part session
                pairs = _pairs_as_sessions(prefixes.take(rows), targets[rows])
                v_rows = np.flatnonzero(v_cluster == c)
                valid = validation.take(v_rows) if len(v_rows) else None
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

    # -- persistence: the mixture's arrays, the base model and every fine-tuned model ---------
    def _save_extra(self) -> dict[str, np.ndarray]:
        arrays = {f"mixture.{name}": np.asarray(getattr(self.mixture_, name)) for name in _MIXTURE}
        arrays.update(model_arrays("base.", self.base_))
        for c in np.flatnonzero(self.fine_tuned_):
            arrays.update(model_arrays(f"cluster{c}.", self.models_[c]))
        return arrays

    def _load_extra(self, arrays) -> None:
        from sklearn.mixture import GaussianMixture
        self.fine_tuned_ = np.asarray(self.fine_tuned_, dtype=bool)
        self.mixture_ = GaussianMixture(self.n_clusters, covariance_type="full", init_params="kmeans",
                                        reg_covar=1e-4, random_state=self.seed)
        for name in _MIXTURE:
            value = arrays[f"mixture.{name}"]
            setattr(self.mixture_, name, value.item() if value.ndim == 0 else value)
        self.mixture_.n_features_in_ = self.mixture_.means_.shape[1]
        self.base_ = restore_model("base.", arrays)
        self.models_ = [restore_model(f"cluster{c}.", arrays, type(self.base_).__name__) if tuned else self.base_
                        for c, tuned in enumerate(self.fine_tuned_)]


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
