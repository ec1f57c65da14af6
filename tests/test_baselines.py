"""Baselines: hand-computed scores on tiny data, the Recommender protocol, a
pure-Python reference for S-KNN / V-SKNN, and one run on real clicks."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from sketchrec.data.sessions import Sessions, expand_prefixes
from sketchrec.models import (
    EASE, MODELS, VSKNN, ItemKNN, Popularity, Recommender, SLIM, SequentialRules, SessionKNN,
)
from sketchrec.models.base import backfill, item_popularity, model_class
from sketchrec.models.baselines.itemknn import prune_rows
from sketchrec.models.baselines.sknn import position_weights

S = Sessions.from_lists
R2, R3 = math.sqrt(2), math.sqrt(3)


def dense(m):
    return np.asarray(m.toarray(), dtype=np.float64)


# ----------------------------------------------------------------- Popularity
def test_popularity_distinct_per_row_vs_per_click():
    train = [[0, 0, 1], [0, 2], [1]]
    # rows containing each item: 0 -> 2, 1 -> 2, 2 -> 1, 3 -> 0; divided by the max (2)
    m = Popularity(distinct_per_row=True).fit(S(train, 4))
    np.testing.assert_allclose(m.counts_, [1.0, 1.0, 0.5, 0.0])
    # clicks: 0 -> 3, 1 -> 2, 2 -> 1, 3 -> 0; divided by 3
    m = Popularity(distinct_per_row=False).fit(S(train, 4))
    np.testing.assert_allclose(m.counts_, [1.0, 2 / 3, 1 / 3, 0.0], rtol=1e-6)
    scores = m.score(S([[3], [0, 1]], 4))
    assert scores.shape == (2, 4) and scores.dtype == np.float32
    np.testing.assert_array_equal(scores[0], scores[1])  # same list for everyone
    scores[0, 0] = -1  # a copy, not a view of the model
    assert m.counts_[0] == 1.0


# ----------------------------------------------------------------- Sequential rules
SR_TRAIN = [[0, 1, 2], [0, 2]]


@pytest.mark.parametrize("weighting, w_gap2", [("div", 1 / 2), ("linear", 0.9), ("same", 1.0)])
def test_sequential_rules_by_hand(weighting, w_gap2):
    # gap 1 (weight 1 in every scheme): 0->1 and 1->2 from row 0, 0->2 from row 1
    # gap 2: 0->2 from row 0, weight div 1/2, linear 1 - 0.1·(2-1) = 0.9, same 1
    m = SequentialRules(steps=2, weighting=weighting, backfill=False).fit(S(SR_TRAIN, 4))
    expected = np.zeros((4, 4))
    expected[0, 1] = 1.0
    expected[0, 2] = 1.0 + w_gap2
    expected[1, 2] = 1.0
    np.testing.assert_allclose(dense(m.rules_), expected, rtol=1e-6)
    # a prefix is scored by the rules of its last item only
    scores = m.score(S([[2, 3, 0], [0, 1], [2]], 4))
    np.testing.assert_allclose(scores, expected[[0, 1, 2]], rtol=1e-6)


def test_sequential_rules_steps_limit_the_gap():
    # steps=1: only adjacent pairs, so 0->2 = 1 (from row 1) and no gap-2 contribution
    m = SequentialRules(steps=1, backfill=False).fit(S(SR_TRAIN, 3))
    np.testing.assert_allclose(dense(m.rules_), [[0, 1, 1], [0, 0, 1], [0, 0, 0]])


def test_sequential_rules_linear_weight_is_floored_at_zero():
    # one session 0..12, steps=12: rule 0->g has gap g, weight max(1 - 0.1·(g-1), 0)
    m = SequentialRules(steps=12, weighting="linear", backfill=False).fit(S([list(range(13))], 13))
    row0 = dense(m.rules_)[0]
    expected = [0.0] + [max(1 - 0.1 * (g - 1), 0.0) for g in range(1, 13)]
    np.testing.assert_allclose(row0, expected, atol=1e-6)
    assert row0[11] == pytest.approx(0.0, abs=1e-6) and row0[12] == 0.0  # gap 12 -> 0, not -0.1


def test_sequential_rules_unknown_weighting():
    with pytest.raises(ValueError, match="weighting"):
        SequentialRules(weighting="exp").fit(S(SR_TRAIN, 3))


def test_sequential_rules_prune_keeps_strongest():
    # div rules: row 0 = {1: 1, 2: 1.5}; prune=1 keeps 0->2 only
    m = SequentialRules(steps=2, prune=1, backfill=False).fit(S(SR_TRAIN, 3))
    np.testing.assert_allclose(dense(m.rules_), [[0, 0, 1.5], [0, 0, 1], [0, 0, 0]])


def test_prune_rows_ties_lower_column_first():
    import scipy.sparse as sp
    m = sp.csr_matrix(np.array([[0, 2, 2, 1, 2], [3, 0, 0, 0, 0], [0, 0, 0, 0, 0]], np.float32))
    out = prune_rows(m, 2)
    np.testing.assert_array_equal(out.toarray(), [[0, 2, 2, 0, 0], [3, 0, 0, 0, 0], [0, 0, 0, 0, 0]])


def test_sequential_rules_backfill_ranks_uncovered_items_by_popularity():
    # rows containing each item: 0:2, 1:4, 2:2, 3:3, 4:1, 5:0 -> popularity /4
    train = SR_TRAIN + [[1], [1], [1], [3], [3], [3, 4]]
    plain = SequentialRules(steps=2, backfill=False).fit(S(train, 6)).score(S([[0]], 6))[0]
    filled = SequentialRules(steps=2, backfill=True).fit(S(train, 6)).score(S([[0]], 6))[0]
    # rules of 0: 2 -> 1.5, 1 -> 1 (item 1 is more popular than 2 but keeps its lower score);
    # no rule: 3 (pop 3/4), 0 (2/4), 4 (1/4), 5 (0)
    assert np.argsort(-filled, kind="stable").tolist() == [2, 1, 3, 0, 4, 5]
    np.testing.assert_allclose(filled - plain, 1e-6 * np.array([2, 4, 2, 3, 1, 0]) / 4, atol=1e-7)


def test_backfill_helper_only_breaks_ties():
    scores = np.array([[0.0, 0.5, 0.0, 0.25, 0.0]], np.float32)
    pop = np.array([1.0, 0.0, 0.5, 1.0, 0.0], np.float32)
    out = backfill(scores.copy(), pop)
    # nonzero keep their order (0.5 > 0.25 although pop favours 3), zeros follow popularity
    assert np.argsort(-out[0], kind="stable").tolist() == [1, 3, 0, 2, 4]


def test_item_popularity_is_share_of_rows():
    np.testing.assert_allclose(item_popularity(S([[0, 0, 1], [0], [2]], 4)), [1, 0.5, 0.5, 0])


# ----------------------------------------------------------------- item kNN
IKNN_TRAIN = [[0, 1], [0, 1, 2], [1, 2], [2, 3]]
# support n_i: 0 -> 2, 1 -> 3, 2 -> 3, 3 -> 1, 4 -> 0
# co-occurrence n_ij: 01 = 2, 02 = 1, 12 = 2, 23 = 1, others 0
N_SUPPORT = np.array([2, 3, 3, 1, 0], float)
CO = np.zeros((5, 5))
for (i, j), v in {(0, 1): 2, (0, 2): 1, (1, 2): 2, (2, 3): 1}.items():
    CO[i, j] = CO[j, i] = v


def test_itemknn_cosine_by_hand_and_numpy():
    m = ItemKNN(neighbours=0, backfill=False).fit(S(IKNN_TRAIN, 5))
    sim = dense(m.similarity_)
    # cosine: 01 = 2/sqrt(2·3), 02 = 1/sqrt(2·3), 12 = 2/sqrt(3·3), 23 = 1/sqrt(3·1)
    assert sim[0, 1] == pytest.approx(2 / math.sqrt(6), rel=1e-6)
    assert sim[0, 2] == pytest.approx(1 / math.sqrt(6), rel=1e-6)
    assert sim[1, 2] == pytest.approx(2 / 3, rel=1e-6)
    assert sim[3, 2] == pytest.approx(1 / R3, rel=1e-6)
    # the same from the binary matrix with numpy
    x = np.zeros((4, 5))
    for r, row in enumerate(IKNN_TRAIN):
        x[r, row] = 1
    co = x.T @ x
    np.fill_diagonal(co, 0)
    norms = np.sqrt(x.sum(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.nan_to_num(co / np.outer(norms, norms))
    np.testing.assert_allclose(sim, ref, rtol=1e-6)
    np.testing.assert_allclose(sim, sim.T, rtol=1e-6)
    assert np.all(np.diag(sim) == 0)


@pytest.mark.parametrize("alpha, lam", [(1.0, 0.0), (0.0, 0.0), (0.3, 0.0), (0.5, 1.0)])
def test_itemknn_alpha_asymmetry_and_shrinkage(alpha, lam):
    m = ItemKNN(neighbours=0, alpha=alpha, lam=lam, backfill=False).fit(S(IKNN_TRAIN, 5))
    s = N_SUPPORT + lam
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = CO / (np.power(s[:, None], alpha) * np.power(s[None, :], 1 - alpha))
    np.testing.assert_allclose(dense(m.similarity_), np.nan_to_num(ref), rtol=1e-5)
    if alpha == 1.0:  # sim(i, j) = n_ij / n_i: 0->1 = 2/2, 1->0 = 2/3
        assert dense(m.similarity_)[0, 1] == pytest.approx(1.0)
        assert dense(m.similarity_)[1, 0] == pytest.approx(2 / 3)


def test_itemknn_history_last_vs_all_and_neighbours():
    last = ItemKNN(neighbours=0, history="last", backfill=False).fit(S(IKNN_TRAIN, 5))
    allh = ItemKNN(neighbours=0, history="all", backfill=False).fit(S(IKNN_TRAIN, 5))
    sim = dense(last.similarity_)
    h = S([[3, 0], [0, 1]], 5)
    # "last": row of the last item; "all": sum of the rows of all history items
    np.testing.assert_allclose(last.score(h), sim[[0, 1]], rtol=1e-6)
    np.testing.assert_allclose(allh.score(h), [sim[3] + sim[0], sim[0] + sim[1]], rtol=1e-6)
    # by hand: [3, 0] with "all" -> item 2 gets 1/sqrt(6) + 1/sqrt(3)
    assert allh.score(h)[0, 2] == pytest.approx(1 / math.sqrt(6) + 1 / R3, rel=1e-6)
    # neighbours=1 keeps the single most similar item per row: 0 -> 1, 2 -> 1 (2/3 > 1/sqrt(3) > 1/sqrt(6))
    top1 = dense(ItemKNN(neighbours=1, backfill=False).fit(S(IKNN_TRAIN, 5)).similarity_)
    assert [np.flatnonzero(r).tolist() for r in top1] == [[1], [0], [1], [2], []]
    with pytest.raises(ValueError, match="history"):
        ItemKNN(history="first").fit(S(IKNN_TRAIN, 5))


def test_itemknn_backfill_keeps_order_and_uses_popularity():
    plain = ItemKNN(neighbours=0, backfill=False).fit(S(IKNN_TRAIN, 5)).score(S([[0]], 5))[0]
    filled = ItemKNN(neighbours=0, backfill=True).fit(S(IKNN_TRAIN, 5)).score(S([[0]], 5))[0]
    # similar to 0: 1 (2/sqrt 6) > 2 (1/sqrt 6); no similarity: 0 (pop 2/3) > 3 (1/3) > 4 (0)
    assert np.argsort(-plain, kind="stable")[:2].tolist() == [1, 2]
    assert np.argsort(-filled, kind="stable").tolist() == [1, 2, 0, 3, 4]


# ----------------------------------------------------------------- S-KNN / V-SKNN
# Row order = recency (no timestamps): row 4 is the most recent.
SKNN_TRAIN = [[0, 1, 2],     # r0: |n| = 3
              [0, 3],        # r1: |n| = 2
              [1, 4, 5, 6],  # r2: |n| = 4
              [0, 1],        # r3: |n| = 2
              [5, 6]]        # r4: shares nothing with [0, 1]


def neighbour_dict(model, query):
    nb = model.neighbour_sessions(S([query], 7))
    return {int(j): float(v) for j, v in zip(nb.indices, nb.data)}


def test_sknn_sample_is_most_recent_then_k_most_similar():
    # query [0, 1]: candidates r0 (dot 2), r1 (1), r2 (1), r3 (2); r4 is not a candidate.
    # cosine sim = dot / sqrt(|n|): r0 2/sqrt3, r1 1/sqrt2, r2 1/2, r3 2/sqrt2.
    # sample_size=3 keeps the 3 most recent candidates r3, r2, r1 (drops r0);
    # k=2 keeps the most similar of those: r3 (1.414), r1 (0.707).
    m = SessionKNN(neighbours=2, sample_size=3, backfill=False).fit(S(SKNN_TRAIN, 7))
    assert neighbour_dict(m, [0, 1]) == pytest.approx({3: 2 / R2, 1: 1 / R2})
    # votes: r3 gives {0, 1} +sqrt2, r1 gives {0, 3} +1/sqrt2
    expected = np.zeros(7)
    expected[[0, 1]] += 2 / R2
    expected[[0, 3]] += 1 / R2
    np.testing.assert_allclose(m.score(S([[0, 1]], 7))[0], expected, rtol=1e-6)


def test_sknn_without_sampling_and_with_dot_similarity():
    # sample_size=0: all four candidates; k=2 -> r3 (2/sqrt2), r0 (2/sqrt3)
    m = SessionKNN(neighbours=2, sample_size=0, backfill=False).fit(S(SKNN_TRAIN, 7))
    expected = np.zeros(7)
    expected[[0, 1]] += 2 / R2
    expected[[0, 1, 2]] += 2 / R3
    np.testing.assert_allclose(m.score(S([[0, 1]], 7))[0], expected, rtol=1e-6)
    # dot: r0 and r3 both 2, tie broken by recency -> with k=1 only r3 votes
    m = SessionKNN(neighbours=1, sample_size=0, similarity="dot", backfill=False).fit(S(SKNN_TRAIN, 7))
    assert neighbour_dict(m, [0, 1]) == {3: 2.0}
    np.testing.assert_allclose(m.score(S([[0, 1]], 7))[0], [2, 2, 0, 0, 0, 0, 0])


def test_sknn_recency_comes_from_timestamps_when_present():
    # session end times r0 500, r1 100, r2 200, r3 300, r4 400: r0 is now the most recent.
    lengths = [len(r) for r in SKNN_TRAIN]
    end = [500, 100, 200, 300, 400]
    ts = np.concatenate([np.arange(n) + e - n + 1 for n, e in zip(lengths, end)]).astype(np.int64)
    train = replace(S(SKNN_TRAIN, 7), timestamps=ts)
    # candidates by recency r0, r3, r2, r1; sample 3 drops r1; k=2 -> r3 (2/sqrt2), r0 (2/sqrt3)
    m = SessionKNN(neighbours=2, sample_size=3, backfill=False).fit(train)
    assert neighbour_dict(m, [0, 1]) == pytest.approx({3: 2 / R2, 0: 2 / R3})


def test_position_weights():
    h = S([[5, 6, 7], [1]], 8)
    np.testing.assert_allclose(position_weights(h, "none"), [1, 1, 1, 1])
    np.testing.assert_allclose(position_weights(h, "linear"), [0.8, 0.9, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(position_weights(h, "div"), [1 / 3, 1 / 2, 1, 1], rtol=1e-6)
    log_w = [1 / (math.log10(3) + 1), 1 / (math.log10(2) + 1), 1, 1]
    np.testing.assert_allclose(position_weights(h, "log"), log_w, rtol=1e-6)
    # linear decay is floored at 0 from distance 10 on
    w = position_weights(S([list(range(12))], 12), "linear")
    np.testing.assert_allclose(w[:2], [0, 0], atol=1e-6)
    assert w.min() >= 0
    with pytest.raises(ValueError, match="decay"):
        position_weights(h, "exp")


def test_vsknn_position_weights_and_repeated_item():
    # query [0, 1, 0]: distances 2, 1, 0 -> linear weights 0.8, 0.9, 1; item 0 keeps its
    # latest weight 1, so q = {0: 1, 1: 0.9}.
    # dots: r0 1.9, r1 1, r2 0.9, r3 1.9; cosine: /sqrt3, /sqrt2, /2, /sqrt2
    m = VSKNN(neighbours=4, sample_size=0, backfill=False).fit(S(SKNN_TRAIN, 7))
    assert m.decay == "linear"
    assert neighbour_dict(m, [0, 1, 0]) == pytest.approx(
        {0: 1.9 / R3, 1: 1 / R2, 2: 0.9 / 2, 3: 1.9 / R2}, rel=1e-6)
    # [0, 1]: q = {0: 0.9, 1: 1} -> r1 0.9/sqrt2, r2 1/2
    assert neighbour_dict(m, [0, 1]) == pytest.approx(
        {0: 1.9 / R3, 1: 0.9 / R2, 2: 1 / 2, 3: 1.9 / R2}, rel=1e-6)
    # votes of the k=2 neighbours r3, r0 for [0, 1, 0]
    m2 = VSKNN(neighbours=2, sample_size=0, backfill=False).fit(S(SKNN_TRAIN, 7))
    expected = np.zeros(7)
    expected[[0, 1]] += 1.9 / R2
    expected[[0, 1, 2]] += 1.9 / R3
    np.testing.assert_allclose(m2.score(S([[0, 1, 0]], 7))[0], expected, rtol=1e-6)


def test_sknn_repeated_items_in_training_count_once():
    # r0 = [0, 0, 1] is the set {0, 1}: |n| = 2, dot with [0] is 1 -> 1/sqrt2
    m = SessionKNN(neighbours=5, sample_size=0, backfill=False).fit(S([[0, 0, 1], [2]], 3))
    np.testing.assert_allclose(m.score(S([[0]], 3))[0], [1 / R2, 1 / R2, 0], rtol=1e-6)


def test_sknn_backfill_and_rows_without_candidates():
    m = SessionKNN(neighbours=2, sample_size=3, backfill=True).fit(S(SKNN_TRAIN, 8))
    s = m.score(S([[0, 1], [7]], 8))
    # row 0: voted items (0, 1, 3) keep their order, the rest by popularity:
    # rows containing 2: 1, 4: 1, 5: 2, 6: 2, 7: 0
    assert np.argsort(-s[0], kind="stable").tolist() == [0, 1, 3, 5, 6, 2, 4, 7]
    # row 1: item 7 never seen in training -> no candidate, pure popularity (0 and 1 in 3 rows)
    assert np.argsort(-s[1], kind="stable").tolist() == [0, 1, 5, 6, 2, 3, 4, 7]
    assert s[1].max() < 1e-5


def test_sknn_batch_size_does_not_change_scores():
    rng = np.random.default_rng(3)
    train = [rng.integers(0, 20, rng.integers(1, 6)).tolist() for _ in range(60)]
    queries = S([rng.integers(0, 20, rng.integers(1, 5)).tolist() for _ in range(25)], 20)
    a = SessionKNN(neighbours=5, sample_size=10, batch_size=512).fit(S(train, 20)).score(queries)
    b = SessionKNN(neighbours=5, sample_size=10, batch_size=4).fit(S(train, 20)).score(queries)
    np.testing.assert_array_equal(a, b)


def test_sknn_bad_parameters():
    with pytest.raises(ValueError, match="similarity"):
        SessionKNN(similarity="jaccard").fit(S(SKNN_TRAIN, 7))
    with pytest.raises(ValueError, match="decay"):
        SessionKNN(decay="exp").fit(S(SKNN_TRAIN, 7))


# --- property test: batched S-KNN / V-SKNN == a slow pure-Python reference
def reference_neighbours(sets, weights, sample_size, norm=lambda j: np.float32(1)):
    """[(sim, session)] of the sampled candidates, most similar first (ties: more recent), and
    the candidate count; sim = float32 dot product summed in item-id order, times norm(session)."""
    f32 = np.float32
    cands = [j for j, s in enumerate(sets) if s & weights.keys()]
    cands.sort(reverse=True)                       # untimed: later row = more recent
    n_cands = len(cands)
    if sample_size:
        cands = cands[:sample_size]
    sims = []
    for j in cands:
        dot = f32(0)
        for item in sorted(sets[j] & weights.keys()):
            dot = f32(dot + weights[item])
        sims.append((f32(dot * norm(j)), j))
    sims.sort(key=lambda t: (-t[0], -t[1]))        # most similar, ties: more recent
    return sims, n_cands


def reference_sknn(train_rows, query, n_items, k, sample_size, similarity, decay):
    """The module docstring's definition, one query at a time.

    Arithmetic is float32 and dot products are summed in item-id order, as the
    model does, so exact and near ties break the same way (by recency)."""
    f32 = np.float32
    sets = [set(r) for r in train_rows]
    weights = {}
    for pos, item in enumerate(query):            # later occurrences overwrite earlier ones
        d = len(query) - 1 - pos
        weights[item] = f32(1) if decay == "none" else max(f32(1) - f32(0.1) * f32(d), f32(0))

    def norm(j):
        return f32(1) / np.sqrt(f32(len(sets[j]))) if similarity == "cosine" else f32(1)
    sims, n_cands = reference_neighbours(sets, weights, sample_size, norm)
    scores = np.zeros(n_items)
    for sim, j in sims[:k]:
        for item in sets[j]:
            scores[item] += sim
    return scores, n_cands


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k, sample_size", [(1, 3), (3, 6), (4, 0)])
@pytest.mark.parametrize("similarity, decay", [("cosine", "none"), ("dot", "none"), ("cosine", "linear")])
def test_sknn_matches_python_reference(seed, k, sample_size, similarity, decay):
    rng = np.random.default_rng(seed)
    n_items = 12
    train_rows = [rng.integers(0, n_items, rng.integers(1, 7)).tolist() for _ in range(40)]
    queries = [rng.integers(0, n_items, rng.integers(1, 6)).tolist() for _ in range(30)]
    model = SessionKNN(neighbours=k, sample_size=sample_size, similarity=similarity, decay=decay,
                       backfill=False, batch_size=7).fit(S(train_rows, n_items))
    got = model.score(S(queries, n_items))
    limited = 0
    for q, row in zip(queries, got):
        ref, n_cands = reference_sknn(train_rows, q, n_items, k, sample_size, similarity, decay)
        np.testing.assert_allclose(row, ref, rtol=1e-5, atol=1e-6, err_msg=f"query {q}")
        limited += n_cands > max(k, sample_size)
    assert limited >= 10  # both k and sample_size really cut the candidate list


# --- session-rec's VSKNN scoring
def test_session_rec_scoring_by_hand():
    # query [0, 1, 0], L = 3: item 0's last click at position 3 -> 3/3, item 1 at 2 -> 2/3; both / 2 items
    # sims: r0 {0, 1, 2} 1/2 + 1/3 = 5/6, r1 {0, 3} 1/2, r2 {1, 4, 5, 6} 1/3, r3 {0, 1} 5/6
    # steps (reversed query 0, 1, 0): r0, r1, r3 share item 0 -> 1; r2 shares only item 1 -> 2
    m = VSKNN(neighbours=4, sample_size=0, backfill=False, scoring="session-rec").fit(S(SKNN_TRAIN, 7))
    assert neighbour_dict(m, [0, 1, 0]) == pytest.approx({0: 5 / 6, 1: 1 / 2, 2: 1 / 3, 3: 5 / 6}, rel=1e-6)
    expected = np.zeros(7)
    expected[[0, 1, 2]] += 5 / 6
    expected[[0, 3]] += 1 / 2
    expected[[1, 4, 5, 6]] += (1 / 3) / 2
    expected[[0, 1]] += 5 / 6
    np.testing.assert_allclose(m.score(S([[0, 1, 0]], 7))[0], expected, rtol=1e-6)
    # query [4, 0]: w_4 = (1/2) / 2, w_0 = (2/2) / 2; r2 shares only item 4, one click before the end
    expected = np.zeros(7)
    expected[[0, 1, 2]] += 1 / 2
    expected[[0, 3]] += 1 / 2
    expected[[1, 4, 5, 6]] += (1 / 4) / 2
    expected[[0, 1]] += 1 / 2
    np.testing.assert_allclose(m.score(S([[4, 0]], 7))[0], expected, rtol=1e-6)
    # similarity and decay are not used; the default scoring is unchanged
    same = VSKNN(neighbours=4, sample_size=0, backfill=False, scoring="session-rec", similarity="dot", decay="none")
    np.testing.assert_array_equal(same.fit(S(SKNN_TRAIN, 7)).score(S([[0, 1, 0]], 7)),
                                  m.score(S([[0, 1, 0]], 7)))
    assert VSKNN().scoring == SessionKNN().scoring == "sketchrec"
    with pytest.raises(ValueError, match="scoring"):
        SessionKNN(scoring="recbole").fit(S(SKNN_TRAIN, 7))


def reference_session_rec(train_rows, query, n_items, k, sample_size):
    """session-rec's VMContextKNN.predict_next with its defaults, written plainly (no
    normalisation), in float32 with sums in item-id order and recency tie-breaks, as the model."""
    f32 = np.float32
    sets = [set(r) for r in train_rows]
    weights = {}
    for pos, item in enumerate(query, start=1):    # later occurrences overwrite earlier ones
        weights[item] = pos / len(query)
    weights = {i: f32(w / len(weights)) for i, w in weights.items()}
    sims, _ = reference_neighbours(sets, weights, sample_size)
    scores = np.zeros(n_items)
    for sim, j in sims[:k]:
        step = next(s for s, item in enumerate(reversed(query), start=1) if item in sets[j])
        for item in sets[j]:
            scores[item] += f32(sim * f32(1 / step))
    return scores


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k, sample_size", [(1, 3), (3, 6), (4, 0)])
def test_session_rec_scoring_matches_python_reference(seed, k, sample_size):
    rng = np.random.default_rng(seed)
    n_items = 12
    train_rows = [rng.integers(0, n_items, rng.integers(1, 7)).tolist() for _ in range(40)]
    queries = [rng.integers(0, n_items, rng.integers(1, 6)).tolist() for _ in range(30)]
    model = VSKNN(neighbours=k, sample_size=sample_size, backfill=False, batch_size=7,
                  scoring="session-rec").fit(S(train_rows, n_items))
    for q, row in zip(queries, model.score(S(queries, n_items))):
        np.testing.assert_allclose(row, reference_session_rec(train_rows, q, n_items, k, sample_size),
                                   rtol=1e-5, atol=1e-6, err_msg=f"query {q}")


# ----------------------------------------------------------------- EASE
def test_ease_matches_closed_form():
    rng = np.random.default_rng(0)
    rows = [rng.choice(8, rng.integers(1, 5), replace=False).tolist() for _ in range(30)]
    lam = 3.0
    x = np.zeros((30, 8))
    for r, row in enumerate(rows):
        x[r, row] = 1
    p = np.linalg.inv(x.T @ x + lam * np.eye(8))
    b = np.eye(8) - p @ np.diag(1 / np.diag(p))
    np.fill_diagonal(b, 0)  # already ~0 by construction
    m = EASE(lam=lam).fit(S(rows, 8))
    np.testing.assert_allclose(m.weights_, b, rtol=1e-5, atol=1e-6)
    assert np.all(np.diag(m.weights_) == 0)
    q = [[0, 3], [7], [1, 2, 5]]
    xq = np.zeros((3, 8))
    for r, row in enumerate(q):
        xq[r, row] = 1
    np.testing.assert_allclose(m.score(S(q, 8)), xq @ b, rtol=1e-5, atol=1e-6)


def test_ease_refuses_large_catalogues():
    with pytest.raises(ValueError, match="max_items"):
        EASE(max_items=4).fit(S([[0, 1]], 5))
    EASE(max_items=5).fit(S([[0, 1]], 5))


# ----------------------------------------------------------------- the protocol, every model
PROTO_TRAIN = [[0, 1, 2], [1, 2, 3], [2, 4], [0, 4, 5], [3, 5], [1, 5, 0], [4, 2, 1]]
PROTO_QUERIES = [[0], [1, 2], [5, 4], [3, 3, 1]]
ALL_MODELS = [
    Popularity(), Popularity(distinct_per_row=False),
    SequentialRules(steps=3), SequentialRules(backfill=False, prune=2),
    ItemKNN(), ItemKNN(history="all", neighbours=2),
    SessionKNN(neighbours=3, sample_size=4), SessionKNN(similarity="dot", backfill=False),
    VSKNN(neighbours=2), EASE(lam=1.0), SLIM(l1=0.1, l2=1.0, neighbours=3),
]
IDS = [repr(m) for m in ALL_MODELS]


def fresh(model):
    return type(model)(**model.get_params())


@pytest.mark.parametrize("model", ALL_MODELS, ids=IDS)
def test_score_shape_dtype_and_narrow_histories(model):
    m = fresh(model).fit(S(PROTO_TRAIN, 7))  # item 6 never clicked
    s = m.score(S(PROTO_QUERIES, 7))
    assert s.shape == (4, 7) and s.dtype == np.float32 and np.isfinite(s).all()
    # histories built without n_items (here 6 < 7) are scored over all the model's items
    np.testing.assert_array_equal(m.score(S(PROTO_QUERIES)), s)
    with pytest.raises(ValueError, match="items"):
        m.score(S([[7]], 8))


@pytest.mark.parametrize("model", ALL_MODELS, ids=IDS)
def test_save_load_round_trip(model, tmp_path):
    m = fresh(model).fit(S(PROTO_TRAIN, 7))
    path = tmp_path / "model.npz"
    m.save(path)
    loaded = Recommender.load(path)
    assert type(loaded) is type(m) and loaded.get_params() == m.get_params()
    assert loaded.n_items_ == 7
    np.testing.assert_array_equal(loaded.score(S(PROTO_QUERIES, 7)), m.score(S(PROTO_QUERIES, 7)))
    with np.load(path, allow_pickle=False) as z:  # no object arrays anywhere
        assert all(z[name].dtype != object for name in z.files)


@pytest.mark.parametrize("model", ALL_MODELS, ids=IDS)
def test_score_and_save_before_fit_raise(model, tmp_path):
    m = fresh(model)
    with pytest.raises(RuntimeError, match="not fitted"):
        m.score(S(PROTO_QUERIES, 7))
    with pytest.raises(RuntimeError, match="not fitted"):
        m.recommend(S(PROTO_QUERIES, 7))
    with pytest.raises(RuntimeError, match="not fitted"):
        m.save(tmp_path / "m.npz")


@pytest.mark.parametrize("model", ALL_MODELS, ids=IDS)
def test_get_set_params(model):
    m = fresh(model)
    params = m.get_params()
    assert params == model.get_params() and params  # every model has hyperparameters
    name = next(iter(params))
    assert m.set_params(**{name: params[name]}) is m
    with pytest.raises(ValueError, match="no parameter"):
        m.set_params(not_a_param=1)
    assert repr(m).startswith(type(m).__name__ + "(")
    assert model_class(type(m).__name__) is type(m)


@pytest.mark.parametrize("model", ALL_MODELS, ids=IDS)
def test_recommend_best_first_and_exclude_seen(model):
    m = fresh(model).fit(S(PROTO_TRAIN, 7))
    h = S(PROTO_QUERIES, 7)
    scores = m.score(h)
    items, values = m.recommend(h, k=3)
    assert items.shape == values.shape == (4, 3)
    np.testing.assert_array_equal(values, np.take_along_axis(scores, items, axis=1))
    assert np.all(np.diff(values, axis=1) <= 0)          # best first
    assert np.all(values[:, -1] >= np.sort(scores, axis=1)[:, -3])  # and really the top 3
    items, values = m.recommend(h, k=3, exclude_seen=True)
    for row, hist in zip(items, PROTO_QUERIES):
        assert not set(row.tolist()) & set(hist)
    assert np.isfinite(values).all()


@pytest.mark.parametrize("model", ALL_MODELS, ids=IDS)
def test_fit_and_score_leave_inputs_alone(model):
    train, hist = S(PROTO_TRAIN, 7), S(PROTO_QUERIES, 7)
    m = fresh(model).fit(train)
    m.score(hist)
    m.recommend(hist, exclude_seen=True)
    assert train.to_lists() == PROTO_TRAIN and hist.to_lists() == PROTO_QUERIES


def test_refit_replaces_state():
    m = SessionKNN(neighbours=2, backfill=False).fit(S([[0, 1]], 3))
    first = m.score(S([[0]], 3))
    m.fit(S([[0, 2]], 3))
    np.testing.assert_allclose(m.score(S([[0]], 3))[0], [1 / R2, 0, 1 / R2], rtol=1e-6)
    assert not np.array_equal(first, m.score(S([[0]], 3)))


def test_load_unknown_class_errors(tmp_path):
    path = tmp_path / "bogus.npz"
    np.savez(path, __class__=np.array("NoSuchModel"), __params__=np.array("{}"), n_items_=np.array(3))
    with pytest.raises(ValueError, match="unknown model class"):
        Recommender.load(path)
    with pytest.raises(KeyError, match="unknown model"):
        model_class("NoSuchModel")


def test_save_accepts_numpy_scalar_params(tmp_path):
    # grids built with np.arange / np.linspace hand numpy scalars to __init__
    m = SessionKNN(neighbours=np.int64(2), sample_size=np.int32(0)).fit(S(PROTO_TRAIN, 7))
    m.save(tmp_path / "m.npz")
    loaded = Recommender.load(tmp_path / "m.npz")
    assert loaded.get_params()["neighbours"] == 2
    np.testing.assert_array_equal(loaded.score(S(PROTO_QUERIES, 7)), m.score(S(PROTO_QUERIES, 7)))


def test_neighbour_count_has_one_name_and_the_old_one_warns(tmp_path):
    """`neighbours` on every baseline with a neighbour count; SessionKNN(k=) still works for a
    release, and models and bundles saved with "k" load under the new name."""
    import json
    import warnings

    from sketchrec.bundle import load_bundle, save_bundle
    for cls in (SessionKNN, VSKNN):
        with pytest.warns(DeprecationWarning, match=r"k=\) is deprecated: use neighbours="):
            old = cls(k=3, sample_size=4)
        assert old.get_params() == cls(neighbours=3, sample_size=4).get_params()
        assert "k" not in old.get_params() and "k=" not in repr(old)
        with pytest.raises(TypeError, match="both"):
            cls(k=3, neighbours=3)
    assert all("neighbours" in c().get_params() for c in (ItemKNN, SessionKNN, VSKNN))
    # a model saved before the rename: its parameters say "k"
    m = VSKNN(neighbours=2, sample_size=0).fit(S(PROTO_TRAIN, 7))
    path = tmp_path / "old.npz"
    arrays = {name: np.array(getattr(m, name)) for name in ("n_items_",)}
    params = {("k" if k == "neighbours" else k): v for k, v in m.saved_params().items() if k != "threads"}
    np.savez(path, __class__=np.array("VSKNN"), __params__=np.array(json.dumps(params)), **arrays,
             **m.state_arrays())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)      # loading an old file does not nag
        loaded = Recommender.load(path)
        VSKNN.check_params(params)
    assert loaded.neighbours == 2
    np.testing.assert_array_equal(loaded.score(S(PROTO_QUERIES, 7)), m.score(S(PROTO_QUERIES, 7)))
    # and a bundle whose manifest says "k"
    version = save_bundle(tmp_path / "b", m)
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["params"] = params
    from sketchrec.bundle import commit_version, new_version
    tmp = new_version(tmp_path / "b")
    for f in ("weights.safetensors",):
        (tmp / f).write_bytes((version / f).read_bytes())
    commit_version(tmp, {k: manifest[k] for k in ("model_class", "params", "n_items", "metrics", "config")})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        bundle = load_bundle(tmp_path / "b")
    assert bundle.model.neighbours == 2
    np.testing.assert_array_equal(bundle.model.score(S(PROTO_QUERIES, 7)), m.score(S(PROTO_QUERIES, 7)))


@pytest.mark.parametrize("cls", [Popularity, SequentialRules, ItemKNN, SessionKNN, VSKNN, EASE, SLIM])
def test_threads_change_nothing_but_the_thread_count(cls):
    import numba
    before = numba.get_num_threads()
    params = {"prune": 2} if cls is SequentialRules else {"lam": 1.0} if cls is EASE else {}
    one = cls(threads=1, **params).fit(S(PROTO_TRAIN, 7))
    every = cls(**params).fit(S(PROTO_TRAIN, 7))
    np.testing.assert_array_equal(one.score(S(PROTO_QUERIES, 7)), every.score(S(PROTO_QUERIES, 7)))
    assert numba.get_num_threads() == before               # scoped to the call
    with pytest.raises(ValueError, match="threads"):
        cls.check_params({"threads": 0})


def test_model_short_names():
    assert set(MODELS) == {"pop", "sr", "sknn", "vsknn", "iknn", "ease", "rp3beta", "slim", "ials", "emde", "srgnn", "tagnn"}
    assert MODELS["vsknn"] is VSKNN


# ----------------------------------------------------------------- real clicks
@pytest.mark.needs_dataset("yoochoose-100k")
def test_yoochoose_sample_sknn_beats_popularity(shared):
    from sketchrec.data import read_interactions
    from sketchrec.eval.protocols import evaluate_next_item

    tr_path = shared / "yoochoose-sample/yoochoose-clicks-100k_train_tr.txt"
    va_path = shared / "yoochoose-sample/yoochoose-clicks-100k_train_valid.txt"
    cols = dict(user="SessionId", item="ItemId", timestamp="Time")
    tr = read_interactions(tr_path, **cols)
    va = read_interactions(va_path, **cols)
    # one item id space: map the validation items through the training IdMap
    look = tr.item_ids.lookup(va.item_ids.to_external(va.item))
    va = va.select(look.known)
    va = replace(va, item=look.internal[look.known].astype(np.int32), item_ids=tr.item_ids)
    train, valid = tr.to_sessions(), va.to_sessions()
    assert valid.n_items == train.n_items == len(tr.item_ids)
    prefixes, targets = expand_prefixes(valid)
    assert len(targets) > 10_000
    hr = {}
    for model in (Popularity(), SessionKNN(), VSKNN()):
        model.fit(train)
        assert model.score(prefixes.take(np.arange(5))).shape == (5, train.n_items)
        metrics, _ = evaluate_next_item(model, prefixes, targets, ks=(20,), batch_size=4000,
                                        progress=False)
        hr[type(model).__name__] = metrics["HR@20"]
    assert hr["Popularity"] < 0.2
    assert hr["SessionKNN"] > 3 * hr["Popularity"] and hr["SessionKNN"] > 0.45
    assert hr["VSKNN"] > 3 * hr["Popularity"] and hr["VSKNN"] > 0.45
