"""Training-time augmentation of session-graph adjacency matrices (thesis Chapter 6, Algorithm 3).

A session graph's edges i -> j (consecutive clicks) are re-weighted from item
embeddings before SR-GNN's degree normalisation, and the normalised matrix is
blurred with small Gaussian noise:

- ``i2i``: weight 1 / ||E_i - E_j||;
- ``gmm`` / ``kmeans``: items clustered (8 components: a full-covariance GMM
  initialised from KMeans, or KMeans), weight 1 / ||mu_c(i) - mu_c(j)||; ``gmm_init``
  "labels" starts the GMM from KMeans labels (initial weights = cluster shares),
  "centroids" (the thesis's appendix A.2) from the KMeans centroids with equal weights;
- ``categories``: centre of a category = mean embedding of its items, same rule;
- in every kind, an edge whose two ends share a cluster (or item) gets
  max(1, 2 * m), m = the largest cross-cluster weight of its session;
- each edge takes its augmented weight with probability ``p_edge`` (else 1);
- ``blur``: Gaussian noise N(blur_mean, blur_std) added to the real-node block of
  the normalised matrix, either per cell with probability ``p_blur`` (``blur_mode="cell"``,
  the thesis's Eq. 6.1: A := A + M ⊙ N, M = [U(0,1) <= p]) or to every cell of a session
  chosen with probability ``p_blur`` (``blur_mode="session"``, the earlier default).

Evaluation always uses the plain binary matrix: an augmentation object is
passed to `session_graphs` during training only. Any item vectors can be the
source — a trained base model's embeddings (the two-stage scheme) or Cleora
vectors of the training click graph (no base model).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from sketchrec.base import Estimator, NotFittedError

KINDS = ("none", "blur", "i2i", "gmm", "kmeans", "categories")
BLUR_MODES = ("cell", "session")
GMM_INITS = ("labels", "centroids")
NEEDS_VECTORS = ("i2i", "gmm", "kmeans", "categories")


def _data_in_constructor(init):
    """Accept the former call form ``AdjacencyAugmentation(kind, vectors, categories=...)``:
    the data is kept for `fit()` with a DeprecationWarning. ``inspect.signature`` still shows
    only the parameters (`Estimator.get_params` reads them from it)."""
    @functools.wraps(init)
    def __init__(self, kind="blur", *data, **params):
        if len(data) > 2:
            raise TypeError(f"AdjacencyAugmentation() takes the kind and at most (vectors, categories) "
                            f"positionally, got {1 + len(data)} positional arguments")
        data = dict(zip(("vectors", "categories"), data))
        data.update({name: params.pop(name) for name in ("vectors", "categories") if name in params})
        init(self, kind, **params)
        if data:
            warnings.warn("AdjacencyAugmentation(kind, vectors, categories=...) is deprecated: pass the data "
                          "to fit(vectors, categories)", DeprecationWarning, stacklevel=2)
            self._check_data(data.get("vectors"), data.get("categories"))
            self._constructor_data = data
    return __init__


class AdjacencyAugmentation(Estimator):
    """kind : one of KINDS ('none' and 'blur' need no vectors, and no `fit`).
    blur : add Gaussian noise after the normalisation as well (the thesis's "+Blur" variants).
    blur_mode : "cell" (the thesis's Eq. 6.1: each real-node cell of A_in and of A_out gets
        noise with probability p_blur, independently) or "session" (each session is chosen with
        probability p_blur and every real-node cell of a chosen one gets noise).
    n_clusters, gmm_init : the item clustering of 'gmm' / 'kmeans' (see the module docstring).
    p_edge : probability that an edge takes its augmented weight (else 1).
    p_blur, blur_mean, blur_std : the blur's probability and N(mean, std) noise.
    seed : seeds the clustering.

    `fit(vectors, categories=None)` learns what the kind needs from (n_items, d) item vectors
    (and, for 'categories', (n_items,) int categories, -1 = unknown: edges touching an unknown
    item keep weight 1): the vectors ('i2i'), or the cluster of every item and the clusters'
    centre distances ('gmm', 'kmeans', 'categories').
    """

    _param_choices = {"kind": KINDS, "blur_mode": BLUR_MODES, "gmm_init": GMM_INITS}
    _param_bounds = {"n_clusters": (1, None), "p_edge": (0, 1), "p_blur": (0, 1), "blur_std": (0, None),
                     "seed": (0, None)}
    _meta = ("n_items_",)

    @_data_in_constructor
    def __init__(self, kind: str = "blur", *, blur: bool = True, blur_mode: str = "cell", n_clusters: int = 8,
                 gmm_init: str = "labels", p_edge: float = 0.5, p_blur: float = 0.5, blur_mean: float = 0.01,
                 blur_std: float = 0.01, seed: int = 0):
        self.kind = kind
        self.blur = blur
        self.blur_mode = blur_mode
        self.n_clusters = n_clusters
        self.gmm_init = gmm_init
        self.p_edge = p_edge
        self.p_blur = p_blur
        self.blur_mean = blur_mean
        self.blur_std = blur_std
        self.seed = seed
        if self.kind not in KINDS:
            raise ValueError(f"augmentation kind must be one of {KINDS}, got {self.kind!r}")
        if self.blur_mode not in BLUR_MODES:
            raise ValueError(f"blur_mode must be one of {BLUR_MODES}, got {self.blur_mode!r}")
        if self.gmm_init not in GMM_INITS:
            raise ValueError(f"gmm_init must be one of {GMM_INITS}, got {self.gmm_init!r}")
        for name in ("p_edge", "p_blur"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")

    @property
    def name(self) -> str:
        """The thesis's row label (Base, Blur, i2i+Blur, GMM+Blur, KMeans+Blur, Categories+Blur),
        with " (session)" appended when the blur is the per-session one, not the thesis's."""
        label = {"none": "Base", "blur": "Blur", "i2i": "i2i", "gmm": "GMM", "kmeans": "KMeans",
                 "categories": "Categories"}[self.kind]
        blurred = self.blur and self.kind != "none"
        label = f"{label}+Blur" if blurred and self.kind != "blur" else label
        return f"{label} (session)" if blurred and self.blur_mode == "session" else label

    # -- fitting ----------------------------------------------------------------------------
    def _check_data(self, vectors, categories) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.kind not in NEEDS_VECTORS:
            return None, None
        if vectors is None:
            raise ValueError(f"augmentation {self.kind!r} needs item vectors")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be (n_items, d), got shape {vectors.shape}")
        if self.kind == "categories" and (categories is None or len(categories) != len(vectors)):
            raise ValueError("augmentation 'categories' needs one category per item (-1 = unknown)")
        return vectors, categories

    def fit(self, vectors: np.ndarray | None = None, categories: np.ndarray | None = None) -> "AdjacencyAugmentation":
        """Learn from item vectors what the kind needs (nothing for 'none' and 'blur').

        vectors : (n_items, d) float item embeddings (i2i, gmm, kmeans, categories).
        categories : (n_items,) int category per item, -1 = unknown ('categories').
        """
        if vectors is None and categories is None and hasattr(self, "_constructor_data"):
            vectors, categories = self._constructor_data.get("vectors"), self._constructor_data.get("categories")
        vectors, categories = self._check_data(vectors, categories)
        for name in ("vectors_", "cluster_", "centre_distance_"):
            self.__dict__.pop(name, None)
        self.n_items_ = 0 if vectors is None else len(vectors)
        if self.kind == "i2i":
            self.vectors_ = vectors
        elif self.kind in ("gmm", "kmeans"):
            from sklearn.cluster import KMeans
            from sklearn.mixture import GaussianMixture
            known = np.flatnonzero(np.abs(vectors).sum(1) > 0)    # items absent from the source
            x = vectors[known]
            if self.kind == "gmm":
                start = {}
                if self.gmm_init == "centroids":     # means at the KMeans centroids, equal weights
                    km = KMeans(self.n_clusters, n_init=3, random_state=self.seed).fit(x)
                    start = {"means_init": km.cluster_centers_,
                             "weights_init": np.full(self.n_clusters, 1.0 / self.n_clusters)}
                gmm = GaussianMixture(self.n_clusters, covariance_type="full", init_params="kmeans",
                                      reg_covar=1e-4, random_state=self.seed, **start).fit(x)
                labels, centres = gmm.predict(x), gmm.means_
            else:
                km = KMeans(self.n_clusters, n_init=3, random_state=self.seed).fit(x)
                labels, centres = km.labels_, km.cluster_centers_
            self._set_clusters(known, labels, centres, len(vectors))
        elif self.kind == "categories":
            cats = np.asarray(categories, dtype=np.int64)
            known = np.flatnonzero(cats >= 0)
            uniq, codes = np.unique(cats[known], return_inverse=True)
            centres = np.zeros((len(uniq), vectors.shape[1]))
            np.add.at(centres, codes, vectors[known])
            centres /= np.bincount(codes, minlength=len(uniq))[:, None]
            self._set_clusters(known, codes, centres, len(cats))
        return self

    def _set_clusters(self, known: np.ndarray, labels: np.ndarray, centres: np.ndarray, n_items: int) -> None:
        self.cluster_ = np.full(n_items, -1, dtype=np.int64)
        self.cluster_[known] = labels
        diff = centres[:, None, :] - centres[None, :, :]
        self.centre_distance_ = np.sqrt((diff ** 2).sum(2)).astype(np.float32)

    def _fitted_marker(self) -> str:
        return "n_items_"

    def _ready(self) -> None:
        """Fit from the constructor's data (the deprecated call form) when not fitted yet; refuse
        a kind that needs vectors before `fit`."""
        if self.kind in NEEDS_VECTORS and not self.is_fitted():
            if not hasattr(self, "_constructor_data"):
                raise NotFittedError(f"AdjacencyAugmentation({self.kind!r}) is not fitted: call fit(vectors) first")
            self.fit()

    # -- persistence: the learned arrays this kind has -------------------------------------
    def _save_extra(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ("vectors_", "cluster_", "centre_distance_")
                if hasattr(self, name)}

    def _load_extra(self, arrays) -> None:
        names = arrays.files if hasattr(arrays, "files") else list(arrays)
        for name in ("vectors_", "cluster_", "centre_distance_"):
            if name in names:
                setattr(self, name, arrays[name])

    # -- per batch ------------------------------------------------------------------------
    def edge_weights(self, session: np.ndarray, src: np.ndarray, dst: np.ndarray,
                     n_sessions: int, rng: np.random.Generator) -> np.ndarray:
        """(E,) float32 weights of edges src[e] -> dst[e] (item ids) of batch session session[e]."""
        n = len(src)
        if self.kind in ("none", "blur"):
            return np.ones(n, dtype=np.float32)
        self._ready()
        if self.kind == "i2i":
            dist = np.linalg.norm(self.vectors_[src] - self.vectors_[dst], axis=1)
            same, known = dist < 1e-9, np.ones(n, dtype=bool)
        else:
            c_src, c_dst = self.cluster_[src], self.cluster_[dst]
            known = (c_src >= 0) & (c_dst >= 0)
            dist = np.where(known, self.centre_distance_[np.maximum(c_src, 0), np.maximum(c_dst, 0)], 1.0)
            same = known & (c_src == c_dst)
        cross = known & ~same
        weight = np.ones(n, dtype=np.float64)
        weight[cross] = 1.0 / np.maximum(dist[cross], 1e-9)
        session_max = np.zeros(n_sessions)
        np.maximum.at(session_max, session[cross], weight[cross])
        weight[same] = np.maximum(1.0, 2.0 * session_max[session[same]])
        keep = rng.random(n) < self.p_edge          # else the plain weight 1
        return np.where(keep & known, weight, 1.0).astype(np.float32)

    def blur_(self, adjacency: np.ndarray, n_nodes: np.ndarray, rng: np.random.Generator) -> None:
        """Add N(blur_mean, blur_std) noise in place to the real-node block of every session:
        per cell with probability p_blur (blur_mode "cell", Eq. 6.1), or to all of a session's
        cells, for sessions chosen with probability p_blur (blur_mode "session").

        adjacency : (B, n, 2n) float32 [A_in | A_out]; n_nodes : (B,) real nodes per session.
        Padding rows and columns stay zero, so padding never sends messages.
        """
        if not self.blur or self.p_blur == 0:
            return
        b, n, _ = adjacency.shape
        real = np.arange(n)[None, :] < n_nodes[:, None]                      # (B, n)
        block = real[:, :, None] & real[:, None, :]                          # (B, n, n)
        mask = np.concatenate([block, block], axis=2)                        # (B, n, 2n)
        if self.blur_mode == "cell":
            mask &= rng.random(adjacency.shape) <= self.p_blur              # M := U(0, 1) <= p
        else:
            mask &= (rng.random(b) < self.p_blur)[:, None, None]
        noise = rng.normal(self.blur_mean, self.blur_std, size=adjacency.shape).astype(np.float32)
        adjacency += noise * mask
