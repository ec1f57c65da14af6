"""Graph building and Cleora propagation: exact values on small graphs, invariances."""

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from sketchrec.data import IdMap, Interactions
from sketchrec.graph import Cleora, Graph, embed, initial_vectors, transition_matrix


def dense_reference(adjacency, dim, iterations, seed=0, propagation="left"):
    m = transition_matrix(adjacency, propagation).toarray().astype(np.float64)
    t = initial_vectors(adjacency.shape[0], dim, seed).astype(np.float64)
    for _ in range(iterations):
        t = m @ t
        norm = np.linalg.norm(t, axis=1, keepdims=True)
        t = t / np.where(norm > 0, norm, 1)
    return t


def random_graph(n=300, e=2000, seed=0, weighted=True):
    rng = np.random.default_rng(seed)
    w = rng.random(e).astype(np.float32) + 0.1 if weighted else None
    return Graph.from_edges(rng.integers(0, n, e), rng.integers(0, n, e), w, n_nodes=n)


def test_transition_matrix_uses_weights():
    # path 0 - 1 - 2 with weights 1 and 3: from node 1 the walk goes to 2 with p = 3/4
    g = Graph.from_edges([0, 1], [1, 2], [1.0, 3.0])
    m = transition_matrix(g.adjacency).toarray()
    np.testing.assert_allclose(m, [[0, 1, 0], [0.25, 0, 0.75], [0, 1, 0]])
    s = transition_matrix(g.adjacency, "symmetric").toarray()
    # D = diag(1, 4, 3): S_01 = 1/sqrt(1*4), S_12 = 3/sqrt(4*3)
    np.testing.assert_allclose(s[0, 1], 0.5, rtol=1e-6)
    np.testing.assert_allclose(s[1, 2], 3 / np.sqrt(12), rtol=1e-6)
    with pytest.raises(ValueError, match="propagation"):
        transition_matrix(g.adjacency, "right")


def test_initial_vectors_are_blockwise_consistent_and_uniform():
    full = initial_vectors(50, 16, seed=3)
    np.testing.assert_array_equal(full[10:20, 4:9], initial_vectors(10, 5, 3, row_start=10, col_start=4))
    big = initial_vectors(2000, 64, seed=1)
    assert -1 <= big.min() < -0.99 and 0.99 < big.max() < 1
    assert abs(big.mean()) < 0.01
    assert not np.array_equal(initial_vectors(5, 4, 1), initial_vectors(5, 4, 2))


@pytest.mark.parametrize("propagation", ["left", "symmetric"])
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_cleora_matches_dense_reference(propagation, backend):
    g = random_graph()
    model = Cleora(dim=24, iterations=3, propagation=propagation, backend=backend, progress=False).fit(g)
    np.testing.assert_allclose(model.vectors_, dense_reference(g.adjacency, 24, 3, propagation=propagation),
                               atol=2e-6)
    assert np.allclose(np.linalg.norm(model.vectors_, axis=1), 1, atol=1e-5)


def test_weights_change_the_embedding():
    a = random_graph(weighted=False)
    b = Graph.from_edges(*a.adjacency.nonzero(), np.arange(a.n_edges) % 5 + 1.0, n_nodes=a.n_nodes,
                         directed=True)
    assert not np.allclose(embed(a, 16, 2, progress=False).vectors, embed(b, 16, 2, progress=False).vectors)


