"""T-EMDE pooling and the cross-modal model."""

import numpy as np
import pytest
import torch

from sketchrec.retrieval.crossmodal import TEMDE, AttentionPool, CrossModalModel, CrossModalTrainer, info_nce, vse_hinge
from sketchrec.retrieval.metrics import paired_retrieval_metrics


def test_temde_assignments_are_distributions_and_padding_is_ignored():
    torch.manual_seed(0)
    pool = TEMDE(8, n=3, k=5, d=4)
    x = torch.randn(2, 6, 8)
    a = pool.assignments(x)
    assert a.shape == (2, 6, 3, 5)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 6, 3))
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    out = pool(x, mask)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    # padding contents do not matter
    x2 = x.clone()
    x2[0, 3:] = 100.0
    torch.testing.assert_close(pool(x2, mask), out)
    # the sketch is the normalised sum of assignments over the real tokens
    expected = torch.nn.functional.normalize(a[0, :3].sum(0).flatten(), dim=0)
    torch.testing.assert_close(out[0], expected)


def test_temde_is_order_invariant_and_distance_based():
    torch.manual_seed(1)
    pool = TEMDE(4, n=2, k=3, d=4)
    with torch.no_grad():
        pool.proj.weight.copy_(torch.eye(8, 4))     # partition 0 sees the token itself, partition 1 zeros
        pool.proj.bias.zero_()
    x = torch.randn(1, 5, 4)
    mask = torch.ones(1, 5, dtype=torch.bool)
    torch.testing.assert_close(pool(x, mask), pool(x[:, torch.randperm(5)], mask))
    # a token sitting on centroid j of partition 0 is assigned there most
    token = pool.centroids.detach()[0, 2].view(1, 1, 4)
    assert int(pool.assignments(token)[0, 0, 0].argmax()) == 2


def test_attention_pool_masks():
    torch.manual_seed(0)
    pool = AttentionPool(4)
    x = torch.randn(1, 3, 4)
    mask = torch.tensor([[1, 1, 0]], dtype=torch.bool)
    x2 = x.clone()
    x2[0, 2] = 1e3
    torch.testing.assert_close(pool(x, mask), pool(x2, mask))


def test_losses_prefer_aligned_pairs():
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    noise = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    assert info_nce(a, a) < info_nce(a, noise)
    assert vse_hinge(a, a) < vse_hinge(a, noise)


def test_paired_retrieval_metrics_by_hand():
    img = np.eye(3, dtype=np.float32)
    txt = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=np.float32)   # texts 1 and 2 swapped
    s = paired_retrieval_metrics(img, txt)
    assert s["i2t_R@1"] == pytest.approx(1 / 3) and s["t2i_R@1"] == pytest.approx(1 / 3)
    assert s["i2t_MRR"] == pytest.approx((1 + 0.5 + 0.5) / 3)


@pytest.mark.parametrize("pooling", ["mean", "attention", "temde"])
def test_training_learns_a_shared_space(pooling):
    """Paired synthetic data: each product has a latent code; image regions and text tokens are noisy,
    differently-mixed views of it. A model trained on some products must retrieve unseen ones."""
    rng = np.random.default_rng(0)
    mix_i, mix_t = rng.normal(size=(8, 24)), rng.normal(size=(8, 20))

    def products(n, seed):
        r = np.random.default_rng(seed)
        z = r.normal(size=(n, 8))
        regions = (z[:, None, :] + 0.3 * r.normal(size=(n, 6, 8))) @ mix_i
        tokens = (z[:, None, :] + 0.3 * r.normal(size=(n, 5, 8))) @ mix_t
        mask = np.arange(5)[None, :] < r.integers(2, 6, n)[:, None]
        return regions.astype(np.float32), tokens.astype(np.float32), mask

    train, test = products(512, 1), products(200, 2)
    trainer = CrossModalTrainer(pooling, dim=32, n=4, k=8, d=8, epochs=15, batch_size=64, lr=3e-3,
                                threads=1, progress=False).fit(*train, validation=test)
    scores = trainer.evaluate(*test)
    assert scores["t2i_R@10"] > 0.5 and scores["i2t_R@10"] > 0.5, scores     # chance: 0.05
    assert trainer.history_[-1]["loss"] < trainer.history_[0]["loss"]


def test_model_refuses_unknown_pooling():
    with pytest.raises(ValueError, match="pooling"):
        CrossModalModel(4, 4, pooling="max")


def test_trainer_is_an_estimator_that_saves(tmp_path):
    from sketchrec.base import clone
    rng = np.random.default_rng(0)
    regions, tokens = rng.normal(size=(64, 3, 6)).astype(np.float32), rng.normal(size=(64, 4, 5)).astype(np.float32)
    mask = np.ones((64, 4), bool)
    trainer = CrossModalTrainer("temde", dim=16, n=2, k=4, d=4, epochs=2, batch_size=32, threads=1, progress=False)
    assert trainer.get_params()["n"] == 2 and trainer.model_params == {
        "pooling": "temde", "dim": 16, "n": 2, "k": 4, "d": 4, "temperature": 1.0, "sketch_head": False}
    with pytest.warns(DeprecationWarning, match="model_params"):
        assert trainer.params == trainer.model_params
    assert clone(trainer).get_params() == trainer.get_params()
    trainer.fit(regions, tokens, mask, validation=(regions[:16], tokens[:16], mask[:16]))
    trainer.save(tmp_path / "xm.npz")
    back = CrossModalTrainer.load(tmp_path / "xm.npz")
    for a, b in zip(trainer.embed(regions, tokens, mask), back.embed(regions, tokens, mask)):
        np.testing.assert_array_equal(a, b)
    assert back.history_ == trainer.history_ and back.best_epoch_ == trainer.best_epoch_


def test_the_former_module_still_imports_with_a_warning():
    import importlib
    import sys
    sys.modules.pop("sketchrec.models.crossmodal", None)
    old = importlib.import_module("sketchrec.models.crossmodal")
    with pytest.warns(DeprecationWarning, match="sketchrec.retrieval.crossmodal"):
        assert old.CrossModalTrainer is CrossModalTrainer
    img = np.eye(3, dtype=np.float32)
    with pytest.warns(DeprecationWarning, match="paired_retrieval_metrics"):
        assert old.retrieval_scores(img, img) == paired_retrieval_metrics(img, img)
    with pytest.raises(AttributeError):
        old.no_such_name
