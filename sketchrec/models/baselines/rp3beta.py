"""RP3beta (Paudel et al., TiiS 2017; as in Dacrema et al., RecSys 2019): a three-step random
walk user -> item -> user -> item, re-ranked by popularity, for top-k recommendation."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sketchrec._threads import compute_threads
from sketchrec.data.sessions import Sessions
from sketchrec.models.base import Recommender, input_matrix, sparse_rows_to_dense
from sketchrec.models.baselines.itemknn import prune_rows


class RP3beta(Recommender):
    """W_ij = (P_iu · P_ui)_ij / pop_j^beta (diagonal 0, top `neighbours` per row), scores = X W.

    P_ui is the binary user-item matrix X with rows normalised to sum 1 (user -> item
    transitions), P_iu the same for Xᵀ (item -> user). Every entry of both is raised to
    `alpha` after that normalisation (Dacrema et al.'s implementation; alpha = 1 is the plain
    walk), so (P_iu · P_ui)_ij is the probability that a walk from item i reaches item j in
    two more steps. pop_j is the number of training rows holding item j (items nobody holds
    get weight 0). With `normalize`, every row of the pruned W is then scaled to sum 1
    (Dacrema et al.'s ``normalize_similarity``; off there and here by default).

    Parameters
    ----------
    alpha : exponent of the transition probabilities (1: the random walk).
    beta : popularity penalty of the destination item (0: P3alpha).
    neighbours : entries kept per row of W (0 = all).
    normalize : scale every row of the pruned W to sum 1 (an item's walk mass is shared out
        however popular it is; on ML-1M this is what reproduces the independent figure for
        beta 0.8, 200 neighbours: Recall@20 0.2411, NDCG@20 0.2296).
    threads : numba threads of the pruning in `fit` (None: all cores); results do not depend on it.
    """

    _state = ("similarity_",)
    _param_bounds = {"alpha": (0, None), "beta": (0, None), "neighbours": (0, None), "threads": (1, None)}

    #: item rows of W computed at a time (bounds the memory of the unpruned product)
    block_items = 4096

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, neighbours: int = 200,
                 normalize: bool = False, threads: int | None = None):
        self.alpha = alpha
        self.beta = beta
        self.neighbours = neighbours
        self.normalize = normalize
        self.threads = threads

    def fit(self, train: Sessions) -> "RP3beta":
        n = train.n_items
        x = train.to_csr(binary=True).astype(np.float64)
        x.sum_duplicates()
        x.data[:] = 1.0
        p_ui = _row_normalised(x, self.alpha)
        xt = x.T.tocsr()
        p_iu = _row_normalised(xt, self.alpha)
        popularity = np.diff(xt.indptr).astype(np.float64)
        degree = np.zeros(n)
        np.power(popularity, -float(self.beta), where=popularity > 0, out=degree)
        # degree folded into P_ui's columns: (P_iu · P_ui)·diag(degree) = P_iu · (P_ui·diag(degree))
        p_ui_deg = (p_ui @ sp.diags(degree)).tocsr()
        blocks = []
        with compute_threads(self.threads):
            for start in range(0, n, self.block_items):
                stop = min(start + self.block_items, n)
                w = (p_iu[start:stop] @ p_ui_deg).tocsr()
                rows = np.repeat(np.arange(stop - start), np.diff(w.indptr))
                w.data[w.indices == rows + start] = 0.0          # no item recommends itself
                w.eliminate_zeros()
                w = w.astype(np.float32)
                w = prune_rows(w, self.neighbours) if self.neighbours else w
                if self.normalize:
                    w = _row_normalised(w, 1.0).astype(np.float32)
                blocks.append(w)
        self.similarity_ = sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, n), dtype=np.float32)
        self.similarity_.sort_indices()
        self.n_items_ = n
        return self

    def score(self, histories: Sessions) -> np.ndarray:
        self._check_histories(histories)
        x = input_matrix(histories, self.n_items_)
        return sparse_rows_to_dense((x @ self.similarity_).tocsr())


def _row_normalised(m: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """Rows scaled to sum 1 (empty rows stay empty), then every entry raised to alpha."""
    sums = np.asarray(m.sum(axis=1)).ravel()
    inv = np.zeros_like(sums)
    np.divide(1.0, sums, where=sums > 0, out=inv)
    out = (sp.diags(inv) @ m).tocsr()
    if alpha != 1.0:
        out.data = np.power(out.data, alpha)
    return out
