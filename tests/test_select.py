"""`Blend` (standardised scores, weighted) and `select` (fit candidates and blends on validation,
refit the winner): the winner is the validation's best, the test set is never needed."""

from __future__ import annotations

import numpy as np
import pytest

from sketchrec.data.sessions import Sessions, expand_prefixes
from sketchrec.eval.validation import NextItemValidation
from sketchrec.models import EMDE, Popularity, SequentialRules
from sketchrec.models.blend import Blend, standardise_rows
from sketchrec.models.select import refit_copy, select

N_ITEMS = 30


def walks(n: int, seed: int) -> Sessions:
    """Sessions walking i -> i+1 (mod 30); items 0-4 start most sessions (so they are the most popular)."""
    rng = np.random.default_rng(seed)
    starts = np.where(rng.random(n) < 0.5, rng.integers(0, 5, n), rng.integers(0, N_ITEMS, n))
    return Sessions.from_lists(((starts[:, None] + np.arange(5)[None, :]) % N_ITEMS).tolist(), n_items=N_ITEMS)


def test_standardise_rows():
    s = np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0], [0.0, -np.inf, 2.0]], dtype=np.float32)
    out = standardise_rows(s.copy())
    np.testing.assert_allclose(out[0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    np.testing.assert_array_equal(out[1], 0.0)
    assert np.isfinite(out[2]).all() and out[2, 1] == out[2, 0]         # -inf -> the row's finite minimum


def test_blend_is_the_weighted_sum_of_standardised_scores_and_round_trips(tmp_path):
    train, queries = walks(300, 0), Sessions.from_lists([[3, 4], [10], [28, 29, 0]], n_items=N_ITEMS)
    a, b = Popularity().fit(train), SequentialRules(steps=2).fit(train)
    blend = Blend.of_fitted([a, b], (0.3, 0.7))
    want = 0.3 * standardise_rows(a.score(queries).copy()) + 0.7 * standardise_rows(b.score(queries).copy())
    np.testing.assert_allclose(blend.score(queries), want, rtol=1e-5, atol=1e-6)
    blend.save(tmp_path / "blend.npz")
    loaded = Blend.load(tmp_path / "blend.npz")
    np.testing.assert_allclose(loaded.score(queries), blend.score(queries), rtol=1e-6)
    assert [type(m).__name__ for m in loaded.models_] == ["Popularity", "SequentialRules"]
    fitted = Blend((Popularity(), SequentialRules(steps=2)), (0.3, 0.7)).fit(train)   # fit: clones of the models
    np.testing.assert_allclose(fitted.score(queries), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="weights"):
        Blend((Popularity(),), (0.5, 0.5)).fit(train)


def test_select_picks_the_validation_best_and_refits_it():
    train, valid = walks(400, 0), walks(60, 1)
    validation = NextItemValidation(*expand_prefixes(valid), ks=(5,), select="MRR@5")
    full = walks(500, 2)
    chosen = select({"pop": Popularity(), "sr": SequentialRules(steps=2)}, train, validation, refit=full,
                    blend_weights=(0.5,))
    by_name = {r["name"]: r["metrics"]["MRR@5"] for r in chosen.rows}
    assert set(by_name) == {"pop", "sr", "sr+pop (0.5/0.5)"}
    assert chosen.best == max(by_name, key=by_name.get) and by_name["sr"] > by_name["pop"]
    assert chosen.best != "pop"
    assert chosen.model.is_fitted() and chosen.model.n_items_ == N_ITEMS
    # the refitted winner is fitted on `refit`, not on the validation split's rows
    winner = SequentialRules(steps=2).fit(full) if chosen.best == "sr" else None
    if winner is not None:
        np.testing.assert_allclose(chosen.model.score(valid), winner.score(valid))
    assert chosen.table()[0][0] == chosen.best
    with pytest.raises(ValueError, match="reports no"):
        select({"pop": Popularity()}, train, validation, metric="HR@99")


def test_refit_copy_trains_for_the_epochs_validation_chose():
    model = EMDE(epochs=9, progress=False)
    fitted = EMDE(epochs=9, progress=False)
    fitted.best_epoch_ = 4
    again = refit_copy(model, fitted)
    assert again.epochs == 4 and model.epochs == 9 and not again.is_fitted()
    assert refit_copy(Popularity(), Popularity()).get_params() == Popularity().get_params()


def test_a_blend_bundles_and_loads_checked(tmp_path):
    from sketchrec.bundle import load_bundle, save_bundle
    from sketchrec.models import EASE
    from sketchrec.versioned import BundleError
    train, queries = walks(300, 0), Sessions.from_lists([[3, 4], [10]], n_items=N_ITEMS)
    blend = Blend.of_fitted([SequentialRules(steps=2).fit(train), EASE(lam=5.0).fit(train)], (0.6, 0.4))
    save_bundle(tmp_path / "b", blend, None)
    loaded = load_bundle(tmp_path / "b").model
    assert [type(m).__name__ for m in loaded.models_] == ["SequentialRules", "EASE"]
    np.testing.assert_allclose(loaded.score(queries), blend.score(queries), rtol=1e-6)

    class Opaque(Popularity):           # a class sketchrec cannot check arrays for
        pass
    with pytest.raises(BundleError, match="Opaque"):
        save_bundle(tmp_path / "c", Blend.of_fitted([Opaque().fit(train), Popularity().fit(train)]), None)


def test_cli_train_auto_on_session_files(tmp_path):
    from typer.testing import CliRunner

    from sketchrec.bundle import load_bundle
    from sketchrec.cli import app
    rows = []
    for name, sessions in (("train", walks(400, 0)), ("test", walks(80, 1))):
        lines = ["session_id,item_id,timestamp"]
        for s, items in enumerate(sessions.to_lists()):
            lines += [f"{name}{s},i{item},{t}" for t, item in enumerate(items)]
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n")
        rows.append(tmp_path / f"{name}.csv")
    result = CliRunner().invoke(app, ["train", "auto", "--train", str(rows[0]), "--test", str(rows[1]), "--model", "pop",
                                      "--model", "sr", "-o", str(tmp_path / "bundle")])
    assert result.exit_code == 0, result.output
    assert "wins on validation MRR@20" in result.output and "sr+pop" in result.output
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.config["selected"] in {"sr", "sr+pop (0.8/0.2)", "sr+pop (0.65/0.35)", "sr+pop (0.5/0.5)",
                                         "sr+pop (0.35/0.65)", "sr+pop (0.2/0.8)"}
    assert bundle.metrics["MRR@20"] > 0.5          # the walks are deterministic: i -> i+1
    result = CliRunner().invoke(app, ["train", "auto", "--train", str(rows[0]), "--test", str(rows[1]),
                                      "--model", "nope"])
    assert result.exit_code == 2 and "unknown candidate" in result.output


def test_topk_auto_candidates_fit_and_score():
    """Every top-k candidate of `train auto` but EMDE (trained elsewhere) fits and scores a small set;
    SLIM is among them, and EASE only where its n_items² matrix is allowed."""
    from sketchrec.models import SLIM
    from sketchrec.pipeline import auto_candidates
    candidates = auto_candidates("topk", N_ITEMS)
    assert any(isinstance(m, SLIM) for m in candidates.values()) and "ease(lam=100)" in candidates
    assert not any(name.startswith("ease") for name in auto_candidates("topk", 10**6))
    train = walks(200, 0)
    for name, model in candidates.items():
        if name != "emde":
            scores = model.fit(train).score(walks(10, 1))
            assert scores.shape == (10, N_ITEMS) and np.isfinite(scores).all(), name