def test_same_result_whatever_the_thread_count():
    code = ("import numpy as np, sys; sys.path.insert(0, %r);"
            "from tests.test_cleora import random_graph; from sketchrec.graph import embed;"
            "np.save(sys.argv[1], embed(random_graph(2000, 20000), 32, 3, progress=False).vectors)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outs = []
    for threads in ("1", "2"):
        path = f"/tmp/sketchrec_threads_{threads}.npy"
        subprocess.run([sys.executable, "-c", code % root, path], check=True,
                       env={**os.environ, "NUMBA_NUM_THREADS": threads})
        outs.append(np.load(path))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_bipartite_graph_from_interactions_and_event_filter():
    inter = Interactions(user=np.array([0, 0, 1, 1], np.int32), item=np.array([0, 1, 1, 1], np.int32),
                         user_ids=IdMap(["u0", "u1"], "user"), item_ids=IdMap(["a", "b"], "item"),
                         event=np.array([0, 1, 0, 0], np.int16), event_ids=IdMap(["view", "buy"], "event"))
    g = Graph.from_interactions(inter)
    # nodes: u0, u1, a, b; u1-b has weight 2 (two events)
    assert g.n_nodes == 4 and g.adjacency[1, 3] == 2 and g.adjacency[3, 1] == 2
    assert g.node_ids().to_external([0, 3]) == ["user:u0", "item:b"]
    views = Graph.from_interactions(inter, events=["view"])
    assert views.adjacency[0, 3] == 0 and views.adjacency[0, 2] == 1
    emb = embed(g, 8, 2, progress=False)
    assert len(emb) == 4 and emb.vectors.dtype == np.float32


def test_hyperedges_clique_star_reflexive_transient():
    table = pa.table({"user": ["u1", "u2", "u3"], "items": ["a b c", "b", "a b c d e"]})
    g = Graph.from_columns(table, ["transient::user", "complex::reflexive::items"], max_clique=4)
    # row 0 (4 members) is a clique: u1-a, u1-b, u1-c, a-b, a-c, b-c; row 1: u2-b;
    # row 2 (6 members > 4) is a star around a hub node linked to u3, a, b, c, d, e
    assert g.meta["star_rows"] == 1 and g.type_names == ["user", "items", "_hyperedge"]
    off = g.offsets()
    a, b, c = (off["items"] + g.type_ids["items"].lookup([x]).internal[0] for x in "abc")
    assert g.adjacency[a, b] == 1 and g.adjacency[b, c] == 1
    assert g.n_edges == 2 * (6 + 1 + 6)
    emb = Cleora(dim=8, iterations=2, progress=False).fit(g).embeddings_
    # transient users and the hub get no embedding; the five items do
    assert sorted(emb.ids.keys.to_pylist()) == [f"items:{x}" for x in "abcde"]
    plain = Graph.from_columns(table, ["user", "complex::items"], expansion="star")
    assert plain.meta["star_rows"] == 3
    with pytest.raises(ValueError, match="reflexive needs a complex"):
        Graph.from_columns(table, ["reflexive::user", "complex::items"])
    with pytest.raises(ValueError, match="no column"):
        Graph.from_columns(table, ["nope"])


def test_inductive_embedding_equals_one_propagation_step():
    g = random_graph(200, 1500)
    model = Cleora(dim=16, iterations=3, keep_history=True, progress=False).fit(g)
    # a node's own final embedding is exactly "embed_new" of its neighbours (weights = its edges)
    node = 7
    row = g.adjacency[node]
    np.testing.assert_allclose(model.embed_new([row.indices], [row.data])[0], model.vectors_[node], atol=1e-6)
    assert not model.embed_new([[]]).any()


def test_incremental_update_equals_refit():
    rng = np.random.default_rng(1)
    n, e = 3000, 6000
    src, dst = rng.integers(0, n, e), rng.integers(0, n, e)
    model = Cleora(dim=16, iterations=3, keep_history=True, progress=False)
    model.fit(Graph.from_edges(src, dst, n_nodes=n))
    new_src, new_dst = np.r_[src, [5, n + 1]], np.r_[dst, [n, 17]]
    g2 = Graph.from_edges(new_src, new_dst, n_nodes=n + 2)
    model.update(g2)
    full = Cleora(dim=16, iterations=3, progress=False).fit(g2)
    np.testing.assert_allclose(model.vectors_, full.vectors_, atol=1e-6)
    assert model.embeddings_.provenance["updated_rows"] < n  # only the neighbourhood was recomputed
    with pytest.raises(RuntimeError, match="keep_history"):
        Cleora(dim=4, iterations=1, progress=False).fit(g2).update(g2)


def test_embeddings_save_load_and_similar(tmp_path):
    g = random_graph(100, 600)
    emb = embed(g, 8, 2, progress=False)
    emb.save(tmp_path / "e")
    again = type(emb).load(tmp_path / "e", mmap=True)
    np.testing.assert_array_equal(again.vectors, emb.vectors)
    assert again.provenance["method"] == "cleora"
    items, sims = emb.most_similar(np.array([0, 1]), k=3)
    assert items.shape == (2, 3) and 0 not in items[0] and np.all(np.diff(sims, axis=1) <= 0)
    vecs, unknown = emb.lookup([0, 12345])
    assert unknown == [12345] and not vecs[1].any()


def test_read_edges_one_id_space(tmp_path):
    path = tmp_path / "edges.tsv"
    path.write_text("a\tb\tw\nx\ty\t1\ny\tz\t2\nz\tx\t0.5\n")
    g = Graph.read_edges(path, src="a", dst="b", weight="w")
    assert g.n_nodes == 3 and g.node_ids().to_external([0, 1, 2]) == ["x", "y", "z"]
    assert g.adjacency[1, 2] == 2 and g.adjacency[2, 1] == 2 and g.adjacency[0, 2] == 0.5


@pytest.mark.parametrize("directed", [False, True])
def test_adjacency_kernel_matches_scipy(directed):
    from sketchrec.graph.build import _adjacency
    rng = np.random.default_rng(0)
    n, e = 500, 8000
    src, dst = rng.integers(0, n, e), rng.integers(0, n, e)
    w = rng.random(e).astype(np.float32)
    got = _adjacency(src, dst, w, n, directed)
    if not directed:
        loop = src == dst
        src, dst, w = np.r_[src, dst[~loop]], np.r_[dst, src[~loop]], np.r_[w, w[~loop]]
    ref = sp.csr_matrix((w, (src, dst)), shape=(n, n))
    ref.sum_duplicates()
    np.testing.assert_array_equal(got.indptr, ref.indptr)
    np.testing.assert_array_equal(got.indices, ref.indices)
    np.testing.assert_allclose(got.data, ref.data, rtol=1e-6)


def test_self_loops_option_is_a_lazy_walk():
    g = Graph.from_edges([0, 1], [1, 2])
    lazy = Cleora(dim=8, iterations=2, self_loops=1.0, progress=False).fit(g).vectors_
    ref = dense_reference(g.adjacency + sp.identity(3, format="csr"), 8, 2)
    np.testing.assert_allclose(lazy, ref, atol=1e-6)
