"""iALS (Hu, Koren, Volinsky, ICDM 2008) through the `implicit` library (extra ``[als]``)."""

from __future__ import annotations

import numpy as np

from sketchrec._optional import require
from sketchrec._threads import compute_threads
from sketchrec.data.sessions import Sessions
from sketchrec.models.base import Recommender, input_matrix


class IALS(Recommender):
    """Implicit-feedback matrix factorisation: `implicit.cpu.als.AlternatingLeastSquares` on the
    binary training rows (confidence = alpha on held items, as `implicit` defines it).

    Histories are scored from their own items, not from the training users' factors: each row's
    user factors are solved exactly (Cholesky, `implicit`'s ``recalculate_user``) against the
    fitted item factors with the same regularisation and confidence, then scores = user factors ·
    item factorsᵀ. So the model scores users it was not fitted on, and a training row scores as
    the next ALS user step would.

    Parameters
    ----------
    factors : latent dimension.
    regularization : L2 weight λ of `implicit` (on both factor matrices).
    alpha : confidence of a held item (`implicit`'s ``alpha``: C = alpha · X).
    iterations : ALS sweeps (each: all user factors, then all item factors).
    seed : random state of the initial factors.
    threads : OpenMP threads of `implicit` in `fit` and `score` (None: all cores). BLAS is held
        to one thread inside `implicit`, as it asks.
    """

    _state = ("item_factors_",)
    _param_bounds = {"factors": (1, None), "regularization": (0, None), "alpha": (0, None),
                     "iterations": (1, None), "seed": (0, None), "threads": (1, None)}

    def __init__(self, factors: int = 128, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, seed: int = 0, threads: int | None = None):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.threads = threads

    def _als(self):
        als = require("implicit.cpu.als", "the iALS baseline")
        with compute_threads(1):            # implicit warns unless BLAS runs one thread
            return als.AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                dtype=np.float32, iterations=self.iterations, random_state=self.seed,
                num_threads=0 if self.threads is None else int(self.threads))

    def fit(self, train: Sessions) -> "IALS":
        model = self._als()
        x = train.to_csr(binary=True).astype(np.float32)
        x.sum_duplicates()
        x.data[:] = 1.0
        with compute_threads(1):
            model.fit(x, show_progress=False)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self.n_items_ = train.n_items
        self._model = model
        return self

    def _fitted_model(self):
        model = getattr(self, "_model", None)
        if model is None or model.item_factors is not self.item_factors_:
            model = self._als()
            model.item_factors = self.item_factors_
            self._model = model
        return model

    def user_factors(self, histories: Sessions) -> np.ndarray:
        """(B, factors) float32: each history's least-squares user factors."""
        self._check_histories(histories)
        x = input_matrix(histories, self.n_items_).astype(np.float32)
        x.sum_duplicates()
        x.data[:] = 1.0
        model = self._fitted_model()
        with compute_threads(1):
            return np.asarray(model.recalculate_user(np.arange(x.shape[0]), x), dtype=np.float32)

    def score(self, histories: Sessions) -> np.ndarray:
        users = self.user_factors(histories)
        return np.asarray(users @ self.item_factors_.T, dtype=np.float32)
