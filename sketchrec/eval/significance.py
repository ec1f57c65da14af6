"""Paired significance tests for comparing two models on the same test set.

Two models scored on the same test prefixes (or trained with the same seeds) are compared
pair by pair:

- per test prefix, hits@k: `mcnemar_exact` (exact two-sided binomial test on the discordant
  pairs: prefixes only one of the two models hits);
- per test prefix, reciprocal ranks: `wilcoxon_signed_rank`;
- per seed, a metric: `paired_t`;
- the paired difference with a normal-approximation interval: `mean_difference_ci`.

`compare_ranks` runs the per-prefix tests on two models' ranks of the targets. p-values are
scipy's (`binomtest`, `wilcoxon`, `ttest_rel`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["compare_ranks", "mcnemar_exact", "mean_difference_ci", "paired_t", "reciprocal_ranks",
           "wilcoxon_signed_rank"]


def reciprocal_ranks(ranks: np.ndarray, k: int = 20) -> np.ndarray:
    """(n,) float64 1 / rank where rank <= k, else 0 (RR@k per test prefix; ranks are 1-based)."""
    ranks = np.asarray(ranks)
    return np.where(ranks <= k, 1.0 / np.maximum(ranks, 1), 0.0)


def mcnemar_exact(hits_a: np.ndarray, hits_b: np.ndarray) -> float:
    """Exact McNemar test: two-sided binomial p-value of the discordant pairs (a hits and b
    misses vs b hits and a misses) against an even split. 1.0 when there are none.
    hits_a, hits_b: (n,) bool, the same test cases in the same order."""
    from scipy import stats
    hits_a, hits_b = _paired(hits_a, hits_b, "hits")
    only_a = int((hits_a & ~hits_b).sum())
    only_b = int((hits_b & ~hits_a).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b).pvalue)


def wilcoxon_signed_rank(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the paired values a - b (scipy's defaults:
    zero differences dropped). NaN when every difference is zero (nothing to test)."""
    from scipy import stats
    a, b = _paired(a, b, "values")
    if not np.any(a != b):
        return float("nan")
    return float(stats.wilcoxon(a, b).pvalue)


def paired_t(a, b) -> float:
    """Two-sided paired t-test p-value (e.g. one metric per seed of two models). NaN with fewer
    than two pairs."""
    from scipy import stats
    a, b = _paired(a, b, "values")
    if len(a) < 2:
        return float("nan")
    return float(stats.ttest_rel(a, b).pvalue)


def mean_difference_ci(a, b, z: float = 1.96) -> tuple[float, float]:
    """(mean of a - b, half-width of its normal-approximation interval z x sd / sqrt(n), sd
    with ddof=1)."""
    a, b = _paired(a, b, "values")
    diff = a.astype(np.float64) - b
    return float(diff.mean()), float(z * diff.std(ddof=1) / np.sqrt(len(diff)))


def compare_ranks(ranks_a: np.ndarray, ranks_b: np.ndarray, k: int = 20) -> dict[str, float]:
    """Per-prefix comparison of two models' target ranks (1-based, same prefixes, same order):
    HR@k and MRR@k differences (a - b, fractions) with 95% half-widths, McNemar's p on hits@k
    and Wilcoxon's p on RR@k."""
    ranks_a, ranks_b = _paired(ranks_a, ranks_b, "ranks")
    hits_a, hits_b = ranks_a <= k, ranks_b <= k
    rr_a, rr_b = reciprocal_ranks(ranks_a, k), reciprocal_ranks(ranks_b, k)
    hr, hr_ci = mean_difference_ci(hits_a.astype(np.float64), hits_b)
    mrr, mrr_ci = mean_difference_ci(rr_a, rr_b)
    return {f"HR@{k}": hr, f"HR@{k}_ci": hr_ci, f"MRR@{k}": mrr, f"MRR@{k}_ci": mrr_ci,
            "mcnemar_p": mcnemar_exact(hits_a, hits_b), "wilcoxon_p": wilcoxon_signed_rank(rr_a, rr_b)}


def _paired(a, b, what: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired {what} must be two 1-D arrays of the same length, got shapes "
                         f"{a.shape} and {b.shape}")
    return a, b
