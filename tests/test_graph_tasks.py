"""Link prediction and node classification evaluators on planted data."""

import numpy as np
import scipy.sparse as sp

from sketchrec.eval.graph_tasks import (linkpred_evaluate, nodeclf_evaluate, nodeclf_random_splits,
                                        split_edges)


def test_split_edges_is_seeded_and_disjoint():
    edges = np.arange(200).reshape(100, 2)
    train, test = split_edges(edges, 0.1, seed=3)
    assert len(train) == 90 and len(test) == 10
    assert not set(map(tuple, train)) & set(map(tuple, test))
    again = split_edges(edges, 0.1, seed=3)[1]
    np.testing.assert_array_equal(test, again)


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


def test_node_classification_single_and_multi_label():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 60)
    vectors = (np.eye(3)[labels] * 5 + rng.normal(scale=0.3, size=(180, 3))).astype(np.float32)
    out = nodeclf_evaluate(vectors, labels, np.arange(0, 180, 2), np.arange(1, 180, 2))
    assert out["accuracy"] == 1.0
    means = nodeclf_random_splits(vectors, labels, seeds=(0, 1))
    assert means["accuracy"][0] == 1.0 and means["accuracy"][1] == 0.0
    multi = sp.csr_matrix(np.stack([labels == 0, labels != 2], axis=1).astype(np.int8))
    res = nodeclf_random_splits(vectors, multi, seeds=(0, 1))
    assert res["micro_f1"][0] > 0.95 and set(res) == {"micro_f1", "macro_f1"}
