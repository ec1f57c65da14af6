"""Centroid / instance gallery search and retrieval metrics."""

import numpy as np
import pytest

from sketchrec.retrieval import CentroidIndex, evaluate_retrieval, group_centroids, ranking_metrics


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
    m = ranking_metrics(sims, np.array([1]), np.array([1, 0, 1, 0]), ks=(1, 2))
    assert m["AP"][0] == pytest.approx((1 + 2 / 3) / 2)
    assert m["hit@1"][0] and m["first_rank"][0] == 1
    m = ranking_metrics(sims, np.array([0]), np.array([1, 0, 1, 0]), ks=(1, 2))
    assert m["AP"][0] == pytest.approx((1 / 2 + 2 / 4) / 2) and not m["hit@1"][0] and m["hit@2"][0]


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
    h = trainer.report_.history
    assert h[-1]["total"] < h[0]["total"]
    assert (h[0]["ctl"] > 0) == (ctl > 0)
    trainer.plot_losses(tmp_path / "losses.png")
    assert (tmp_path / "losses.png").stat().st_size > 1000


def test_small_cnn_shapes():
    net = SmallCNN(1, 64)
    assert net(torch.zeros(3, 1, 32, 32)).shape == (3, 64)
