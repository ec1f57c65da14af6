"""Link prediction and node classification evaluators on planted data."""

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sketchrec.eval.graph_tasks import (C_GRID, changes_paragraph, choose_on_validation, linkpred_comparison,
                                        linkpred_evaluate, linkpred_evaluate_sets, nodeclf_evaluate,
                                        nodeclf_random_splits, split_edges, split_edges_keeping_nodes,
                                        validation_split)


def test_split_edges_is_seeded_and_disjoint():
    edges = np.arange(200).reshape(100, 2)
    train, test = split_edges(edges, 0.1, seed=3)
    assert len(train) == 90 and len(test) == 10
    assert not set(map(tuple, train)) & set(map(tuple, test))
    again = split_edges(edges, 0.1, seed=3)[1]
    np.testing.assert_array_equal(test, again)


def test_split_keeping_nodes_gives_back_the_last_edge_of_each_node():
    # a star (every leaf has one edge), a triangle, a self-loop node and a dense block
    star = np.array([(0, i) for i in range(1, 9)])
    dense = np.array([(a, b) for a in range(10, 20) for b in range(a + 1, 20)])
    edges = np.vstack([star, [[20, 21], [21, 22], [20, 22], [23, 23]], dense])
    n = int(edges.max()) + 1
    old_train, old_test = split_edges(edges, 0.3, seed=4)
    train, val, test = split_edges_keeping_nodes(edges, 0.3, 0.1, seed=4)
    assert len(train) + len(val) + len(test) == len(edges)
    assert {tuple(e) for e in test} <= {tuple(e) for e in old_test}      # split_edges's test edges, minus some
    full_degree, train_degree = (np.bincount(e.ravel(), minlength=n) for e in (edges, train))
    assert np.all(train_degree[full_degree > 0] >= 1)
    lost = (np.bincount(old_train.ravel(), minlength=n) == 0) & (full_degree > 0)
    assert lost.any() and len(test) < len(old_test)                   # the split had to give edges back
    # each node gets exactly one edge back: the star's leaves are distinct, so no fewer moves than lost leaves
    given_back = len(old_test) - len(test) + round(0.1 * len(edges)) - len(val)
    assert lost[1:9].sum() <= given_back <= lost.sum()
    for a, b in zip((train, val, test), split_edges_keeping_nodes(edges, 0.3, 0.1, seed=4)):
        np.testing.assert_array_equal(a, b)
    # nothing to give back: exactly split_edges
    ring = np.array([(i, (i + 1) % 50) for i in range(50)] + [(i, (i + 2) % 50) for i in range(50)])
    tr, va, te = split_edges_keeping_nodes(ring, 0.1, seed=0)
    np.testing.assert_array_equal(te, split_edges(ring, 0.1, seed=0)[1])
    np.testing.assert_array_equal(tr, split_edges(ring, 0.1, seed=0)[0])
    assert len(va) == 0


