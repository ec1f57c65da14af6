import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, ndcg_score

from sketchrec.eval import (
    cmc_accuracy, hit_rate, hit_rate_at_k, hits_at_k, linkpred_ranks, map_at_k, mrr,
    mrr_at_k, ndcg_at_k, ndcg_single, precision_at_k, ranking_metrics, recall_at_k,
    relevant_counts, retrieval_average_precision, retrieval_map, session_metrics,
    summarise, target_ranks, topk,
)

L2, L3, L4, L5, L11 = (math.log2(x) for x in (2, 3, 4, 5, 11))


# ------------------------------------------------------------------ ranks
def test_target_ranks_tie_policies():
    s = np.array([[0.1, 0.4, 0.4, 0.2, 0.4],
                  [0.1, 0.4, 0.4, 0.2, 0.4],
                  [0.1, 0.4, -np.inf, 0.2, 0.4]])
    t = np.array([1, 3, 2])
    # row 0: target 0.4; #greater=0, #equal others=2 -> pess 1+0+2=3, opt 1, avg 1+0+2/2=2
    # row 1: target 0.2; #greater=3 (three 0.4s), no ties -> 4 for all policies
    # row 2: target excluded (-inf) -> last = N = 5
    np.testing.assert_array_equal(target_ranks(s, t), [3, 4, 5])
    np.testing.assert_array_equal(target_ranks(s, t, ties="optimistic"), [1, 4, 5])
    np.testing.assert_array_equal(target_ranks(s, t, ties="average"), [2.0, 4.0, 5.0])
    assert target_ranks(s, t).dtype == np.int64
    assert target_ranks(s, t, ties="average").dtype == np.float64
    # single item
    np.testing.assert_array_equal(target_ranks(np.array([[7.0]]), [0]), [1])
    # chunking gives the same result
    np.testing.assert_array_equal(target_ranks(s, t, chunk_rows=1), [3, 4, 5])


def ref_target_rank(row, t, ties):
    """Position of t in a stable sort on -score with t placed last/first among ties."""
    if not np.isfinite(row[t]):
        return len(row)
    ranks = {}
    for mode, key in (("pessimistic", 1), ("optimistic", -1)):
        tie = np.zeros(len(row))
        tie[t] = key
        order = np.lexsort((tie, -row))
        ranks[mode] = int(np.flatnonzero(order == t)[0]) + 1
    if ties == "average":
        return (ranks["pessimistic"] + ranks["optimistic"]) / 2
    return ranks[ties]


@pytest.mark.parametrize("ties", ["pessimistic", "optimistic", "average"])
def test_target_ranks_vs_argsort_loop(ties):
    rng = np.random.default_rng(3)
    s = rng.integers(0, 6, size=(200, 40)).astype(np.float64)
    s[rng.random(s.shape) < 0.05] = -np.inf
    t = rng.integers(0, 40, size=200)
    expected = [ref_target_rank(s[i], t[i], ties) for i in range(200)]
    np.testing.assert_array_equal(target_ranks(s, t, ties=ties, chunk_rows=17), expected)


def test_linkpred_ranks():
    pos = np.array([0.5, 0.5, -np.inf])
    neg = np.array([[0.1, 0.5, 0.9], [0.1, 0.2, 0.3], [0.0, 0.0, 0.0]])
    # row 0: 0.9 > pos (1 greater), one tie -> pess 3, opt 2, avg 2.5
    # row 1: nothing above -> 1; row 2: non-finite positive -> M + 1 = 4
    np.testing.assert_array_equal(linkpred_ranks(pos, neg), [3, 1, 4])
    np.testing.assert_array_equal(linkpred_ranks(pos, neg, "optimistic"), [2, 1, 4])
    np.testing.assert_array_equal(linkpred_ranks(pos, neg, "average"), [2.5, 1, 4])
    # MRR of pessimistic ranks: (1/3 + 1 + 1/4) / 3
    assert mrr(linkpred_ranks(pos, neg)).mean() == pytest.approx((1 / 3 + 1 + 1 / 4) / 3)


