"""Adjacency augmentation: edge weights by the thesis's rules, blur only on real nodes, training only."""

import numpy as np
import pytest

from sketchrec.augment import AdjacencyAugmentation
from sketchrec.base import Estimator, NotFittedError
from sketchrec.data.sessions import Sessions
from sketchrec.models.srgnn import SRGNN, session_graphs


def edges(aug, session, src, dst, n_sessions):
    return aug.edge_weights(np.array(session), np.array(src), np.array(dst), n_sessions,
                            np.random.default_rng(0))


def test_i2i_weights_are_inverse_distances_and_self_edges_get_twice_the_max():
    vectors = np.array([[0, 0], [3, 4], [0, 2], [1, 1]], dtype=np.float32)
    aug = AdjacencyAugmentation("i2i", p_edge=1.0).fit(vectors)
    w = edges(aug, [0, 0, 0, 1], [0, 0, 1, 3], [1, 2, 1, 3], 2)
    # 0->1: 1/5; 0->2: 1/2; session 0's self-edge 1->1: max(1, 2 * 0.5) = 1; session 1 has no cross edge
    np.testing.assert_allclose(w, [0.2, 0.5, 1.0, 1.0])
    far = AdjacencyAugmentation("i2i", p_edge=1.0).fit(vectors * 0.1)
    w = edges(far, [0, 0], [0, 1], [2, 1], 1)
    np.testing.assert_allclose(w, [5.0, 10.0])                # 1/0.2, then max(1, 2 * 5)


def test_cluster_rule_uses_centre_distance():
    vectors = 1 + np.array([[0, 0], [0.1, 0], [10, 0], [10.1, 0], [0, 20], [0.1, 20]], dtype=np.float32)
    vectors = np.vstack([vectors, [[0, 0]]]).astype(np.float32)    # an item absent from the source
    aug = AdjacencyAugmentation("kmeans", n_clusters=3, p_edge=1.0).fit(vectors)
    c = aug.cluster_
    assert c[0] == c[1] and c[2] == c[3] and len(set(c[[0, 2, 4]])) == 3 and c[6] == -1
    w = edges(aug, [0, 0, 0], [0, 0, 6], [2, 1, 0], 1)
    np.testing.assert_allclose(w, [1 / 10.0, max(1.0, 2 / 10.0), 1.0], rtol=1e-5)


def test_categories_unknown_items_keep_weight_one():
    vectors = np.array([[0, 0], [2, 0], [0, 4], [9, 9]], dtype=np.float32)
    aug = AdjacencyAugmentation("categories", p_edge=1.0).fit(vectors, categories=np.array([0, 0, 1, -1]))
    w = edges(aug, [0, 0, 0], [0, 0, 3], [2, 1, 0], 1)
    # centres (1, 0) and (0, 4): 1/sqrt(17); same category: max(1, 2/sqrt(17)) = 1; unknown: 1
    np.testing.assert_allclose(w, [1 / np.sqrt(17), 1.0, 1.0], rtol=1e-5)


def test_p_edge_zero_is_identity_and_half_mixes():
    vectors = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    rng = np.random.default_rng(2)
    src, dst = rng.integers(0, 50, 2000), rng.integers(0, 50, 2000)
    session = np.zeros(2000, dtype=np.int64)
    assert np.all(edges(AdjacencyAugmentation("i2i", p_edge=0.0).fit(vectors), session, src, dst, 1) == 1)
    w = edges(AdjacencyAugmentation("i2i", p_edge=0.5).fit(vectors), session, src, dst, 1)
    plain = np.mean(w == 1.0)
    assert 0.4 < plain < 0.6


