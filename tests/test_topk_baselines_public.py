"""The public top-k baselines (issue 31): RP3beta, SLIM, iALS, EASE in float32, and `tune_and_test`."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sketchrec.data.loaders.topk import TopkBenchmark
from sketchrec.data.sessions import Sessions
from sketchrec.eval.public_topk import PUBLIC_TOPK_GRIDS, public_topk_grid, tune_and_test
from sketchrec.models.base import Recommender
from sketchrec.models.baselines import EASE, IALS, SLIM, RP3beta

# -- RP3beta ---------------------------------------------------------------------------------

#: 4 users x 5 items; item 4 is held by nobody
TINY = [[0, 1], [0, 2], [1, 2, 3], [0]]


def rp3beta_reference(rows, n_items, alpha, beta, neighbours, normalize=False):
    """W and X·W computed densely, one formula at a time."""
    x = np.zeros((len(rows), n_items))
    for u, items in enumerate(rows):
        x[u, items] = 1.0
    p_ui = x / x.sum(axis=1, keepdims=True)
    pop = x.sum(axis=0)
    p_iu = np.divide(x.T, pop[:, None], out=np.zeros_like(x.T), where=pop[:, None] > 0)
    w = (p_iu ** alpha) @ (p_ui ** alpha)
    degree = np.divide(1.0, pop ** beta, out=np.zeros_like(pop), where=pop > 0)
    w = w * degree[None, :]
    np.fill_diagonal(w, 0.0)
    if neighbours:
        for i in range(n_items):
            order = np.argsort(-w[i], kind="stable")
            w[i, order[neighbours:]] = 0.0
    if normalize:
        sums = w.sum(axis=1, keepdims=True)
        w = np.divide(w, sums, out=np.zeros_like(w), where=sums > 0)
    return w, x @ w


def test_rp3beta_by_hand():
    # by hand, alpha 1, beta 0: item 0 is held by users 0, 1, 3 (each step 1/3); user 0 holds
    # {0, 1} (1/2 each), user 1 {0, 2}, user 3 {0}: W[0, 1] = 1/3 · 1/2, W[0, 2] = 1/3 · 1/2
    model = RP3beta(alpha=1.0, beta=0.0, neighbours=0).fit(Sessions.from_lists(TINY, n_items=5))
    w = model.similarity_.toarray()
    assert w[0, 1] == pytest.approx(1 / 6) and w[0, 2] == pytest.approx(1 / 6)
    assert w[0, 0] == 0.0 and not w[:, 4].any() and not w[4].any()
    # item 3 is held by user 2 only, who holds {1, 2, 3}: W[3, 1] = W[3, 2] = 1/3
    assert w[3, 1] == pytest.approx(1 / 3) and w[3, 2] == pytest.approx(1 / 3)


@pytest.mark.parametrize("alpha, beta, neighbours, normalize",
                         [(1.0, 0.5, 0, False), (0.7, 0.8, 2, False), (1.3, 0.0, 1, False), (1.0, 0.8, 3, True)])
def test_rp3beta_matches_the_dense_reference(alpha, beta, neighbours, normalize):
    rng = np.random.default_rng(3)
    rows = [sorted(set(rng.integers(0, 12, rng.integers(1, 6)).tolist())) for _ in range(25)]
    train = Sessions.from_lists(rows, n_items=14)                    # items 12, 13: nobody
    model = RP3beta(alpha=alpha, beta=beta, neighbours=neighbours, normalize=normalize)
    model.block_items = 5                                           # several blocks
    model.fit(train)
    w, scores = rp3beta_reference(rows, 14, alpha, beta, neighbours, normalize)
    np.testing.assert_allclose(model.similarity_.toarray(), w, rtol=1e-5, atol=1e-7)
    queries = [[0, 3], [5], [11, 2, 7]]
    expected = np.stack([w[q].sum(axis=0) for q in queries])
    np.testing.assert_allclose(model.score(Sessions.from_lists(queries, n_items=14)), expected,
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.score(train), scores, rtol=1e-5, atol=1e-7)


# -- iALS ------------------------------------------------------------------------------------

def blocks(n_users=120, n_blocks=3, block_items=10, per_user=6, seed=0) -> tuple[Sessions, np.ndarray]:
    """Users who each hold `per_user` random items of their own block only."""
    rng = np.random.default_rng(seed)
    group = np.arange(n_users) % n_blocks
    rows = [sorted((g * block_items + rng.choice(block_items, per_user, replace=False)).tolist()) for g in group]
    return Sessions.from_lists(rows, n_items=n_blocks * block_items), group


def test_ials_recovers_the_blocks():
    pytest.importorskip("implicit")
    train, group = blocks()
    model = IALS(factors=3, regularization=0.1, alpha=5.0, iterations=10, seed=0, threads=1).fit(train)
    # new users with two items of one block: the rest of that block ranks first
    queries = Sessions.from_lists([[0, 1], [12, 15], [27, 29]], n_items=30)
    scores = model.score(queries)
    assert scores.shape == (3, 30) and scores.dtype == np.float32
    for row, block in enumerate((0, 1, 2)):
        inside = np.arange(block * 10, block * 10 + 10)
        outside = np.setdiff1d(np.arange(30), inside)
        assert scores[row, inside].min() > scores[row, outside].max()
    assert model.user_factors(train.take(np.arange(3))).shape == (3, 3)


def test_ials_without_implicit_names_the_extra(monkeypatch):
    import sys

    from sketchrec._optional import MissingExtra
    monkeypatch.setitem(sys.modules, "implicit", None)
    monkeypatch.setitem(sys.modules, "implicit.cpu", None)
    monkeypatch.setitem(sys.modules, "implicit.cpu.als", None)
    train, _ = blocks()
    with pytest.raises(MissingExtra, match=r"sketchrec\[als\]"):
        IALS(factors=4).fit(train)


# -- EASE in float32 -------------------------------------------------------------------------

def test_ease_float32_equals_float64():
    rng = np.random.default_rng(1)
    rows = [sorted(set(rng.integers(0, 80, rng.integers(1, 15)).tolist())) for _ in range(300)]
    train = Sessions.from_lists(rows, n_items=80)
    double = EASE(lam=20.0).fit(train)
    single = EASE(lam=20.0, dtype="float32").fit(train)
    np.testing.assert_allclose(single.weights_, double.weights_, atol=1e-4)
    np.testing.assert_allclose(single.score(train), double.score(train), atol=1e-4)
    assert np.abs(double.weights_).max() > 1e-2 and not np.diag(single.weights_).any()
    with pytest.raises(ValueError, match="dtype"):
        EASE.check_params({"dtype": "float16"})


def test_ease_float64_is_the_textbook_formula():
    rng = np.random.default_rng(2)
    rows = [sorted(set(rng.integers(0, 40, rng.integers(1, 10)).tolist())) for _ in range(100)]
    train = Sessions.from_lists(rows, n_items=40)
    x = train.to_csr(binary=True).toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + 7.0 * np.eye(40))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(EASE(lam=7.0).fit(train).weights_, b, rtol=1e-5, atol=1e-7)


def test_ease_refuses_what_memory_cannot_hold(monkeypatch):
    from sketchrec.models.baselines import ease
    monkeypatch.setattr(ease, "available_memory_bytes", lambda: 1 << 20)
    train = Sessions.from_lists([[0, 1], [1, 2]], n_items=3)
    with pytest.raises(MemoryError, match=r"needs about .* GB but only .* GB is available"):
        EASE(lam=1.0).fit(train)


# -- tune_and_test ---------------------------------------------------------------------------

def block_parts(sizes, n_users=60, n_blocks=3, block_items=10, seed=0) -> list[Sessions]:
    """Disjoint parts of every user's items, all from the user's own block (sizes per part)."""
    rng = np.random.default_rng(seed)
    group = np.arange(n_users) % n_blocks
    picks = [g * block_items + rng.permutation(block_items) for g in group]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [Sessions.from_lists([sorted(p[a:b].tolist()) for p in picks], n_items=n_blocks * block_items)
            for a, b in zip(bounds[:-1], bounds[1:])]


class Guarded(TopkBenchmark):
    """A benchmark whose test rows are empty until `evaluation` is called, which records how
    many fits had happened by then."""

    def __init__(self, name, train, valid, test):
        empty = Sessions(np.zeros(len(train) + 1, dtype=np.int64), np.zeros(0, np.int32), train.n_items)
        super().__init__(name, train, valid, empty)
        self._hidden_test = test
        self.opened_after_fits = None

    def evaluation(self):
        if self.opened_after_fits is None:
            self.test = self._hidden_test
            self.opened_after_fits = len(FITS)
        return super().evaluation()


FITS: list[dict] = []


class Recorder(Recommender):
    """Scores item j by `quality` for the items of the user's block: a higher quality is not
    better, `good` is; the validation metric must choose good=True."""

    _state = ("n_items_fit_",)

    def __init__(self, good: bool = False, quality: int = 0, threads: int | None = None):
        self.good = good
        self.quality = quality
        self.threads = threads

    def fit(self, train):
        FITS.append({"good": self.good, "quality": self.quality, "threads": self.threads,
                     "rows": int(train.nnz)})
        self.n_items_fit_ = train.n_items
        self.n_items_ = train.n_items
        return self

    def score(self, histories):
        x = histories.to_csr(binary=True).toarray()
        block = (np.argmax(x, axis=1) // 10) if self.good else np.zeros(len(x), dtype=int)
        items = np.arange(self.n_items_)
        return ((items[None, :] // 10) == block[:, None]).astype(np.float32) + 1e-3 * self.quality


def test_tune_and_test_chooses_on_validation_and_reads_test_last():
    train, held, test = block_parts((5, 2, 2), seed=4)
    bench = Guarded("toy", train, held, test)
    FITS.clear()
    out = tune_and_test(bench, Recorder, {"quality": [0, 5], "good": [False, True]}, threads=1)
    assert out["params"] == {"quality": 0, "good": True}            # ties: the first in grid order
    assert len(out["validation"]) == 4 and len(FITS) == 5
    assert bench.opened_after_fits == 4                              # test read after every choice fit
    assert all(f["threads"] == 1 for f in FITS)
    assert [f["rows"] for f in FITS] == [train.nnz] * 4 + [train.nnz + held.nnz]   # refit: train ∪ valid
    best = max(r["NDCG@20"] for r in out["validation"])
    chosen = [r for r in out["validation"] if r["good"] and r["quality"] == 0][0]
    assert chosen["NDCG@20"] == best > max(r["NDCG@20"] for r in out["validation"] if not r["good"])
    assert out["test"]["Recall@20"] > 0.5 and out["n_test_users"] == 60
    assert out["fit_seconds"] >= 0 and out["peak_rss_mib"] > 0


def test_tune_and_test_without_valid_holds_out_part_of_train():
    train, test = block_parts((6, 2), seed=7)
    bench = Guarded("toy", train, None, test)
    FITS.clear()
    out = tune_and_test(bench, Recorder, {"good": [False, True]}, ks=(5, 20))
    assert out["params"] == {"good": True} and bench.opened_after_fits == 2
    assert FITS[0]["rows"] < train.nnz and FITS[-1]["rows"] == train.nnz
    assert {"Recall@5", "NDCG@20"} <= set(out["test"])
    with pytest.raises(ValueError, match="not measured"):
        tune_and_test(bench, Recorder, {}, metric="NDCG@10", ks=(20,))


# -- SLIM ------------------------------------------------------------------------------------

def test_slim_by_hand():
    """Items 0 and 1 always together (3 rows), item 2 alone once: G = [[3, 3, 0], [3, 3, 0], [0, 0, 1]].
    w_1 of item 0 = (G_01 - l1) / (G_11 + l2) = (3 - 1) / (3 + 1) = 0.5, and the same for item 1 from 0;
    item 2 shares no row with anything, so no weight goes to or from it."""
    rows = Sessions.from_lists([[0, 1], [0, 1], [0, 1], [2]], n_items=3)
    model = SLIM(l1=1.0, l2=1.0, neighbours=0).fit(rows)
    np.testing.assert_allclose(model.weights_.toarray(), [[0, 0.5, 0], [0.5, 0, 0], [0, 0, 0]], atol=1e-6)
    # an L1 penalty above the co-occurrence zeroes the weights
    assert SLIM(l1=3.5, l2=1.0, neighbours=0).fit(rows).weights_.nnz == 0
    np.testing.assert_allclose(model.score(Sessions.from_lists([[0], [2]], n_items=3)),
                               [[0, 0.5, 0], [0, 0, 0]], atol=1e-6)


@pytest.mark.parametrize("l1, l2", [(0.5, 2.0), (2.0, 10.0), (0.05, 5.0)])
def test_slim_matches_scikit_learns_elastic_net(l1, l2):
    """Every column of W is scikit-learn's non-negative ElasticNet of x_j on the other columns, with
    its penalties scaled by the number of rows (its error term is divided by n, ours is not)."""
    from sklearn.linear_model import ElasticNet
    rng = np.random.default_rng(3)
    dense = (rng.random((40, 9)) < 0.35).astype(np.float64)
    rows = Sessions.from_lists([list(np.flatnonzero(r)) for r in dense], n_items=9)
    w = SLIM(l1=l1, l2=l2, neighbours=0, max_iter=5000, tol=1e-10).fit(rows).weights_.toarray()
    n = len(dense)
    for j in range(9):
        others = [i for i in range(9) if i != j]
        net = ElasticNet(alpha=(l1 + l2) / n, l1_ratio=l1 / (l1 + l2), positive=True, fit_intercept=False,
                         max_iter=100_000, tol=1e-10).fit(dense[:, others], dense[:, j])
        np.testing.assert_allclose(w[others, j], net.coef_, atol=2e-4)
        assert w[j, j] == 0


def test_slim_candidates_are_the_most_co_occurring_items():
    """neighbours=2: item j's weights sit only on the two items sharing the most rows with it."""
    rng = np.random.default_rng(5)
    dense = (rng.random((60, 8)) < 0.4).astype(np.float64)
    rows = Sessions.from_lists([list(np.flatnonzero(r)) for r in dense], n_items=8)
    w = SLIM(l1=0.0, l2=1.0, neighbours=2).fit(rows).weights_.toarray()
    gram = dense.T @ dense
    np.fill_diagonal(gram, -1)
    for j in range(8):
        allowed = set(np.argsort(-gram[:, j], kind="stable")[:2])
        assert set(np.flatnonzero(w[:, j])) <= allowed


