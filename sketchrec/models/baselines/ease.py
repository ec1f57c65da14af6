"""EASE (Steck, WWW 2019): closed-form linear item-item autoencoder for top-k."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.linalg.lapack

from sketchrec._threads import compute_threads
from sketchrec.data.sessions import Sessions
from sketchrec.models.base import Recommender, input_matrix


class EASE(Recommender):
    """B = I - P · diag(1 / diag(P)),  P = (XᵀX + λI)⁻¹,  scores = X B.

    Dense in the number of items (memory 8·n_items² bytes during the solve):
    meant for catalogues up to a few tens of thousands of items.

    Parameters
    ----------
    lam : L2 regularisation λ (tune on validation; hundreds for MovieLens).
    max_items : refuse catalogues larger than this rather than exhaust memory.
    threads : BLAS threads of the solve in `fit` (None: the BLAS library's default, every core).
    """

    _state = ("weights_",)
    _param_bounds = {"lam": (0, None), "max_items": (1, None), "threads": (1, None)}

    def __init__(self, lam: float = 500.0, max_items: int = 30_000, threads: int | None = None):
        self.lam = lam
        self.max_items = max_items
        self.threads = threads

    def fit(self, train: Sessions) -> "EASE":
        n = train.n_items
        if n > self.max_items:
            raise ValueError(f"EASE needs an {n}x{n} dense matrix; n_items={n} exceeds "
                             f"max_items={self.max_items}")
        x = train.to_csr(binary=True)
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices(n)] += self.lam
        with compute_threads(self.threads):
            # gram is symmetric positive definite: Cholesky inverse costs half of LU's
            chol, info = scipy.linalg.lapack.dpotrf(gram, lower=True, overwrite_a=True)
            if info != 0:
                raise np.linalg.LinAlgError(f"XᵀX + λI is not positive definite (lapack info={info})")
            p, info = scipy.linalg.lapack.dpotri(chol, lower=True, overwrite_c=True)
        p = np.tril(p) + np.tril(p, -1).T  # dpotri fills one triangle
        b = p / (-np.diag(p))
        b[np.diag_indices(n)] = 0.0
        self.weights_ = b.astype(np.float32)
        self.n_items_ = n
        return self

    def score(self, histories: Sessions) -> np.ndarray:
        self._check_histories(histories)
        return np.asarray(input_matrix(histories, self.n_items_) @ self.weights_, dtype=np.float32)
