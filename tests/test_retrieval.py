"""Centroid / instance gallery search and retrieval metrics."""

import numpy as np
import pytest

from sketchrec.retrieval import (CentroidIndex, SearchResult, evaluate_retrieval, group_centroids,
                                 per_query_retrieval_metrics)


def clusters(n_groups=12, per=6, dim=16, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, dim))
    groups = np.repeat(np.arange(n_groups), per)
    return (centres[groups] + noise * rng.normal(size=(len(groups), dim))).astype(np.float32), groups


def test_centroids_are_normalised_means_of_normalised_vectors():
    v = np.array([[3, 0], [0, 5], [1, 1]], dtype=np.float32)
    labels, cents, sizes = group_centroids(v, np.array(["a", "a", "b"]))
    assert list(labels) == ["a", "b"] and list(sizes) == [2, 1]
    np.testing.assert_allclose(cents[0], [2 ** -0.5, 2 ** -0.5], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(cents, axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("mode", ["centroid", "instance"])
def test_exact_search_matches_brute_force(mode):
    v, g = clusters()
    index = CentroidIndex(mode).fit(v, g)
    q = v[::7] + 0.01
    hits = index.search(q, k=5)
    base = index.vectors_
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    expected = np.argsort(-(qn @ base.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(hits.rows, expected)
    assert (np.diff(hits.scores, axis=1) <= 1e-6).all()
    np.testing.assert_array_equal(hits.groups, index.row_groups_[hits.rows])
    assert len(index.vectors_) == (12 if mode == "centroid" else 72)


def test_fewer_rows_than_k_pads():
    v, g = clusters(n_groups=3)
    hits = CentroidIndex("centroid").fit(v, g).search(v[:2], k=5)
    assert (hits.rows[:, 3:] == -1).all() and np.isnan(hits.scores[:, 3:]).all()
    assert hits.groups[0, 4] is None and hits.groups[0, 0] is not None


def test_hnsw_recall_against_exact():
    v, g = clusters(n_groups=400, per=3, dim=32, noise=0.5)
    exact = CentroidIndex("instance").fit(v, g).search(v[:200], k=10)
    approx = CentroidIndex("instance", backend="hnsw", threads=1).fit(v, g).search(v[:200], k=10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact.rows, approx.rows)])
    assert recall > 0.95


@pytest.mark.parametrize("backend", ["exact", "hnsw"])
def test_save_load_round_trip_without_pickle(tmp_path, backend):
    v, g = clusters()
    names = np.array([f"product-{i}" for i in g])
    index = CentroidIndex("centroid", backend=backend, threads=1).fit(v, names)
    index.save(tmp_path / "idx")
    index.save(tmp_path / "idx")                                   # replacing an existing one
    loaded = CentroidIndex.load(tmp_path / "idx")
    a, b = index.search(v[:5], k=3), loaded.search(v[:5], k=3)
    np.testing.assert_array_equal(a.rows, b.rows)
    np.testing.assert_array_equal(a.groups, b.groups)
    with np.load(tmp_path / "idx" / "arrays.npz", allow_pickle=False) as arrays:
        assert arrays["labels_str"].dtype.kind == "U"
    assert not (tmp_path / "idx.tmp").exists()


def test_bad_input_is_refused():
    v, g = clusters()
    with pytest.raises(ValueError, match="group labels"):
        CentroidIndex().fit(v, g[:-1])
    bad = v.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        CentroidIndex().fit(bad, g)
    with pytest.raises(RuntimeError, match="not fitted"):
        CentroidIndex().search(v, 3)
    with pytest.raises(ValueError, match="queries must be"):
        CentroidIndex().fit(v, g).search(v[:, :3], 3)
    with pytest.raises(ValueError, match="mode"):
        CentroidIndex("medoid")


def test_average_precision_by_hand():
    # gallery order by similarity: rel, non, rel, non -> AP = (1/1 + 2/3) / 2
    sims = np.array([[0.9, 0.8, 0.7, 0.6]])
    m = per_query_retrieval_metrics(sims, np.array([1]), np.array([1, 0, 1, 0]), ks=(1, 2))
    assert m["AP"][0] == pytest.approx((1 + 2 / 3) / 2)
    assert m["hit@1"][0] and m["first_rank"][0] == 1
    m = per_query_retrieval_metrics(sims, np.array([0]), np.array([1, 0, 1, 0]), ks=(1, 2))
    assert m["AP"][0] == pytest.approx((1 / 2 + 2 / 4) / 2) and not m["hit@1"][0] and m["hit@2"][0]
    # ties go by gallery order; a query without a relevant row: AP 0, first rank the largest int64
    m = per_query_retrieval_metrics(np.array([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0]]), np.array([2, 7]),
                                    np.array([1, 2, 2]), ks=(1, 2))
    assert m["first_rank"].tolist() == [2, np.iinfo(np.int64).max] and m["AP"].tolist() == [(1 / 2 + 2 / 3) / 2, 0]
    assert m["hit@2"].tolist() == [True, False]


def test_the_former_name_of_per_query_metrics_still_works():
    from sketchrec.retrieval import ranking_metrics
    sims = np.random.default_rng(0).normal(size=(5, 9))
    q, g = np.arange(5) % 3, np.arange(9) % 4
    with pytest.warns(DeprecationWarning, match="per_query_retrieval_metrics"):
        old = ranking_metrics(sims, q, g, ks=(1, 3))
    new = per_query_retrieval_metrics(sims, q, g, ks=(1, 3))
    assert old.keys() == new.keys() and all(np.array_equal(old[k], new[k]) for k in new)


def test_per_query_metrics_agree_with_the_eval_metrics():
    from sketchrec.eval.metrics import cmc_accuracy, retrieval_map
    rng = np.random.default_rng(4)
    sims = np.round(rng.normal(size=(30, 40)), 1)                      # many ties
    q, g = rng.integers(0, 6, 30), rng.integers(0, 5, 40)
    m = per_query_retrieval_metrics(sims, q, g, ks=(1, 5))
    matched = np.isin(q, g)
    with pytest.warns(RuntimeWarning):
        assert retrieval_map(sims, q, g) == pytest.approx(m["AP"][matched].mean(), abs=1e-15)
    with pytest.warns(RuntimeWarning):
        acc = cmc_accuracy(sims, q, g, ks=(1, 5))
    assert acc == {"Acc@1": m["hit@1"][matched].mean(), "Acc@5": m["hit@5"][matched].mean()}


def test_exact_search_is_the_topk_primitive_with_ties_to_the_lower_row():
    from sketchrec.topk import inner_product_topk, topk
    v = np.repeat(np.eye(4, dtype=np.float32), 3, axis=0)              # rows 0-2, 3-5, ... identical
    hits = CentroidIndex("instance", chunk_rows=2).fit(v, np.arange(12)).search(v[[0, 4, 11]], k=4)
    assert hits.rows.tolist() == [[0, 1, 2, 3], [3, 4, 5, 0], [9, 10, 11, 0]]
    assert hits.scores[:, :3].tolist() == [[1, 1, 1]] * 3 and (hits.scores[:, 3] == 0).all()
    q = np.random.default_rng(1).normal(size=(7, 4)).astype(np.float32)
    for chunk in (1, 3, 100):
        items, values = inner_product_topk(q, v, 5, chunk_rows=chunk)
        expected = topk(q @ v.T, 5)
        np.testing.assert_array_equal(items, expected[0])
        np.testing.assert_array_equal(values, expected[1])
    assert inner_product_topk(q[:0], v, 5)[0].shape == (0, 5)


def test_search_rows_leaves_each_row_itself_out():
    v, g = clusters(n_groups=30, per=3, dim=16)
    for backend in ("exact", "hnsw"):
        index = CentroidIndex("instance", backend=backend, threads=1).fit(v, g)
        own = index.search_rows([0, 5, 7], k=4)
        with_self = index.search_rows([0, 5, 7], k=4, exclude_self=False)
        assert isinstance(own, SearchResult) and own.rows.shape == (3, 4)
        assert not (own.rows == np.array([[0], [5], [7]])).any()
        assert with_self.rows[:, 0].tolist() == [0, 5, 7]
        np.testing.assert_array_equal(own.rows[:, :3], with_self.rows[:, 1:])
    small = CentroidIndex("instance").fit(v[:3], g[:3]).search_rows([1], k=5)
    assert small.rows.tolist() == [[0, 2, -1, -1, -1]] or small.rows.tolist() == [[2, 0, -1, -1, -1]]
    assert np.isnan(small.scores[0, 2:]).all() and small.groups[0, 2] is None


def test_assume_unit_uses_the_vectors_as_given():
    v, g = clusters()
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    index = CentroidIndex("instance", assume_unit=True).fit(unit, g)
    assert index.vectors_ is unit or np.shares_memory(index.vectors_, unit)
    hits = index.search(unit[:3] * 2, k=2)                    # not normalised: the scores are inner products
    np.testing.assert_allclose(hits.scores[:, 0], 2, rtol=1e-5)


def test_the_index_is_an_estimator(tmp_path):
    from sketchrec.base import Estimator, clone
    v, g = clusters()
    names = np.array([f"product-{i}" for i in g], dtype=object)
    index = CentroidIndex("instance", chunk_rows=50).fit(v, names)
    assert index.get_params() == {"mode": "instance", "backend": "exact", "hnsw_m": 32, "ef_construction": 200,
                                  "ef_search": 128, "threads": None, "chunk_rows": 50, "assume_unit": False}
    assert not clone(index).is_fitted() and clone(index).get_params() == index.get_params()
    for backend in ("exact", "hnsw"):
        fitted = CentroidIndex("centroid", backend=backend, threads=1).fit(v, names)
        Estimator.save(fitted, tmp_path / f"{backend}.npz")               # one .npz, no pickle
        back = CentroidIndex.load(tmp_path / f"{backend}.npz")
        a, b = fitted.search(v[:6], k=4), back.search(v[:6], k=4)
        np.testing.assert_array_equal(a.rows, b.rows)
        np.testing.assert_array_equal(a.groups, b.groups)


def test_an_index_directory_from_before_the_estimator_base_loads(tmp_path):
    import json
    v, g = clusters()
    index = CentroidIndex("centroid").fit(v, g)
    index.save(tmp_path / "idx")
    config = json.loads((tmp_path / "idx" / "config.json").read_text())
    for key in ("chunk_rows", "assume_unit"):                             # the format-1 files written before
        del config[key]
    (tmp_path / "idx" / "config.json").write_text(json.dumps(config))
    back = CentroidIndex.load(tmp_path / "idx")
    assert back.chunk_rows == 4096 and not back.assume_unit
    np.testing.assert_array_equal(back.search(v[:5], 3).rows, index.search(v[:5], 3).rows)


def test_embeddings_are_searched_by_the_index_and_most_similar_is_deprecated():
    from sketchrec.data.idmap import IdMap
    from sketchrec.data.embeddings import Embeddings
    v, _ = clusters(n_groups=5, per=2)
    emb = Embeddings(v, IdMap([f"n{i}" for i in range(len(v))], "node"))
    hits = CentroidIndex("instance").fit(emb).search_rows([0, 3], k=3)
    assert hits.groups.tolist() == hits.rows.tolist() and 0 not in hits.rows[0] and 3 not in hits.rows[1]
    assert emb.ids.to_external(hits.rows[0]) == [f"n{r}" for r in hits.rows[0]]
    with pytest.warns(DeprecationWarning, match="CentroidIndex"):
        items, sims = emb.most_similar(np.array([0, 3]), k=3)
    np.testing.assert_array_equal(items, hits.rows)
    np.testing.assert_array_equal(sims, hits.scores)
    with pytest.warns(DeprecationWarning):
        items, sims = emb.most_similar(np.array([0, 3]), k=len(v) + 2)   # own row last, at -inf
    assert items.shape == (2, len(v)) and items[:, -1].tolist() == [0, 3] and np.isneginf(sims[:, -1]).all()


def test_centroid_retrieval_has_one_relevant_row_per_query():
    v, g = clusters(noise=1.5, seed=3)
    q, qg = v[::2], g[::2]
    gal, gg = v[1::2], g[1::2]
    inst = evaluate_retrieval(q, qg, gal, gg, mode="instance")
    cent = evaluate_retrieval(q, qg, gal, gg, mode="centroid")
    assert cent["gallery_rows"] == 12 and inst["gallery_rows"] == 36
    assert 0 < inst["mAP"] <= 1 and 0 < cent["mAP"] <= 1
    assert cent["Acc@50"] == 1.0                      # 12 centroids: everything is within 50
    # with one relevant row, AP is the reciprocal rank: mAP >= Acc@1
    assert cent["mAP"] >= cent["Acc@1"]


def test_queries_without_a_gallery_group_are_left_out():
    v, g = clusters()
    out = evaluate_retrieval(v[:10], np.r_[g[:9], 999], v[10:], g[10:])   # groups 0 and 999: no match
    assert out["queries_without_match"] == 7 and out["queries"] == 10


# -- Centroid Triplet Loss model ----------------------------------------------------------
import torch  # noqa: E402

from sketchrec.retrieval.ctl import (LossWeights, MLPHead, PKSampler, RetrievalTrainer,  # noqa: E402
                                     SmallCNN, batch_hard_triplet, centroid_triplet)


def test_centroid_triplet_by_hand():
    f = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 5.0]])
    y = torch.tensor([0, 0, 1, 1])
    # anchor 0: leave-one-out positive centroid (2, 0) -> 2; class-1 centroid (0, 4) -> 4
    # anchor 1: positive (0, 0) -> 2; negative (0, 4) -> sqrt(20)
    # anchor 2: positive (0, 5) -> 2; negative class-0 centroid (1, 0) -> sqrt(10)
    # anchor 3: positive (0, 3) -> 2; negative (1, 0) -> sqrt(26)
    margin = 3.0
    expected = np.mean([max(0, 2 - d + margin) for d in (4, 20 ** .5, 10 ** .5, 26 ** .5)])
    assert float(centroid_triplet(f, y, margin, "euclidean")) == pytest.approx(expected, rel=1e-5)