# ------------------------------------------------------------------ single target
def test_single_target_metrics():
    r = np.array([1, 3, 10, 21])
    np.testing.assert_array_equal(hit_rate(r, 10), [1, 1, 1, 0])          # rank <= 10
    np.testing.assert_allclose(mrr(r), [1, 1 / 3, 1 / 10, 1 / 21])          # 1/rank
    np.testing.assert_allclose(mrr(r, 10), [1, 1 / 3, 1 / 10, 0])           # cut at 10
    # 1/log2(rank+1): 1/log2(2)=1, 1/log2(4)=0.5, 1/log2(11), 0 (21 > 10)
    np.testing.assert_allclose(ndcg_single(r, 10), [1, 0.5, 1 / L11, 0])
    m = session_metrics(r, ks=(10, 20))
    assert list(m) == ["HR@10", "MRR@10", "NDCG@10", "HR@20", "MRR@20", "NDCG@20"]
    assert m["HR@10"] == pytest.approx(3 / 4)
    assert m["MRR@10"] == pytest.approx((1 + 1 / 3 + 0.1) / 4)
    assert m["NDCG@10"] == pytest.approx((1 + 0.5 + 1 / L11) / 4)
    assert m["HR@20"] == pytest.approx(3 / 4)                               # 21 > 20
    assert m["MRR@20"] == pytest.approx((1 + 1 / 3 + 0.1) / 4)
    assert all(isinstance(v, float) for v in m.values())


def test_single_target_vs_python_reference():
    rng = np.random.default_rng(4)
    r = rng.integers(1, 60, size=300)
    for k in (1, 5, 20):
        np.testing.assert_allclose(hit_rate(r, k), [1.0 if x <= k else 0.0 for x in r])
        np.testing.assert_allclose(mrr(r, k), [1.0 / x if x <= k else 0.0 for x in r])
        np.testing.assert_allclose(ndcg_single(r, k), [1 / math.log2(x + 1) if x <= k else 0 for x in r])


# ------------------------------------------------------------------ multi relevant
TOP = np.array([[3, 1, 4, 0], [2, 5, 6, 7], [1, 2, 3, 4]])
INDPTR = np.array([0, 3, 4, 4])          # row0 {1, 0, 9}, row1 {8}, row2 {} (empty)
INDICES = np.array([1, 0, 9, 8])