def test_blur_touches_only_real_nodes_of_chosen_sessions():
    rows = Sessions.from_lists([[1, 2, 3, 4], [5, 6]] * 50, n_items=8)
    plain = session_graphs(rows)
    aug = AdjacencyAugmentation("blur", p_blur=0.5, blur_mode="session")
    blurred = session_graphs(rows, augment=aug, rng=np.random.default_rng(0))
    diff = blurred.adjacency - plain.adjacency
    changed = np.any(diff != 0, axis=(1, 2))
    assert 30 < changed.sum() < 70                             # about half the sessions
    short = np.arange(100) % 2 == 1                            # 2 real nodes of 4
    assert np.all(diff[short][:, 2:, :] == 0) and np.all(diff[short][:, :, 2:4] == 0)
    assert np.all(diff[short][:, :, 6:] == 0)
    noise = diff[changed & ~short][:, :4, :]
    assert abs(noise.mean() - 0.01) < 0.002 and abs(noise.std() - 0.01) < 0.002


def test_cell_blur_is_eq_6_1_on_a_hand_example():
    # one session of 2 real nodes padded to 3: A_in and A_out each have a 2 x 2 real block
    adjacency = np.zeros((1, 3, 6), dtype=np.float32)
    adjacency[0, 0, 4], adjacency[0, 1, 0] = 1.0, 1.0            # 0 -> 1, normalised
    blurred = adjacency.copy()
    AdjacencyAugmentation("blur").blur_(blurred, np.array([2]), np.random.default_rng(7))
    rng = np.random.default_rng(7)                                # Eq. 6.1 by hand, thesis's p, mu, sigma
    m = rng.random((1, 3, 6)) <= 0.5
    n = rng.normal(0.01, 0.01, (1, 3, 6)).astype(np.float32)
    real = np.zeros((1, 3, 6), dtype=bool)
    real[0, :2, [0, 1, 3, 4]] = True                              # real rows x real columns of both halves
    np.testing.assert_array_equal(blurred, adjacency + np.where(m & real, n, 0))
    assert 0 < (blurred != adjacency).sum() < 8                   # some of the 8 real cells, not all


def test_cell_blur_mask_density_and_noise_moments():
    rows = Sessions.from_lists([[1, 2, 3, 4], [5, 6]] * 500, n_items=8)
    plain = session_graphs(rows)
    aug = AdjacencyAugmentation("blur")
    assert aug.blur_mode == "cell" and aug.name == "Blur"
    diff = session_graphs(rows, augment=aug, rng=np.random.default_rng(0)).adjacency - plain.adjacency
    node = np.arange(4)[None, :] < np.where(np.arange(1000) % 2 == 1, 2, 4)[:, None]   # (B, 4) real nodes
    real = node[:, :, None] & np.concatenate([node, node], axis=1)[:, None, :]      # (B, 4, 8)
    assert np.all(diff[~real] == 0)                               # padding never changes
    masked = diff[real] != 0
    assert abs(masked.mean() - 0.5) < 0.01                        # 20,000 real cells, p = 0.5
    noise = diff[real][masked]
    assert abs(noise.mean() - 0.01) < 0.0005 and abs(noise.std() - 0.01) < 0.0005
    sessions_touched = np.any(diff != 0, axis=(1, 2)).mean()
    assert sessions_touched > 0.95                                # per cell, not per session


def test_blur_mode_and_gmm_init_are_checked_and_named():
    with pytest.raises(ValueError, match="blur_mode"):
        AdjacencyAugmentation("blur", blur_mode="row")
    with pytest.raises(ValueError, match="gmm_init"):
        AdjacencyAugmentation("blur", gmm_init="random")
    assert AdjacencyAugmentation("i2i", blur_mode="session").name == "i2i+Blur (session)"
    assert AdjacencyAugmentation("i2i").name == "i2i+Blur"
    assert AdjacencyAugmentation("i2i", blur=False, blur_mode="session").name == "i2i"


def test_gmm_centroid_init_starts_at_kmeans_centroids_with_equal_weights(monkeypatch):
    import sklearn.mixture
    from sklearn.cluster import KMeans
    started = {}

    class Spy(sklearn.mixture.GaussianMixture):
        def fit(self, x, y=None):
            started.update(means=self.means_init, weights=self.weights_init)
            return super().fit(x)

    monkeypatch.setattr(sklearn.mixture, "GaussianMixture", Spy)
    rng = np.random.default_rng(0)
    vectors = np.vstack([rng.normal(c, 0.1, size=(40, 2)) for c in (0, 5, 10)]).astype(np.float32)
    aug = AdjacencyAugmentation("gmm", n_clusters=3, gmm_init="centroids").fit(vectors)
    np.testing.assert_allclose(started["weights"], [1 / 3] * 3)
    np.testing.assert_allclose(started["means"], KMeans(3, n_init=3, random_state=0).fit(vectors).cluster_centers_)
    clusters = aug.cluster_.reshape(3, 40)
    assert all(len(set(c)) == 1 for c in clusters) and len(set(clusters[:, 0])) == 3


