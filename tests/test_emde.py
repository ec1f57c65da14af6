"""EMDE recommender: modality parsing, learning a known transition rule, persistence, profiles."""

import numpy as np
import pytest

from sketchrec.data.sessions import Sessions
from sketchrec.eval.protocols import evaluate_next_item
from sketchrec.eval.validation import NextItemValidation
from sketchrec.models import Recommender
from sketchrec.data.sessions import random_holdout
from sketchrec.models.emde import EMDE, Modality, _l2_per_depth
from sketchrec.sketch import Readout, sketch_histories


def cycle_sessions(n_items=40, n_sessions=600, length=6, seed=0):
    """Sessions walking i -> i+1 (mod n): the next item is a function of the last one."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n_items, n_sessions)
    rows = (starts[:, None] + np.arange(length)[None, :]) % n_items
    return Sessions.from_lists(rows.tolist(), n_items=n_items)


def small_emde(**kw):
    params = dict(inputs=("all:cleora:0", "last:cleora:0"), outputs=("cleora:0",), n_sketches=4, n_bits=5,
                  hidden=64, epochs=12, batch_size=64, lr=3e-3, lr_decay=0.95, progress=False, threads=1)
    params.update(kw)
    return EMDE(**params)


def test_modality_parse():
    assert Modality.parse("last:cleora:2") == Modality("last", "cleora:2")
    assert Modality.parse("all:text") == Modality("all", "text")
    for bad in ["cleora:1", "recent:cleora:1", "all:cleora", "all:cleora:x"]:
        with pytest.raises(ValueError):
            Modality.parse(bad)


def test_learns_next_item_rule():
    train = cycle_sessions()
    test = cycle_sessions(n_sessions=100, seed=1)
    prefixes = test.take(np.arange(len(test)))
    last = prefixes.filter_clicks(prefixes.position_of_click() < 3)   # prefixes of length 3
    targets = (last.last_items() + 1) % train.n_items
    model = small_emde().fit(train)
    metrics, _ = evaluate_next_item(model, last, targets, ks=(1, 5), progress=False)
    assert metrics["HR@1"] > 0.9, metrics
    # an untrained network is near chance: the rule was learned, not given
    untrained = small_emde(epochs=0).fit(train)
    base, _ = evaluate_next_item(untrained, last, targets, ks=(1,), progress=False)
    assert base["HR@1"] < 0.3


def test_validation_history_and_best_epoch():
    train = cycle_sessions()
    test = cycle_sessions(n_sessions=50, seed=2)
    prefixes = test.filter_clicks(test.position_of_click() < 2)
    targets = (prefixes.last_items() + 1) % train.n_items
    model = small_emde(epochs=3).fit(train, validation=NextItemValidation(prefixes, targets))
    assert [r["epoch"] for r in model.history_] == [1, 2, 3]
    assert all("valid_MRR@20" in r and "loss" in r for r in model.history_)
    best = max(model.history_, key=lambda r: r["valid_MRR@20"])
    assert model.best_epoch_ == best["epoch"]
    with pytest.raises(TypeError, match="NextItemValidation"):      # the former tuple form
        small_emde(epochs=1).fit(train, validation=(prefixes, targets))


def test_save_load_roundtrip(tmp_path):
    train = cycle_sessions(n_sessions=200)
    model = small_emde(epochs=1).fit(train)
    path = tmp_path / "emde.npz"
    model.save(path)
    loaded = Recommender.load(path)
    assert isinstance(loaded, EMDE) and loaded.get_params() == model.get_params()
    q = Sessions.from_lists([[1, 2, 3], [7], [30, 31]], n_items=train.n_items)
    np.testing.assert_allclose(loaded.score(q), model.score(q), rtol=1e-6)
    with np.load(path, allow_pickle=False) as z:   # readable without pickle
        assert any(k.startswith("net.") for k in z.files)


def test_profile_features():
    train = cycle_sessions(n_sessions=100)
    model = small_emde(epochs=1).fit(train)
    q = Sessions.from_lists([[1, 2, 3], [5]], n_items=train.n_items)
    x = model.profile(q)
    assert x.shape == (2, 2 * 4 * 32) and len(model.feature_names()) == x.shape[1]
    # every (row, modality, depth) segment has unit L2 norm (l2_input=True)
    seg = np.asarray(x.multiply(x).toarray()).reshape(2, 2 * 4, 32).sum(axis=2)
    np.testing.assert_allclose(seg, 1.0, rtol=1e-5)
    # without l2: each depth row of the raw sketch sums to 1
    raw = small_emde(epochs=0, l2_input=False).fit(train).profile(q, sparse=False)
    np.testing.assert_allclose(raw.reshape(2, 8, 32).sum(axis=2), 1.0, rtol=1e-5)


def test_holdout_target_with_liked_and_disliked_views():
    rng = np.random.default_rng(0)
    # two user groups: group g likes items of block g and dislikes items of the other block
    rows, weights = [], []
    for u in range(200):
        g = u % 2
        liked = rng.choice(np.arange(20) + 20 * g, 8, replace=False)
        disliked = rng.choice(np.arange(20) + 20 * (1 - g), 3, replace=False)
        rows.append(np.concatenate([liked, disliked]).tolist())
        weights.append([5.0] * 8 + [1.0] * 3)
    h = Sessions.from_lists(rows, n_items=40)
    h.weights = np.concatenate(weights).astype(np.float32)
    model = small_emde(inputs=("liked:cleora:0", "disliked:cleora:0"), outputs=("cleora:0",),
                       target="holdout", epochs=40)
    model.fit(h)
    q = Sessions.from_lists([[0, 1, 2, 25], [20, 21, 22, 3]], n_items=40)
    q.weights = np.array([5, 5, 5, 1, 5, 5, 5, 1], np.float32)
    scores = model.score(q)
    # a failed fit (no ratings for the liked view) leaves the fitted model untouched
    with pytest.raises(ValueError, match="need click weights"):
        model.fit(Sessions.from_lists(rows, n_items=40))
    np.testing.assert_array_equal(model.score(q), scores)
    assert scores[0, :20].mean() > scores[0, 20:].mean()
    assert scores[1, 20:].mean() > scores[1, :20].mean()


def test_extra_embeddings_and_unknown_source():
    train = cycle_sessions(n_sessions=100)
    with pytest.raises(ValueError, match="unknown source 'text'"):
        small_emde(inputs=("all:text",), outputs=("cleora:0",), epochs=0).fit(train)
    vectors = np.random.default_rng(0).standard_normal((train.n_items, 8)).astype(np.float32)
    model = small_emde(inputs=("all:text", "last:cleora:0"), outputs=("cleora:0",), epochs=0)
    model.add_embeddings("text", vectors).fit(train)
    assert set(model.codes_) == {"text", "cleora:0"}
    with pytest.raises(ValueError, match="reserved"):
        model.add_embeddings("cleora:7", vectors)


def test_random_holdout_keeps_both_sides():
    h = Sessions.from_lists([[1, 2, 3, 4, 5], [6, 7], [8]], n_items=10)
    inputs, targets = random_holdout(h, 0.2, np.random.default_rng(0))
    assert inputs.lengths.tolist() == [4, 1, 1] and targets.lengths.tolist() == [1, 1, 0]
    assert sorted(inputs.items.tolist() + targets.items.tolist()) == list(range(1, 9))


def test_l2_per_depth_and_readout_from_log():
    codes = np.array([[0, 1], [1, 1], [2, 0]])
    s = sketch_histories(Sessions.from_lists([[0, 1, 1], [2]], n_items=3), codes, 4, sparse=True)
    _l2_per_depth(s, 4)
    d = s.toarray().reshape(2, 2, 4)
    np.testing.assert_allclose((d ** 2).sum(axis=2), 1.0, rtol=1e-6)
    np.testing.assert_allclose(d[0, 0, :2], np.array([1, 2]) / np.sqrt(5), rtol=1e-6)
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=(3, 2)).astype(np.float32)
    r = Readout(codes, 4)
    np.testing.assert_allclose(r.from_log(np.log(p)), r(p), rtol=1e-6)


def test_checkpoint_resume_matches_uninterrupted_run(tmp_path):
    """Stopping after epoch 2 and resuming gives the same weights as 4 epochs in one go."""
    train = cycle_sessions(n_sessions=200)
    full = small_emde(epochs=4).fit(train)
    ckpt = tmp_path / "emde.ckpt.npz"

    class Stop(Exception):
        pass

    def stop_after_two(epoch, model, row):
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        small_emde(epochs=4).fit(train, callback=stop_after_two, checkpoint=ckpt)
    resumed = small_emde(epochs=4).fit(train, checkpoint=ckpt)
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3, 4]
    q = Sessions.from_lists([[1, 2, 3], [7]], n_items=train.n_items)
    np.testing.assert_allclose(resumed.score(q), full.score(q), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="other settings"):
        small_emde(epochs=4, hidden=32).fit(train, checkpoint=ckpt)
    with pytest.raises(ValueError, match="other training rows"):
        small_emde(epochs=4).fit(cycle_sessions(n_sessions=100), checkpoint=ckpt)


def test_explain_matches_scores_and_finds_the_driving_modality():
    """Item codes carry the rule only through the 'last' view here: its occlusion must matter most."""
    train = cycle_sessions()
    model = small_emde(epochs=8).fit(train)
    prefixes = Sessions.from_lists([[3, 4, 5], [10, 11]], n_items=40)
    targets = model.recommend(prefixes, k=1)[0][:, 0]
    out = model.explain(prefixes, targets, top_buckets=3)
    scores = model.score(prefixes)
    for r, e in enumerate(out):
        assert e["score"] == pytest.approx(float(scores[r, targets[r]]), rel=1e-4, abs=1e-4)
        assert set(e["modalities"]) == set(model.inputs)
        assert len(e["buckets"]) == 3 and all("/d" in name for name, _ in e["buckets"])
        assert max(e["modalities"], key=lambda k: e["modalities"][k]) == "last:cleora:0"
    for spec in model.inputs:          # occluded scoring agrees with explain's occlusion
        occluded = model.score(prefixes, without=[spec])
        for r, e in enumerate(out):
            drop = float(scores[r, targets[r]] - occluded[r, targets[r]])
            assert drop == pytest.approx(e["modalities"][spec], rel=1e-3, abs=1e-4)
    with pytest.raises(ValueError, match="unknown input modalities"):
        model.score(prefixes, without=["all:nope"])
    with pytest.raises(ValueError):
        model.explain(prefixes, [1])


@pytest.mark.parametrize("readout", ["bayes", "geometric", "min"])
def test_fused_recommend_equals_score_then_topk(readout):
    """EMDE.recommend scores and selects row by row (no score matrix): same items, same order."""
    from sketchrec.topk import topk
    train = cycle_sessions()
    model = small_emde(epochs=2, readout=readout).fit(train)
    histories = Sessions.from_lists([[3, 4, 5], [10, 11], [], [7, 7, 8, 9]], n_items=40)
    for exclude_seen in (False, True):
        exclude = (histories.indptr, histories.items) if exclude_seen else None
        want_items, want_scores = topk(model.score(histories), 7, exclude=exclude)
        items, scores = model.recommend(histories, k=7, exclude_seen=exclude_seen)
        np.testing.assert_array_equal(items, want_items)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-6)
    assert model.recommend(histories, k=100)[0].shape == (4, 40)          # k clipped to the item count


def test_int8_serving_copy_keeps_the_learned_rule_and_refuses_what_it_cannot_do(tmp_path):
    train = cycle_sessions()
    prefixes = cycle_sessions(n_sessions=100, seed=1)
    prefixes = prefixes.filter_clicks(prefixes.position_of_click() < 3)
    targets = (prefixes.last_items() + 1) % train.n_items
    model = small_emde().fit(train)
    float_items, float_scores = model.recommend(prefixes, 5)
    model.to_int8()
    assert model.to_int8() is model and model.int8_
    metrics, _ = evaluate_next_item(model, prefixes, targets, ks=(1,), progress=False)
    assert metrics["HR@1"] > 0.9, metrics
    items, scores = model.recommend(prefixes, 5)
    assert (items[:, 0] == float_items[:, 0]).mean() > 0.95
    assert np.abs(scores - float_scores).max() > 0                  # it does compute differently
    with pytest.raises(ValueError, match="int8"):
        model.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="int8"):
        model.explain(prefixes.take(np.arange(2)), [1, 2])
    assert not small_emde(epochs=1).fit(train).int8_


def test_readouts_by_hand_and_the_old_name():
    """"geometric" is the mean over depth of log p at the item's buckets, "min" the count-min
    minimum (the papers' readout), both from the same predicted sketch; "mean" still means
    "geometric", with a deprecation warning; explain's scores follow the readout."""
    train = cycle_sessions()
    histories = Sessions.from_lists([[3, 4, 5], [10, 11]], n_items=40)
    model = small_emde(epochs=1, readout="geometric").fit(train)
    log_p = np.log(model.predict_sketch(histories))                         # (2, depth, width)
    codes = model._output_codes()                                          # (40, depth)
    picked = np.stack([log_p[:, j, codes[:, j]] for j in range(codes.shape[1])], axis=2)   # (2, 40, depth)
    np.testing.assert_allclose(model.score(histories), picked.mean(2), rtol=1e-5, atol=1e-5)
    model.set_params(readout="min")           # on a fitted model: takes effect, nothing to reset
    np.testing.assert_allclose(model.score(histories), picked.min(2), rtol=1e-6)
    explained = model.explain(histories, [6, 12])
    assert [e["score"] for e in explained] == pytest.approx(picked.min(2)[[0, 1], [6, 12]], rel=1e-5)
    model.set_params(readout="mean")
    with pytest.warns(DeprecationWarning, match="geometric"):
        np.testing.assert_allclose(model.score(histories), picked.mean(2), rtol=1e-5, atol=1e-5)
    model.set_params(readout="count-min")
    with pytest.raises(ValueError, match="readout"):
        model.score(histories)


def test_row_weight_targets_weighs_rows_by_their_target_count():
    """row_weight="targets": where every row holds out the same number of items it is the plain mean,
    so the fit is the same as "row"; where counts differ, the fits differ."""
    same = cycle_sessions(n_sessions=200, length=10)          # share 0.2 of 10 items: 2 targets per row
    fits = [small_emde(inputs=("all:cleora:0",), target="holdout", epochs=2, row_weight=w).fit(same)
            for w in ("row", "targets")]
    q = cycle_sessions(n_sessions=5, seed=3)
    np.testing.assert_allclose(fits[0].score(q), fits[1].score(q), rtol=1e-4, atol=1e-4)
    rng = np.random.default_rng(0)
    mixed = Sessions.from_lists([list(rng.choice(40, n, replace=False)) for n in rng.integers(5, 30, 200)],
                                n_items=40)
    fits = [small_emde(inputs=("all:cleora:0",), target="holdout", epochs=2, row_weight=w).fit(mixed)
            for w in ("row", "targets")]
    assert np.abs(fits[0].score(q) - fits[1].score(q)).max() > 1e-3
    with pytest.raises(ValueError, match="row_weight"):
        EMDE.check_params({"row_weight": "users"})
