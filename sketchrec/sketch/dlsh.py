"""Density-aware LSH (EMDE, Dąbrowski et al. 2021): an embedding space cut into 2^K regions, N times.

For each of N independent partitions ("depth") and each of K bits: a random
direction r, the projections p_i = v_i · r of every (standardised) item
vector, and a threshold at a random quantile of those projections — so both
sides of every cut hold data, and dense regions get more cuts than empty
ones. Bit k of item i is [p_i > threshold]; the K bits make its bucket id in
[0, 2^K). The "median" variant (the public EMDE tutorial) cuts every
direction at its median instead.

Codes for all items are computed once, vectorised: one (n, d) x (d, N·K)
product and one comparison.
"""

from __future__ import annotations

import numpy as np

from sketchrec.base import Estimator


class DLSHCoder(Estimator):
    """Parameters
    ----------
    n_sketches : N, independent partitions (sketch depth).
    n_bits : K, cuts per partition (sketch width 2^K).
    bias : "quantile" (threshold at a U(0, 1) quantile, density-aware) or
        "median" (threshold at the median).
    seed : seed of the directions and quantiles.

    Learned: `directions_` (d, N·K) float32, `mean_` and `scale_` (d,) float32 (the
    standardisation), `thresholds_` (N·K,) float32. Saved by `save` (an .npz, no pickle);
    `state` / `from_state` give the same as plain named arrays.
    """

    _state = ("directions_", "mean_", "scale_", "thresholds_")
    _param_choices = {"bias": ("quantile", "median")}
    _param_bounds = {"n_sketches": (1, None), "n_bits": (1, 30)}

    def __init__(self, n_sketches: int = 10, n_bits: int = 7, bias: str = "quantile", seed: int = 0):
        self.n_sketches = n_sketches
        self.n_bits = n_bits
        self.bias = bias
        self.seed = seed

    @property
    def width(self) -> int:
        return 1 << self.n_bits

    def fit(self, vectors: np.ndarray) -> "DLSHCoder":
        """Learn standardisation, directions and thresholds from (n, d) item vectors."""
        if self.bias not in ("quantile", "median"):
            raise ValueError(f"bias must be 'quantile' or 'median', got {self.bias!r}")
        if not 1 <= self.n_bits <= 30:
            raise ValueError(f"n_bits must be in [1, 30], got {self.n_bits}")
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"vectors must be (n >= 2, d), got shape {x.shape}")
        rng = np.random.default_rng(self.seed)
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale_ = np.where(std > 0, 1.0 / np.where(std > 0, std, 1), 0.0).astype(np.float32)
        z = (x - self.mean_) * self.scale_
        n_cuts = self.n_sketches * self.n_bits
        self.directions_ = rng.standard_normal((x.shape[1], n_cuts)).astype(np.float32)
        proj = z @ self.directions_                                   # (n, N·K)
        if self.bias == "median":
            self.thresholds_ = np.median(proj, axis=0).astype(np.float32)
        else:
            # a quantile strictly inside (0, 1) keeps at least one item on each side
            lo, hi = 1.0 / len(x), 1.0 - 1.0 / len(x)
            u = rng.uniform(lo, hi, size=n_cuts)
            sorted_proj = np.sort(proj, axis=0)
            pos = np.clip((u * (len(x) - 1)).astype(np.int64), 0, len(x) - 2)
            cols = np.arange(n_cuts)
            # midway between two neighbouring projections: a cut through empty space
            self.thresholds_ = ((sorted_proj[pos, cols] + sorted_proj[pos + 1, cols]) / 2).astype(np.float32)
        return self

    def encode(self, vectors: np.ndarray, chunk_rows: int = 65_536) -> np.ndarray:
        """(n, d) vectors -> (n, N) int32 bucket ids in [0, 2^K). Chunked over rows."""
        self._check_fitted()
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.directions_.shape[0]:
            raise ValueError(f"vectors must be (n, {self.directions_.shape[0]}), got shape {x.shape}")
        weights = (1 << np.arange(self.n_bits, dtype=np.int32))
        out = np.empty((len(x), self.n_sketches), dtype=np.int32)
        for start in range(0, len(x), chunk_rows):
            z = (x[start:start + chunk_rows] - self.mean_) * self.scale_
            bits = (z @ self.directions_ > self.thresholds_).reshape(-1, self.n_sketches, self.n_bits)
            out[start:start + chunk_rows] = bits.astype(np.int32) @ weights
        return out

    def fit_encode(self, vectors: np.ndarray) -> np.ndarray:
        return self.fit(vectors).encode(vectors)

    # persistence as plain named arrays (no pickle), besides Estimator.save / load
    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "scale": self.scale_, "directions": self.directions_,
                "thresholds": self.thresholds_,
                "config": np.array([self.n_sketches, self.n_bits, self.seed, self.bias == "median"])}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> "DLSHCoder":
        n_sketches, n_bits, seed, median = (int(v) for v in state["config"])
        coder = cls(n_sketches, n_bits, "median" if median else "quantile", seed)
        coder.mean_, coder.scale_ = state["mean"], state["scale"]
        coder.directions_, coder.thresholds_ = state["directions"], state["thresholds"]
        return coder
