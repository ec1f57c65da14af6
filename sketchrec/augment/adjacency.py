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

from dataclasses import dataclass, field

import numpy as np

KINDS = ("none", "blur", "i2i", "gmm", "kmeans", "categories")
BLUR_MODES = ("cell", "session")
GMM_INITS = ("labels", "centroids")


@dataclass
class AdjacencyAugmentation:
    """kind : one of KINDS ('none' and 'blur' need no vectors).
    vectors : (n_items, d) float item embeddings (for i2i, gmm, kmeans, categories).
    categories : (n_items,) int category per item, -1 = unknown (for 'categories';
        edges touching an unknown item keep weight 1).
    blur : add Gaussian noise after the normalisation as well (the thesis's "+Blur" variants).
    blur_mode : "cell" (the thesis's Eq. 6.1: each real-node cell of A_in and of A_out gets
        noise with probability p_blur, independently) or "session" (each session is chosen with
        probability p_blur and every real-node cell of a chosen one gets noise).
    """

    kind: str = "blur"
    vectors: np.ndarray | None = None
    categories: np.ndarray | None = None
    blur: bool = True
    blur_mode: str = "cell"
    n_clusters: int = 8
    gmm_init: str = "labels"
    p_edge: float = 0.5
    p_blur: float = 0.5
    blur_mean: float = 0.01
    blur_std: float = 0.01
    seed: int = 0
    # learned by fit(): cluster of every item (-1 = none) and the centres' pairwise distances
    cluster_: np.ndarray | None = field(default=None, repr=False)
    centre_distance_: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"augmentation kind must be one of {KINDS}, got {self.kind!r}")
        if self.blur_mode not in BLUR_MODES:
            raise ValueError(f"blur_mode must be one of {BLUR_MODES}, got {self.blur_mode!r}")
        if self.gmm_init not in GMM_INITS:
            raise ValueError(f"gmm_init must be one of {GMM_INITS}, got {self.gmm_init!r}")
        if self.kind in ("i2i", "gmm", "kmeans", "categories"):
            if self.vectors is None:
                raise ValueError(f"augmentation {self.kind!r} needs item vectors")
            self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
            if self.vectors.ndim != 2:
                raise ValueError(f"vectors must be (n_items, d), got shape {self.vectors.shape}")
        if self.kind == "categories":
            if self.categories is None or len(self.categories) != len(self.vectors):
                raise ValueError("augmentation 'categories' needs one category per item (-1 = unknown)")
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

    def fit(self) -> "AdjacencyAugmentation":
        """Cluster the items (gmm / kmeans / categories); nothing to learn for the other kinds."""
        if self.kind in ("gmm", "kmeans"):
            from sklearn.cluster import KMeans
            from sklearn.mixture import GaussianMixture
            known = np.flatnonzero(np.abs(self.vectors).sum(1) > 0)    # items absent from the source
            x = self.vectors[known]
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
            self.cluster_ = np.full(len(self.vectors), -1, dtype=np.int64)
            self.cluster_[known] = labels
        elif self.kind == "categories":
            cats = np.asarray(self.categories, dtype=np.int64)
            known = np.flatnonzero(cats >= 0)
            uniq, codes = np.unique(cats[known], return_inverse=True)
            centres = np.zeros((len(uniq), self.vectors.shape[1]))
            np.add.at(centres, codes, self.vectors[known])
            centres /= np.bincount(codes, minlength=len(uniq))[:, None]
            self.cluster_ = np.full(len(cats), -1, dtype=np.int64)
            self.cluster_[known] = codes
        else:
            return self
        diff = centres[:, None, :] - centres[None, :, :]
        self.centre_distance_ = np.sqrt((diff ** 2).sum(2)).astype(np.float32)
        return self

    # -- per batch ------------------------------------------------------------------------
    def edge_weights(self, session: np.ndarray, src: np.ndarray, dst: np.ndarray,
                     n_sessions: int, rng: np.random.Generator) -> np.ndarray:
        """(E,) float32 weights of edges src[e] -> dst[e] (item ids) of batch session session[e]."""
        n = len(src)
        if self.kind in ("none", "blur"):
            return np.ones(n, dtype=np.float32)
        if self.kind == "i2i":
            dist = np.linalg.norm(self.vectors[src] - self.vectors[dst], axis=1)
            same, known = dist < 1e-9, np.ones(n, dtype=bool)
        else:
            if self.cluster_ is None:
                self.fit()
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