def test_hits_at_k_and_counts():
    hits = hits_at_k(TOP, INDPTR, INDICES)
    np.testing.assert_array_equal(hits, [[0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert hits.dtype == bool
    np.testing.assert_array_equal(relevant_counts(INDPTR), [3, 1, 0])
    # negative padding is never a hit, even next to row boundaries
    pad = hits_at_k(np.array([[-1, 0], [5, -1]]), np.array([0, 1, 2]), np.array([4, 5]))
    np.testing.assert_array_equal(pad, [[0, 0], [1, 0]])


def test_multi_relevant_hand_computed():
    hits = hits_at_k(TOP, INDPTR, INDICES)
    n = relevant_counts(INDPTR)
    nan = np.nan
    # P@4: row0 2 hits / 4; row1 0/4; row2 empty -> NaN
    np.testing.assert_allclose(precision_at_k(hits, n), [0.5, 0, nan])
    # R@4: 2/3, 0/1
    np.testing.assert_allclose(recall_at_k(hits, n), [2 / 3, 0, nan])
    np.testing.assert_allclose(hit_rate_at_k(hits, n), [1, 0, nan])
    # NDCG@4 row0: DCG = 1/log2(3) + 1/log2(5) (hits at 2, 4); IDCG = 1 + 1/log2(3) + 1/log2(4)
    nd0 = (1 / L3 + 1 / L5) / (1 + 1 / L3 + 1 / L4)
    np.testing.assert_allclose(ndcg_at_k(hits, n), [nd0, 0, nan])
    # AP@4 row0: (P@2 + P@4) / min(3, 4) = (1/2 + 2/4) / 3 = 1/3
    np.testing.assert_allclose(map_at_k(hits, n), [1 / 3, 0, nan])
    # first hit at position 2 -> 1/2
    np.testing.assert_allclose(mrr_at_k(hits, n), [0.5, 0, nan])
    # k=2 uses only the first two columns
    np.testing.assert_allclose(precision_at_k(hits, n, 2), [0.5, 0, nan])        # 1/2
    np.testing.assert_allclose(recall_at_k(hits, n, 2), [1 / 3, 0, nan])         # 1/3
    np.testing.assert_allclose(ndcg_at_k(hits, n, 2), [(1 / L3) / (1 + 1 / L3), 0, nan])
    np.testing.assert_allclose(map_at_k(hits, n, 2), [0.25, 0, nan])             # (1/2)/min(3,2)
    np.testing.assert_allclose(mrr_at_k(hits, n, 1), [0, 0, nan])


def test_k_larger_than_items():
    # N = 3 items, k = 5: topk returns 3 columns; both items 0 and 2 are relevant.
    items, _ = topk(np.array([[0.9, 0.5, 0.7]]), 5)                  # -> [0, 2, 1]
    hits = hits_at_k(items, np.array([0, 2]), np.array([0, 1]))      # -> [T, F, T]
    n = np.array([2])
    np.testing.assert_allclose(precision_at_k(hits, n, 5), [2 / 5])  # divide by k
    np.testing.assert_allclose(recall_at_k(hits, n, 5), [1.0])
    # DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    np.testing.assert_allclose(ndcg_at_k(hits, n, 5), [1.5 / (1 + 1 / L3)])
    # AP = (P@1 + P@3) / min(2, 5) = (1 + 2/3) / 2 = 5/6
    np.testing.assert_allclose(map_at_k(hits, n, 5), [5 / 6])
    np.testing.assert_allclose(mrr_at_k(hits, n, 5), [1.0])


def test_summarise_counts_nan_rows():
    per_row = ranking_metrics(TOP, INDPTR, INDICES, ks=(4,))
    out = summarise(per_row)
    assert out["n_rows"] == 3 and out["n_nan_rows"] == 1
    assert out["Precision@4"] == pytest.approx((0.5 + 0) / 2)      # NaN row skipped, not counted as 0
    assert out["MAP@4"] == pytest.approx((1 / 3 + 0) / 2)
    assert math.isnan(summarise({"x": np.array([np.nan])})["x"])


def py_reference(top, rel_sets, k):
    out = {"P": [], "R": [], "MAP": [], "MRR": []}
    for items, rel in zip(top, rel_sets):
        items = list(items[:k])
        h = [1 if i in rel else 0 for i in items]
        out["P"].append(sum(h) / k)
        out["R"].append(sum(h) / len(rel))
        ap = sum(sum(h[: i + 1]) / (i + 1) for i in range(len(h)) if h[i])
        out["MAP"].append(ap / min(len(rel), k))
        out["MRR"].append(next((1 / (i + 1) for i in range(len(h)) if h[i]), 0.0))
    return out


def random_relevance(rng, b, n):
    rel_sets = [set(rng.choice(n, rng.integers(1, 12), replace=False).tolist()) for _ in range(b)]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rel_sets])])
    indices = np.array([i for r in rel_sets for i in sorted(r)], dtype=np.int64)
    return rel_sets, indptr, indices


def test_multi_relevant_vs_python_and_sklearn():
    rng = np.random.default_rng(5)
    b, n = 150, 60
    scores = rng.random((b, n))                             # continuous -> no ties
    rel_sets, indptr, indices = random_relevance(rng, b, n)
    y_true = np.zeros((b, n))
    for i, r in enumerate(rel_sets):
        y_true[i, list(r)] = 1
    for k in (1, 5, 20):
        items, _ = topk(scores, k)
        hits = hits_at_k(items, indptr, indices)
        cnt = relevant_counts(indptr)
        ref = py_reference(items, rel_sets, k)
        np.testing.assert_allclose(precision_at_k(hits, cnt, k), ref["P"])
        np.testing.assert_allclose(recall_at_k(hits, cnt, k), ref["R"])
        np.testing.assert_allclose(map_at_k(hits, cnt, k), ref["MAP"])
        np.testing.assert_allclose(mrr_at_k(hits, cnt, k), ref["MRR"])
        sk = [ndcg_score(y_true[i:i + 1], scores[i:i + 1], k=k) for i in range(b)]
        np.testing.assert_allclose(ndcg_at_k(hits, cnt, k), sk, rtol=1e-12)