def test_centroid_triplet_squared_by_hand():
    """The PhD thesis's Eq. 26, the default: ||f(A) - c_P||² - ||f(A) - c_N||² + α."""
    f = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 5.0]])
    y = torch.tensor([0, 0, 1, 1])
    # the example above squared: positives 4 each, negatives 16, 20, 10, 26
    assert float(centroid_triplet(f, y, 3.0)) == 0                         # 4 - 10 + 3 < 0 at best
    # margin 15: [4 - 16 + 15, 4 - 20 + 15, 4 - 10 + 15, 4 - 26 + 15]_+ = 3, 0, 9, 0
    assert float(centroid_triplet(f, y, 15.0, "squared")) == pytest.approx(3.0, rel=1e-5)
    with pytest.raises(ValueError, match="distance"):
        centroid_triplet(f, y, distance="cosine")
    with pytest.raises(ValueError, match="ctl_distance"):
        LossWeights(ctl_distance="cosine")


def test_centroid_triplet_skips_singletons_and_needs_two_classes():
    f = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]], requires_grad=True)
    loss = centroid_triplet(f, torch.tensor([0, 0, 1]), margin=10.0, distance="euclidean")
    # anchors 0, 1 only: positive distance 1, negative distance to (5, 5)
    expected = np.mean([1 - 50 ** .5 + 10, 1 - 41 ** .5 + 10])
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert float(centroid_triplet(f.detach(), torch.tensor([0, 0, 0]))) == 0


