"""How EMDE reads item scores from a predicted sketch p (b_ij: item i's bucket at depth j).

- "bayes" (default): sum_j [log p_j(b_ij) - log m_j(b_ij)] + prior * log pi_i, pi the items'
  training popularity (add-one smoothed), m_j(b) the popularity mass of bucket b at depth j;
- "geometric": mean_j log p_j(b_ij) (formerly "mean", still accepted with a DeprecationWarning);
- "min": min_j p_j(b_ij), the count-min estimate of the EMDE papers.

The scoring itself is `sketchrec.sketch.Readout` (all items, or a fused top-k); here are the
popularity tables and the arguments each readout passes it.
"""

from __future__ import annotations

import warnings

import numpy as np

READOUTS = ("bayes", "geometric", "min", "mean")


def readout_kind(readout: str, stacklevel: int = 2) -> str:
    """The readout `readout` names ("mean" is the old name of "geometric", with a warning)."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be 'bayes', 'geometric' or 'min', got {readout!r}")
    if readout == "mean":
        warnings.warn("EMDE readout 'mean' is now called 'geometric' (the geometric mean over depth; "
                      "'min' is the count-min readout)", DeprecationWarning, stacklevel=stacklevel + 1)
        return "geometric"
    return readout


def popularity_tables(codes: np.ndarray, width: int, item_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log bucket mass (depth, width) float32, log item prior (n_items,) float32) of the
    "bayes" readout. codes : (n_items, depth) output buckets; item_counts : (n_items,) clicks."""
    # popularity, add-one smoothed so items unseen in training keep a finite score
    pop = (item_counts.astype(np.float64) + 1.0)
    pop /= pop.sum()
    depth = codes.shape[1]
    mass = np.bincount((np.arange(depth) * width + codes).ravel(), weights=np.repeat(pop, depth),
                       minlength=depth * width)
    log_bucket_mass = np.log(np.maximum(mass, 1e-30)).astype(np.float32).reshape(depth, width)
    return log_bucket_mass, np.log(pop).astype(np.float32)


def readout_arguments(log_p: np.ndarray, kind: str, log_bucket_mass: np.ndarray, log_item_prior: np.ndarray,
                      prior: float) -> tuple[np.ndarray, dict]:
    """The predicted log-sketches (B, depth, width) as `Readout.from_log` / `Readout.topk` take
    them for readout `kind`, with their keyword arguments (bayes: in place, the mass removed)."""
    if kind == "geometric":
        return log_p, {}
    if kind == "min":
        return log_p, {"reduce": "min"}
    log_p -= log_bucket_mass
    # bayes sums over depth (the kernel averages) and adds the item prior, in the readout's pass
    return log_p, {"scale": log_p.shape[1], "bias": np.float32(prior) * log_item_prior if prior else None}