def test_linkpred_planted_pairs_rank_first_and_random_ones_do_not():
    rng = np.random.default_rng(0)
    n, d = 400, 32
    # nodes 2k and 2k+1 share a vector: every edge links such a pair
    base = rng.normal(size=(n // 2, d)).astype(np.float32)
    vectors = np.repeat(base, 2, axis=0)
    edges = np.stack([np.arange(0, n, 2), np.arange(1, n, 2)], axis=1)
    train, test = edges[:150], edges[150:]
    good = linkpred_evaluate(vectors, train, test, n_candidates=300)
    assert good["HR@10"] > 0.9 and good["MRR"] > 0.5 and good["n_test"] == 50
    noise = linkpred_evaluate(rng.normal(size=(n, d)).astype(np.float32), train, test, n_candidates=300)
    assert noise["MRR"] < 0.1 and noise["HR@1"] <= noise["HR@10"] <= noise["HR@100"]
    both = linkpred_evaluate_sets(vectors, train, {"val": test[:20], "test": test}, n_candidates=300)
    assert both["test"] == good and both["val"]["n_test"] == 20


def test_linkpred_comparison_chooses_each_methods_count_on_validation():
    rng = np.random.default_rng(0)
    n, d = 400, 16
    base = np.repeat(rng.normal(size=(n // 2, d)).astype(np.float32), 2, axis=0)
    noise = rng.normal(size=(n, d)).astype(np.float32)
    edges = np.stack([np.arange(0, n, 2), np.arange(1, n, 2)], axis=1)
    train, val, test = edges[:120], edges[120:160], edges[160:]
    graphs = []

    def embed(graph_edges):
        graphs.append(len(graph_edges))
        # "a" is good at 2 iterations only, "b" at 1 only
        return {"a": {1: noise, 2: base}, "b": {1: base, 2: noise}}

    rows, summary = linkpred_comparison(embed, train, val, test, [1, 2])
    assert graphs == [120, 160]                          # validation graph, then train + validation
    assert summary["a"]["iterations"] == 2 and summary["b"]["iterations"] == 1
    assert summary["a"]["test"]["MRR"] > 0.5 and summary["a"]["test"] == summary["b"]["test"]
    assert [r[0] for r in rows] == [1, 2] and len(rows[0]) == 1 + 2 + 4 * 2
    assert rows[1][1] == f"{summary['a']['val_mrr'][2]:.4f}" and rows[1][3] == f"{summary['a']['test']['MRR']:.4f}"


def _imbalanced(seed=0, n=300, d=8):
    """Two classes, 90% / 10%, told apart by feature 0 only, which is tiny; the others are large noise."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10 == 0).astype(int)
    x = rng.normal(size=(n, d)) * np.r_[1e-3, np.full(d - 1, 50.0)]
    x[:, 0] += 4e-3 * labels
    return x, labels


def test_c_is_chosen_on_validation_after_scaling():
    x, labels = _imbalanced()
    fit, val = np.arange(0, 200), np.arange(200, 300)
    key, C, score = choose_on_validation({"only": x}, labels, fit, val)
    # brute force over the whole grid: the early stop finds the same best score, at the smallest such C
    scaler = StandardScaler().fit(x[fit])
    acc = {c: LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x[fit]), labels[fit])
           .score(scaler.transform(x[val]), labels[val]) for c in C_GRID}
    assert key == "only" and acc[C] == score == max(acc.values()) and C == min(c for c in C_GRID if acc[c] == score)
    assert acc[C_GRID[0]] == 0.9 < score                 # the strongest penalty only predicts the majority class
    # unscaled, C = 1 cannot see the tiny feature: the old evaluator's failure mode
    assert LogisticRegression(C=1.0, max_iter=2000).fit(x[fit], labels[fit]).score(x[val], labels[val]) < score


def test_nodeclf_scales_features_and_never_looks_at_the_test_part():
    CS = (0.0001, 0.1, 10.0)  # a short grid keeps the test fast
    x, labels = _imbalanced(seed=1)
    noise = np.random.default_rng(2).normal(size=x.shape)
    train, test = np.arange(0, 240), np.arange(240, 300)
    out = nodeclf_evaluate({1: noise, 2: x}, labels, train, test, seed=0, Cs=CS)
    assert out["key"] == 2 and out["accuracy"] == 1.0
    # a per-feature affine change is undone by the scaler: same choice, same scores
    rescaled = nodeclf_evaluate({1: noise, 2: x * np.arange(1, 9) * 1e3 - 7.0}, labels, train, test, seed=0, Cs=CS)
    assert rescaled["key"] == 2 and rescaled["C"] == out["C"] and rescaled["accuracy"] == 1.0
    # the test part's labels and vectors play no part in the choice
    flipped = labels.copy()
    flipped[test] = 1 - labels[test]
    other = nodeclf_evaluate({1: noise, 2: x}, flipped, train, test, seed=0, Cs=CS)
    assert (other["key"], other["C"], other["accuracy"]) == (out["key"], out["C"], 0.0)
    moved = x.copy()
    moved[test] *= 1e6
    other = nodeclf_evaluate({1: noise, 2: moved}, labels, train, test, seed=0, Cs=CS)
    assert (other["key"], other["C"]) == (out["key"], out["C"])
    # given validation nodes are used as they are
    given = nodeclf_evaluate({1: noise, 2: x}, labels, train[:180], test, val_idx=train[180:], Cs=CS)
    assert given["key"] == 2
    # the validation nodes come from the training part, stratified
    fit, val = validation_split(labels, train, 0.25, seed=0)
    assert set(fit) | set(val) == set(train) and not set(fit) & set(val)
    assert labels[val].sum() == 6 and len(val) == 60


def test_changes_paragraph_sets_old_figures_beside_new():
    old = {"linkpred_mrr": {"1": [0.09, 0.01], "4": [0.08, 0.07]},
           "nodeclf": {"cora": {"80/20": [0.84, 0.86, 0.72]}, "pubmed": {"80/20": [0.8, 0.8, 0.7]}}}
    linkpred = {"ours": {"iterations": 1, "test": {"MRR": 0.085}}, "pycleora": {"iterations": 4, "test": {"MRR": 0.05}}}
    text = changes_paragraph(old, linkpred, {"cora": {"80/20": {"ours": 0.85, "ours + self-loops": 0.87,
                                                                 "pycleora": 0.83}}})
    assert "old 0.0900 vs 0.0700 (+0.0200), new 0.0850 vs 0.0500 (+0.0350)" in text
    assert "cora 80/20: ours 0.840 → 0.850" in text and "pycleora 0.720 → 0.830 (margin +0.120 → +0.020)" in text
    assert "pubmed" not in text and text.endswith(".") and "for reference" not in text
    assert changes_paragraph({**old, "outside": "X got 0.5"}, None, {}).endswith("for reference, X got 0.5.")


def test_node_classification_single_and_multi_label():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 60)
    vectors = (np.eye(3)[labels] * 5 + rng.normal(scale=0.3, size=(180, 3))).astype(np.float32)
    out = nodeclf_evaluate(vectors, labels, np.arange(0, 180, 2), np.arange(1, 180, 2))
    assert out["accuracy"] == 1.0 and out["key"] is None and out["C"] == C_GRID[0]  # ties: the smallest C
    means = nodeclf_random_splits(vectors, labels, seeds=(0, 1))
    assert means["accuracy"][0] == 1.0 and means["accuracy"][1] == 0.0
    assert [key for key, _ in means["chosen"]] == [None, None]
    multi = sp.csr_matrix(np.stack([labels == 0, labels != 2], axis=1).astype(np.int8))
    res = nodeclf_random_splits(vectors, multi, seeds=(0, 1), Cs=(0.01, 1.0))
    assert res["micro_f1"][0] > 0.95 and set(res) == {"micro_f1", "macro_f1", "chosen"}
