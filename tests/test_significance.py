"""Paired significance tests (`sketchrec.eval.significance`) against hand-computed values and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sketchrec.eval.significance import (compare_ranks, mcnemar_exact, mean_difference_ci, paired_t,
                                         reciprocal_ranks, wilcoxon_signed_rank)


def test_mcnemar_exact_hand_computed():
    # discordant pairs: a alone hits 3 times, b alone never: p = 2 x (1/2)^3
    a = np.array([1, 1, 1, 1, 0, 0], bool)
    b = np.array([0, 0, 0, 1, 0, 0], bool)
    assert mcnemar_exact(a, b) == pytest.approx(0.25)
    # 1 vs 4 discordant: two-sided binomial = P(X <= 1) + P(X >= 4) of Bin(5, 1/2) = 12 / 32
    a = np.array([1, 0, 0, 0, 0, 1], bool)
    b = np.array([0, 1, 1, 1, 1, 1], bool)
    assert mcnemar_exact(a, b) == pytest.approx(12 / 32)
    assert mcnemar_exact(a, a) == 1.0                    # no discordant pair: nothing against H0


def test_paired_t_hand_computed_and_scipy():
    a, b = np.array([1.0, 2.0, 3.0]), np.zeros(3)
    # differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 2 sqrt 3, 2 degrees of freedom:
    # two-sided p = 1 - t / sqrt(t^2 + 2) for the t distribution with 2 df
    t = 2 * math.sqrt(3)
    assert paired_t(a, b) == pytest.approx(1 - t / math.sqrt(t * t + 2))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=20), rng.normal(size=20)
    assert paired_t(x, y) == pytest.approx(stats.ttest_rel(x, y).pvalue)
    assert math.isnan(paired_t([1.0], [0.0]))


def test_wilcoxon_matches_scipy_and_all_ties_is_nan():
    rng = np.random.default_rng(1)
    x, y = rng.random(50), rng.random(50)
    assert wilcoxon_signed_rank(x, y) == pytest.approx(stats.wilcoxon(x, y).pvalue)
    # every difference positive, n = 5 (exact): p = 2 / 2^5
    assert wilcoxon_signed_rank(np.arange(1, 6) + 0.5, np.zeros(5)) == pytest.approx(2 / 32)
    assert math.isnan(wilcoxon_signed_rank(x, x))


def test_reciprocal_ranks_and_interval():
    assert reciprocal_ranks(np.array([1, 2, 4, 21]), k=20).tolist() == [1.0, 0.5, 0.25, 0.0]
    mean, half = mean_difference_ci([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert mean == pytest.approx(2.0) and half == pytest.approx(1.96 * 1.0 / math.sqrt(3))


def test_compare_ranks_hand_computed():
    ranks_a = np.array([1, 2, 30, 5])
    ranks_b = np.array([1, 25, 30, 10])
    out = compare_ranks(ranks_a, ranks_b, k=20)
    assert out["HR@20"] == pytest.approx(1 / 4)                      # hits 3 vs 2 of 4
    assert out["MRR@20"] == pytest.approx((0 + 0.5 + 0 + (0.2 - 0.1)) / 4)
    assert out["mcnemar_p"] == pytest.approx(1.0)                     # one discordant pair: p = 2 x 1/2
    assert out["wilcoxon_p"] == pytest.approx(stats.wilcoxon(reciprocal_ranks(ranks_a), reciprocal_ranks(ranks_b)).pvalue)
    with pytest.raises(ValueError, match="same length"):
        compare_ranks(ranks_a, ranks_b[:3])