def test_none_kind_leaves_graphs_unchanged():
    rows = Sessions.from_lists([[1, 2, 1, 3]], n_items=5)
    g = session_graphs(rows, augment=AdjacencyAugmentation("none", blur=False), rng=np.random.default_rng(0))
    np.testing.assert_array_equal(g.adjacency, session_graphs(rows).adjacency)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="one of"):
        AdjacencyAugmentation("cosine")
    with pytest.raises(ValueError, match="needs item vectors"):
        AdjacencyAugmentation("i2i").fit()
    with pytest.raises(ValueError, match="category per item"):
        AdjacencyAugmentation("categories").fit(np.zeros((3, 2)), categories=np.zeros(2))
    with pytest.raises(NotFittedError):                             # a kind that needs vectors, unfitted
        edges(AdjacencyAugmentation("i2i"), [0], [0], [1], 1)


def test_augmented_training_runs_and_scoring_ignores_it():
    rows = Sessions.from_lists(((np.arange(5)[None, :] + np.arange(40)[:, None]) % 20).tolist(), n_items=20)
    vectors = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    aug = AdjacencyAugmentation("gmm", n_clusters=3).fit(vectors)
    model = SRGNN(hidden=8, epochs=2, progress=False, threads=1).fit(rows, augmentation=aug)
    assert aug.name == "GMM+Blur" and aug.cluster_ is not None
    prefix = Sessions.from_lists([[1, 2, 3]], n_items=20)
    np.testing.assert_array_equal(model.score(prefix), model.score(prefix))    # deterministic at test time


def test_the_former_call_form_still_works_with_a_warning():
    vectors = 1 + np.random.default_rng(3).normal(size=(30, 4)).astype(np.float32)
    session, src, dst = [0] * 6, [0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]
    with pytest.warns(DeprecationWarning, match="fit"):
        old = AdjacencyAugmentation("gmm", vectors, n_clusters=3)          # fitted lazily, as before
    new = AdjacencyAugmentation("gmm", n_clusters=3).fit(vectors)
    np.testing.assert_array_equal(edges(old, session, src, dst, 1), edges(new, session, src, dst, 1))
    np.testing.assert_array_equal(old.cluster_, new.cluster_)
    assert old.get_params() == new.get_params() and "vectors" not in old.get_params()
    with pytest.warns(DeprecationWarning):
        with pytest.raises(ValueError, match="category per item"):     # still checked at once
            AdjacencyAugmentation("categories", np.zeros((3, 2)), categories=np.zeros(2))


@pytest.mark.parametrize("kind", ["blur", "i2i", "gmm", "kmeans", "categories"])
def test_save_load_round_trip_gives_the_same_graphs(kind, tmp_path):
    vectors = 1 + np.random.default_rng(4).normal(size=(20, 4)).astype(np.float32)
    categories = np.arange(20) % 3 - (np.arange(20) == 5)          # item 5's category unknown
    aug = AdjacencyAugmentation(kind, n_clusters=3, p_edge=0.7, blur_mode="session").fit(vectors, categories)
    aug.save(tmp_path / "aug.npz")
    back = Estimator.load(tmp_path / "aug.npz")
    assert isinstance(back, AdjacencyAugmentation) and back.get_params() == aug.get_params()
    rows = Sessions.from_lists(((np.arange(5)[None, :] * 3 + np.arange(30)[:, None]) % 20).tolist(), n_items=20)
    got = session_graphs(rows, augment=back, rng=np.random.default_rng(9))
    want = session_graphs(rows, augment=aug, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(got.adjacency, want.adjacency)