def test_slim_bad_parameters():
    with pytest.raises(ValueError, match="l2"):
        SLIM(l2=-1.0).fit(Sessions.from_lists(TINY, n_items=5))


def test_the_grids():
    assert public_topk_grid("ease", "gowalla") == {"lam": [100.0, 500.0]}
    assert public_topk_grid("ease", "ml-1m") == PUBLIC_TOPK_GRIDS["ease"]
    for name, cls in {"rp3beta": RP3beta, "slim": SLIM, "ease": EASE, "ials": IALS}.items():
        for key in PUBLIC_TOPK_GRIDS[name]:
            assert key in cls().get_params()


def test_ease_solves_in_place_one_n_squared_matrix():
    """The Cholesky inverse works in the Gram matrix's own memory: a solver that copied it (torch's
    LAPACK does so for a C-ordered matrix) needs a second n² matrix, 6.7 GB more on Gowalla — what
    got the Gowalla run killed. The fit's peak RSS above its start (VmHWM, reset before a second fit:
    imports, JIT compiles and first-call set-up are not counted), in a fresh process, stays below 1.5 n² floats."""
    code = """
import numpy as np
from sketchrec.data.sessions import Sessions
from sketchrec.models import EASE
n = 4000
rng = np.random.default_rng(0)
rows = [np.unique(rng.integers(0, n, 10)).tolist() for _ in range(500)]
train = Sessions.from_lists(rows, n_items=n)
model = EASE(lam=10.0, dtype="float32", max_items=n, threads=1).fit(train)   # imports, JIT, LAPACK's first call
del model
def status(key):
    return int(next(line for line in open("/proc/self/status") if line.startswith(key)).split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")      # the peak (VmHWM) starts again from here
before = status("VmRSS")
EASE(lam=10.0, dtype="float32", max_items=n, threads=1).fit(train)
print((status("VmHWM") - before) / (4 * n * n))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    extra = float(out.stdout.strip().splitlines()[-1])
    assert 0.8 < extra < 1.5, f"the fit's peak was {extra:.2f} n² float32 matrices above its start"