# ------------------------------------------------------------------ retrieval
SIM = np.array([[0.9, 0.8, 0.7, 0.6],
                [0.1, 0.4, 0.3, 0.2],
                [0.5, 0.5, 0.5, 0.5]])
GAL = np.array([0, 1, 0, 2])
QRY = np.array([0, 2, 5])                # query 2 has no relevant gallery item


def test_retrieval_hand_computed():
    # q0 order 0,1,2,3 -> relevant at 1, 3: AP = (1/1 + 2/3) / 2 = 5/6
    # q1 order 1,2,3,0 -> relevant (item 3) at 3: AP = 1/3 ; q2 excluded
    ap = retrieval_average_precision(SIM, QRY, GAL)
    np.testing.assert_allclose(ap, [5 / 6, 1 / 3, np.nan])
    with pytest.warns(RuntimeWarning, match="1 of 3"):
        m, n_ex = retrieval_map(SIM, QRY, GAL, return_count=True)
    assert m == pytest.approx((5 / 6 + 1 / 3) / 2) and n_ex == 1   # = 7/12
    # CMC: first correct at 1 (q0), 3 (q1) -> Acc@1 = 1/2, Acc@2 = 1/2, Acc@3 = 1
    with pytest.warns(RuntimeWarning):
        acc, n_ex = cmc_accuracy(SIM, QRY, GAL, ks=(1, 2, 3), return_count=True)
    assert acc == {"Acc@1": 0.5, "Acc@2": 0.5, "Acc@3": 1.0} and n_ex == 1


def test_retrieval_ties_by_gallery_index():
    sim = np.array([[0.5, 0.5, 0.5]])
    gal, q = np.array([1, 0, 0]), np.array([0])
    # order 0,1,2 -> relevant at 2, 3: AP = (1/2 + 2/3) / 2 = 7/12; first hit at 2
    assert retrieval_map(sim, q, gal) == pytest.approx(7 / 12)
    assert cmc_accuracy(sim, q, gal, ks=(1, 2)) == {"Acc@1": 0.0, "Acc@2": 1.0}


def test_retrieval_vs_sklearn_and_reference():
    rng = np.random.default_rng(6)
    sim = rng.standard_normal((70, 90))
    ql, gl = rng.integers(0, 12, 70), rng.integers(0, 12, 90)
    gl[:12] = np.arange(12)                                   # every query has a match
    sk = [average_precision_score(gl == ql[i], sim[i]) for i in range(70)]
    np.testing.assert_allclose(retrieval_average_precision(sim, ql, gl, chunk_rows=8), sk)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                        # nothing excluded -> no warning
        assert retrieval_map(sim, ql, gl) == pytest.approx(np.mean(sk))
        acc = cmc_accuracy(sim, ql, gl, ks=(1, 5, 10), chunk_rows=7)
    first = [np.flatnonzero(gl[np.argsort(-sim[i], kind="stable")] == ql[i])[0] + 1 for i in range(70)]
    for k in (1, 5, 10):
        assert acc[f"Acc@{k}"] == pytest.approx(np.mean(np.array(first) <= k))


# ------------------------------------------------------------------ errors
def test_errors_name_argument():
    s = np.zeros((2, 3))
    with pytest.raises(ValueError, match="targets"):
        target_ranks(s, [0, 3])
    with pytest.raises(ValueError, match="ties"):
        target_ranks(s, [0, 1], ties="random")
    with pytest.raises(ValueError, match="ranks"):
        hit_rate(np.array([0, 1]), 5)
    with pytest.raises(ValueError, match="k"):
        mrr(np.array([1, 2]), 0)
    with pytest.raises(ValueError, match="relevant_indptr"):
        hits_at_k(np.zeros((2, 2), int), np.array([0, 1]), np.array([1]))
    with pytest.raises(ValueError, match="n_relevant"):
        precision_at_k(np.ones((2, 2), bool), np.array([1]))
    with pytest.raises(ValueError, match="gallery_labels"):
        retrieval_map(s, [0, 1], [0, 1])
    with pytest.raises(ValueError, match="pos_scores"):
        linkpred_ranks(np.zeros(3), s)
