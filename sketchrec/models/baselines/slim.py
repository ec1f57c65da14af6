"""SLIM (Ning & Karypis, ICDM 2011) with candidate selection (fsSLIM, Ning & Karypis, RecSys 2012):
a sparse, non-negative item-item regression for top-k recommendation."""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from sketchrec._threads import compute_threads
from sketchrec.data.sessions import Sessions
from sketchrec.models.base import Recommender, input_matrix, sparse_rows_to_dense
from sketchrec.models.baselines.itemknn import prune_rows


class SLIM(Recommender):
    """Per item j: w_j = argmin ½‖x_j − X w‖² + l1·‖w‖₁ + ½·l2·‖w‖²  over w ≥ 0, w_j = 0,
    w non-zero only on C_j; W = [w_1 … w_n], scores = X W.

    X is the binary user-item matrix and x_j its column j. C_j, the candidates of item j, are
    the `neighbours` items that share the most training rows with j (fsSLIM's selection; 0: every
    item, the original SLIM). The problem only needs the co-occurrence Gram matrix G = XᵀX, so
    each item is solved by cyclic coordinate descent on its |C_j| x |C_j| block of G
    (w_c ← max(0, (G_cj − Σ_{c'≠c} G_cc' w_c' − l1) / (G_cc + l2))), items in parallel.

    The penalties are on the unscaled squared error: scikit-learn's ElasticNet (which divides
    the error by the number of rows n) gives the same w with alpha = (l1 + l2) / n and
    l1_ratio = l1 / (l1 + l2), positive=True, no intercept.

    Parameters
    ----------
    l1 : L1 penalty (sparsity of W).
    l2 : L2 penalty (the scale of EASE's λ: hundreds on MovieLens).
    neighbours : candidates per item (0 = all items; cost grows with its square).
    max_iter : coordinate-descent sweeps per item at most.
    tol : a sweep whose largest weight change is below tol x the largest weight ends the item.
    threads : numba threads of `fit` (None: all cores); results do not depend on it.
    """

    _state = ("weights_",)
    _param_bounds = {"l1": (0, None), "l2": (0, None), "neighbours": (0, None), "max_iter": (1, None),
                     "tol": (0, None), "threads": (1, None)}

    def __init__(self, l1: float = 1.0, l2: float = 100.0, neighbours: int = 200, max_iter: int = 100,
                 tol: float = 1e-4, threads: int | None = None):
        self.l1 = l1
        self.l2 = l2
        self.neighbours = neighbours
        self.max_iter = max_iter
        self.tol = tol
        self.threads = threads

    def fit(self, train: Sessions) -> "SLIM":
        self.check_params(self.get_params())
        n = train.n_items
        x = train.to_csr(binary=True).astype(np.float64)
        x.sum_duplicates()
        x.data[:] = 1.0
        gram = (x.T @ x).tocsr()
        gram.sort_indices()
        # candidates: row j of G without its diagonal, its largest `neighbours` entries, sorted by item
        off = gram.copy()
        rows = np.repeat(np.arange(n), np.diff(off.indptr))
        off.data[off.indices == rows] = 0.0
        off.eliminate_zeros()
        candidates = prune_rows(off, self.neighbours) if self.neighbours else off
        candidates.sort_indices()
        with compute_threads(self.threads):
            data = _solve_items(gram.indptr.astype(np.int64), gram.indices.astype(np.int32), gram.data,
                                candidates.indptr.astype(np.int64), candidates.indices.astype(np.int32),
                                candidates.data.astype(np.float64), float(self.l1), float(self.l2),
                                int(self.max_iter), float(self.tol))
        # column j of W holds w_j: the candidate rows are W's columns, so W = (that matrix)ᵀ
        w_t = sp.csr_matrix((data.astype(np.float32), candidates.indices.copy(), candidates.indptr.copy()),
                            shape=(n, n))
        w_t.eliminate_zeros()
        self.weights_ = w_t.T.tocsr()
        self.weights_.sort_indices()
        self.n_items_ = n
        return self

    def score(self, histories: Sessions) -> np.ndarray:
        self._check_histories(histories)
        x = input_matrix(histories, self.n_items_)
        return sparse_rows_to_dense((x @ self.weights_).tocsr())


@numba.njit(parallel=True, cache=True)
def _solve_items(g_ptr, g_idx, g_val, c_ptr, c_idx, c_val, l1, l2, max_iter, tol):
    """w_j for every item j (prange), laid out as the candidates' CSR data: c_idx[c_ptr[j]:c_ptr[j+1]]
    are C_j (sorted), c_val there G_{C_j, j}. Each item: its block G[C_j, C_j] (G's rows
    at the candidates' columns: a merge of two sorted lists, or binary search in a long row), then cyclic coordinate descent with q = G_block · w kept up to date."""
    out = np.zeros(len(c_idx), dtype=np.float64)
    for j in numba.prange(len(c_ptr) - 1):
        start, stop = c_ptr[j], c_ptr[j + 1]
        k = stop - start
        if k == 0:
            continue
        cand = c_idx[start:stop]
        block = np.zeros((k, k))
        for a in range(k):                          # row cand[a] of G at columns cand[a:] (G symmetric)
            p, p_end = g_ptr[cand[a]], g_ptr[cand[a] + 1]
            if p_end - p > (k - a) * 16:            # a long row: binary-search each wanted column
                for b in range(a, k):
                    i = p + np.searchsorted(g_idx[p:p_end], cand[b])
                    if i < p_end and g_idx[i] == cand[b]:
                        block[a, b] = block[b, a] = g_val[i]
            else:                                   # a short one: merge the two sorted lists
                b = a
                while p < p_end and b < k:
                    col = g_idx[p]
                    if col == cand[b]:
                        block[a, b] = block[b, a] = g_val[p]
                        p += 1
                        b += 1
                    elif col < cand[b]:
                        p += 1
                    else:
                        b += 1
        w = np.zeros(k)
        q = np.zeros(k)                              # block @ w
        for _ in range(max_iter):
            largest_change, largest_w = 0.0, 0.0
            for a in range(k):
                old = w[a]
                numerator = c_val[start + a] - (q[a] - block[a, a] * old) - l1
                new = numerator / (block[a, a] + l2) if numerator > 0.0 else 0.0
                if new != old:
                    delta = new - old
                    for b in range(k):               # block is symmetric: its row a, contiguous
                        q[b] += block[a, b] * delta
                    w[a] = new
                    largest_change = max(largest_change, abs(delta))
                largest_w = max(largest_w, new)
            if largest_change <= tol * largest_w:
                break
        out[start:stop] = w
    return out