def test_batch_hard_triplet_by_hand():
    f = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    y = torch.tensor([0, 0, 1, 1])
    # a0: pos 1, neg 3; a1: pos 1, neg 2; a2: pos 4, neg 2; a3: pos 4, neg 6
    expected = np.mean([max(0, p - n + 1) for p, n in ((1, 3), (1, 2), (4, 2), (4, 6))])
    assert float(batch_hard_triplet(f, y, margin=1.0)) == pytest.approx(expected, rel=1e-5)


def test_pk_sampler_batches():
    labels = np.repeat(np.arange(10), [5, 5, 5, 5, 5, 5, 5, 5, 5, 2])
    batches = list(PKSampler(labels, p=4, m=3, seed=0))
    assert len(batches) == len(labels) // 12
    for b in batches:
        classes, counts = np.unique(labels[b], return_counts=True)
        assert len(classes) == 4 and (counts == 3).all()


def identity_data(n_ids, per, dim=64, signal=4, seed=0):
    """Identity lives in a 4-d subspace; 60 nuisance dimensions carry large noise."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(np.random.default_rng(99).normal(size=(dim, dim)))[0]
    ids = rng.normal(size=(n_ids, signal)) * 2
    y = np.repeat(np.arange(n_ids), per)
    z = np.concatenate([ids[y] + 0.3 * rng.normal(size=(len(y), signal)),
                        3 * rng.normal(size=(len(y), dim - signal))], axis=1)
    return (z @ basis.T).astype(np.float32), y


@pytest.mark.parametrize("ctl", [0.0, 1.0])
def test_training_generalises_to_held_out_identities(ctl, tmp_path):
    x, y = identity_data(40, 8, seed=0)
    xt, yt = identity_data(20, 8, seed=1)                 # other identities
    q, g = np.arange(len(yt)) % 8 < 2, np.arange(len(yt)) % 8 >= 2
    raw = evaluate_retrieval(xt[q], yt[q], xt[g], yt[g], mode="centroid")["mAP"]
    trainer = RetrievalTrainer(MLPHead(64, 128, 32), LossWeights(ctl=ctl), epochs=25, p=8, m=4, lr=3e-3,
                               threads=1, progress=False).fit(x, y)
    emb = trainer.embed(xt)
    assert emb.shape == (len(yt), 32)
    trained = evaluate_retrieval(emb[q], yt[q], emb[g], yt[g], mode="centroid")["mAP"]
    assert trained > raw + 0.15, (raw, trained)
    h = trainer.history_
    assert h[-1]["loss"] < h[0]["loss"]
    assert (h[0]["ctl"] > 0) == (ctl > 0)
    trainer.plot_losses(tmp_path / "losses.png")
    assert (tmp_path / "losses.png").stat().st_size > 1000


def test_retrieval_trainer_is_an_estimator_that_saves(tmp_path):
    from sketchrec.base import clone
    x, y = identity_data(12, 4, seed=0)
    labels = np.array([f"id{i}" for i in y], dtype=object)
    trainer = RetrievalTrainer(MLPHead(64, 32, 8), LossWeights(ctl=0.5), epochs=2, p=4, m=4, threads=1,
                               progress=False)
    with pytest.raises(RuntimeError, match="not fitted"):
        trainer.embed(x)
    assert trainer.get_params()["weights"] == LossWeights(ctl=0.5) and trainer.get_params()["epochs"] == 2
    assert not clone(trainer).is_fitted() and clone(trainer).get_params()["p"] == 4
    trainer.fit(x, labels)
    trainer.save(tmp_path / "ctl.npz")
    back = RetrievalTrainer.load(tmp_path / "ctl.npz")
    np.testing.assert_array_equal(back.embed(x), trainer.embed(x))
    assert back.classes_.tolist() == trainer.classes_.tolist() and back.weights == trainer.weights
    assert back.report_.history == trainer.report_.history and back.history_ == trainer.history_
    custom = torch.nn.Linear(64, 8)
    custom.out_dim = 8
    with pytest.raises(ValueError, match="backbone cannot be saved"):
        RetrievalTrainer(custom, epochs=1, p=4, m=4, progress=False).fit(x, y).save(tmp_path / "custom.npz")


def test_small_cnn_shapes():
    net = SmallCNN(1, 64)
    assert net(torch.zeros(3, 1, 32, 32)).shape == (3, 64)
