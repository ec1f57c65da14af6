"""EMDE sketches: a weighted set of items as a normalised histogram over DLSH buckets.

A history (session, user) becomes an (N, 2^K) array: sketch[j, code[i, j]] += w_i
for each of its items i, then every depth row is divided by Σ w (so each row
is a distribution). Several modalities (codes from different embeddings) are
concatenated. The readout turns a predicted sketch back into item scores; `Readout` gives
the geometric mean over depth of p[j, code[i, j]] (as the mean of logs, with an optional scale
and per-item bias: EMDE's "geometric" and "bayes" readouts) or, with reduce="min", the minimum
over depth: the count-min sketch's estimate, which is how the EMDE papers read item scores.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from sketchrec.data.sessions import Sessions
from sketchrec.topk import _offer, _sift_down, select_row, sorted_exclusions


def click_weights(histories: Sessions, decay: float | None = None) -> np.ndarray:
    """(nnz,) float32 weights: the histories' own (or 1), times decay^(steps back) if given."""
    w = (histories.weights.astype(np.float32, copy=True) if histories.weights is not None
         else np.ones(histories.nnz, dtype=np.float32))
    if decay is not None:
        if not 0 < decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        back = histories.lengths[histories.row_of_click()] - 1 - histories.position_of_click()
        w *= np.power(np.float32(decay), back.astype(np.float32))
    return w


def sketch_histories(histories: Sessions, codes: np.ndarray, width: int, *, decay: float | None = None,
                     sparse: bool = False):
    """Sketch every row of `histories`.

    codes: (n_items, N) int32 bucket ids from a `DLSHCoder`; width: 2^K.
    Returns (B, N, width) float32 (dense) or a (B, N·width) CSR (sparse=True);
    every depth row of a non-empty history sums to 1, empty histories are zero.
    Vectorised: one bincount (dense) or one COO build (sparse) over all clicks × depths.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or len(codes) < histories.n_items:
        raise ValueError(f"codes must be (n_items >= {histories.n_items}, N), got shape {codes.shape}")
    n_rows, depth = len(histories), codes.shape[1]
    w = click_weights(histories, decay)
    total = np.bincount(histories.row_of_click(), weights=w, minlength=n_rows).astype(np.float64)
    inv = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
    w = (w * inv[histories.row_of_click()]).astype(np.float32)
    rows = histories.row_of_click()
    cols = (np.arange(depth, dtype=np.int64) * width)[None, :] + codes[histories.items]   # (nnz, N)
    if sparse:
        m = sp.csr_matrix((np.repeat(w, depth), (np.repeat(rows, depth), cols.ravel())),
                          shape=(n_rows, depth * width), dtype=np.float32)
        m.sum_duplicates()
        return m
    flat = rows[:, None] * (depth * width) + cols
    out = np.bincount(flat.ravel(), weights=np.repeat(w, depth), minlength=n_rows * depth * width)
    return out.astype(np.float32).reshape(n_rows, depth, width)


def concat_modalities(sketches: list) -> np.ndarray | sp.csr_matrix:
    """Join per-modality sketches of the same rows along the feature axis: (B, Σ N_m·width_m)."""
    if all(sp.issparse(s) for s in sketches):
        return sp.hstack(sketches, format="csr")
    return np.concatenate([np.asarray(s).reshape(len(s), -1) for s in sketches], axis=1)


class StreamingSketch:
    """One history's sketch kept up to date event by event (O(N) per event).

    With decay γ, every new event first multiplies the past by γ, so an item
    seen s steps ago weighs γ^s — the same weights as `sketch_histories(decay=γ)`.
    """

    def __init__(self, codes: np.ndarray, width: int, decay: float | None = None):
        self.codes = np.asarray(codes)
        self.width = width
        self.decay = decay
        self.counts = np.zeros((self.codes.shape[1], width), dtype=np.float64)
        self.total = 0.0

    def update(self, item: int, weight: float = 1.0) -> "StreamingSketch":
        if self.decay is not None:
            self.counts *= self.decay
            self.total *= self.decay
        self.counts[np.arange(self.codes.shape[1]), self.codes[item]] += weight
        self.total += weight
        return self

    def value(self) -> np.ndarray:
        """(N, width) float32, rows summing to 1 (zeros before any event)."""
        if self.total <= 0:
            return np.zeros_like(self.counts, dtype=np.float32)
        return (self.counts / self.total).astype(np.float32)


class Readout:
    """Item scores from predicted sketches, for a fixed item coding (reused across batches).

    codes: (n_items, N) bucket ids; stored transposed and as uint8 when the
    width allows, so a scoring pass streams 1 byte per (item, depth).
    method: "pairs" joins depths two by two: per row, a width² table holds
    log p_j[u] + log p_{j+1}[v], and each item needs one gather (a uint16 pair
    code) per two depths — half the gathers for a table build of N/2 · width²
    adds per row, a gain when n_items >> width²; "direct" gathers per depth;
    "auto" picks pairs when width <= 256 and n_items >= 2 · width².

    `topk` over `batch_rows` rows or more runs batch-first (`_batch_topk_kernel`): the users of a
    block sit in the SIMD lanes, so an item costs `depth` contiguous vector adds instead of a
    gather per user; the sums keep the method's order, so both paths give the same floats.
    """

    batch_rows = 16

    def __init__(self, codes: np.ndarray, width: int, method: str = "auto"):
        codes = np.asarray(codes)
        if method not in ("auto", "pairs", "direct"):
            raise ValueError(f"method must be 'auto', 'pairs' or 'direct', got {method!r}")
        dtype = np.uint8 if width <= 256 else (np.uint16 if width <= 65536 else np.int32)
        self.codes_t = np.ascontiguousarray(codes.T.astype(dtype))
        self.width = width
        if method == "auto":
            method = "pairs" if width <= 256 and len(codes) >= 2 * width * width else "direct"
        if method == "pairs" and width > 256:
            raise ValueError("method='pairs' needs width <= 256 (pair codes are uint16)")
        self.method = method
        self._offsets = None
        if method == "pairs":
            n_pairs = self.codes_t.shape[0] // 2
            ct = self.codes_t.astype(np.uint16)
            self.pair_codes_t = np.ascontiguousarray(ct[0:2 * n_pairs:2] * width + ct[1:2 * n_pairs:2])

    @property
    def n_items(self) -> int:
        return self.codes_t.shape[1]

    def __call__(self, probabilities: np.ndarray, out: np.ndarray | None = None, eps: float = 1e-12
                 ) -> np.ndarray:
        """(B, N, width) probabilities -> (B, n_items) float32 mean over depth of log p[j, code[i, j]].

        The log of the geometric mean: same ranking, no underflow. `out` may be
        a reused (B, n_items) float32 buffer. Cost O(B · N · n_items).
        """
        p = np.asarray(probabilities, dtype=np.float32)
        if p.ndim != 3 or p.shape[1:] != (self.codes_t.shape[0], self.width):
            raise ValueError(f"probabilities must be (B, {self.codes_t.shape[0]}, {self.width}), "
                             f"got shape {p.shape}")
        return self.from_log(np.log(np.maximum(p, np.float32(eps))), out)

    def from_log(self, log_p: np.ndarray, out: np.ndarray | None = None, *, scale: float = 1.0,
                 bias: np.ndarray | None = None, reduce: str = "mean") -> np.ndarray:
        """The same from (B, N, width) log-probabilities (e.g. a network's log-softmax).

        reduce="mean": `scale` multiplies the mean over depth and an (n_items,) `bias` is added,
        in the same pass (scale = N gives the sum over depth). reduce="min": the minimum over
        depth of log p[j, code[i, j]] (count-min; no scale or bias)."""
        log_p = np.ascontiguousarray(log_p, dtype=np.float32)
        if log_p.ndim != 3 or log_p.shape[1:] != (self.codes_t.shape[0], self.width):
            raise ValueError(f"log-probabilities must be (B, {self.codes_t.shape[0]}, {self.width}), "
                             f"got shape {log_p.shape}")
        if out is None:
            out = np.empty((log_p.shape[0], self.n_items), dtype=np.float32)
        if reduce == "min":
            if scale != 1.0 or bias is not None:
                raise ValueError("reduce='min' takes no scale or bias")
            _readout_min_kernel(log_p, self.codes_t, out)
            return out
        if reduce != "mean":
            raise ValueError(f"reduce must be 'mean' or 'min', got {reduce!r}")
        if bias is None:
            bias = np.zeros(0, np.float32)
        else:
            bias = np.ascontiguousarray(bias, dtype=np.float32)
            if bias.shape != (self.n_items,):
                raise ValueError(f"bias must have shape ({self.n_items},), got {bias.shape}")
        scale = np.float32(scale / self.codes_t.shape[0])
        if self.method == "pairs":
            _readout_pairs_kernel(log_p, self.pair_codes_t, self.codes_t, out, scale, bias)
        else:
            _readout_kernel(log_p, self.codes_t, out, scale, bias)
        return out

    def topk(self, log_p: np.ndarray, k: int, *, scale: float = 1.0, bias: np.ndarray | None = None,
             exclude: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`sketchrec.topk(self.from_log(log_p, scale=, bias=), k, exclude=)` without the
        (B, n_items) score matrix: each row is scored into a cache-sized buffer and selected at
        once (same items, same tie order). Returns (items int64, scores float32), best first."""
        log_p = np.ascontiguousarray(log_p, dtype=np.float32)
        if log_p.ndim != 3 or log_p.shape[1:] != (self.codes_t.shape[0], self.width):
            raise ValueError(f"log-probabilities must be (B, {self.codes_t.shape[0]}, {self.width}), "
                             f"got shape {log_p.shape}")
        kk = min(int(k), self.n_items)
        if kk < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        bias = np.zeros(0, np.float32) if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
        if bias.shape not in ((0,), (self.n_items,)):
            raise ValueError(f"bias must have shape ({self.n_items},), got {bias.shape}")
        ex_indptr, ex_cols = sorted_exclusions(exclude, log_p.shape[0], self.n_items)
        pairs, scale = self.method == "pairs", np.float32(scale / self.codes_t.shape[0])
        rows = np.arange(log_p.shape[0])
        if len(rows) >= self.batch_rows:
            # batch-first: all rows at once, users in the SIMD lanes; a row whose kept set would
            # need every item (k + its exclusions > items) or that holds a NaN takes the row kernel
            capacity = kk + np.diff(ex_indptr)
            items, values, nan_rows = _batch_topk_kernel(log_p, self.offsets, pairs, scale, bias, kk, ex_indptr,
                                                         ex_cols, np.minimum(capacity, self.n_items), _LANES)
            rows = np.flatnonzero(nan_rows | (capacity > self.n_items))
        else:
            items, values = np.empty((len(rows), kk), np.int64), np.empty((len(rows), kk), np.float64)
        if len(rows):
            sub = np.zeros(len(rows) + 1, np.int64)
            sub[1:] = np.cumsum(ex_indptr[rows + 1] - ex_indptr[rows])
            cols = np.concatenate([ex_cols[ex_indptr[r]:ex_indptr[r + 1]] for r in rows]) if len(ex_cols) else ex_cols
            items[rows], values[rows], nan_rows = _readout_topk_kernel(
                np.ascontiguousarray(log_p[rows]), self.pair_codes_t if pairs else np.zeros((0, 0), np.uint16),
                self.codes_t, pairs, scale, bias, kk, sub, cols)
            if nan_rows.any():
                raise ValueError("the scores contain NaN")
        return items, values.astype(np.float32)

    @property
    def offsets(self) -> np.ndarray:
        """(n_items, depth) row of each (item, depth) in a (depth · width)-row table: j · width + code."""
        if self._offsets is None:
            depth = self.codes_t.shape[0]
            dtype = np.uint16 if depth * self.width <= 65536 else np.int64
            self._offsets = np.ascontiguousarray(
                (self.codes_t.T.astype(np.int64) + np.arange(depth) * self.width).astype(dtype))
        return self._offsets


def readout(probabilities: np.ndarray, codes: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """One-off `Readout`: (B, N, width) probabilities and (n_items, N) codes -> (B, n_items) scores."""
    p = np.asarray(probabilities)
    return Readout(codes, p.shape[2])(p, eps=eps)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _finish_row(row, scale, bias):
    if bias.shape[0]:
        for i in range(row.shape[0]):
            row[i] = row[i] * scale + bias[i]
    else:
        for i in range(row.shape[0]):
            row[i] *= scale


@numba.njit(cache=True, nogil=True, fastmath=True)
def _direct_row(log_p_b, codes_t, row, scale, bias):
    # per depth j: the width-long log row stays in L1 while every item's code is streamed;
    # the first depth assigns, the others add
    depth, n_items = codes_t.shape
    table = log_p_b[0]
    code = codes_t[0]
    for i in range(n_items):
        row[i] = table[code[i]]
    for j in range(1, depth):
        table = log_p_b[j]
        code = codes_t[j]
        for i in range(n_items):
            row[i] += table[code[i]]
    _finish_row(row, scale, bias)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _pairs_row(log_p_b, pair_codes_t, codes_t, row, table, scale, bias):
    # one width² table per depth pair (built once, reused by every item), then one gather per
    # item and pair; an odd last depth is gathered directly
    depth, width = log_p_b.shape
    n_pairs, n_items = pair_codes_t.shape
    for p in range(n_pairs):
        for u in range(width):
            a = log_p_b[2 * p, u]
            for v in range(width):
                table[u * width + v] = a + log_p_b[2 * p + 1, v]
        code = pair_codes_t[p]
        if p == 0:
            for i in range(n_items):
                row[i] = table[code[i]]
        else:
            for i in range(n_items):
                row[i] += table[code[i]]
    if depth % 2 == 1:
        last = log_p_b[depth - 1]
        code1 = codes_t[depth - 1]
        if n_pairs == 0:
            for i in range(n_items):
                row[i] = last[code1[i]]
        else:
            for i in range(n_items):
                row[i] += last[code1[i]]
    _finish_row(row, scale, bias)


@numba.njit(parallel=True, cache=True, nogil=True)
def _readout_min_kernel(log_p, codes_t, out):
    # count-min: per row, the smallest log-probability over depth at each item's bucket
    depth, n_items = codes_t.shape
    for b in numba.prange(log_p.shape[0]):
        row = out[b]
        table, code = log_p[b, 0], codes_t[0]
        for i in range(n_items):
            row[i] = table[code[i]]
        for j in range(1, depth):
            table, code = log_p[b, j], codes_t[j]
            for i in range(n_items):
                row[i] = min(row[i], table[code[i]])


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def _readout_kernel(log_p, codes_t, out, scale, bias):
    for b in numba.prange(log_p.shape[0]):
        _direct_row(log_p[b], codes_t, out[b], scale, bias)


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def _readout_pairs_kernel(log_p, pair_codes_t, codes_t, out, scale, bias):
    width = log_p.shape[2]
    for b in numba.prange(log_p.shape[0]):
        table = np.empty(width * width, dtype=np.float32)
        _pairs_row(log_p[b], pair_codes_t, codes_t, out[b], table, scale, bias)


@numba.njit(parallel=True, cache=True, nogil=True)
def _readout_topk_kernel(log_p, pair_codes_t, codes_t, use_pairs, scale, bias, k, ex_indptr, ex_cols):
    # the readout of a row into a row-sized scratch buffer (it stays in cache), then its top-k:
    # the (B, n_items) score matrix is never materialised
    n_rows, _, width = log_p.shape
    n_items = codes_t.shape[1]
    items = np.empty((n_rows, k), np.int64)
    values = np.empty((n_rows, k), np.float64)
    nan_rows = np.zeros(n_rows, np.bool_)
    for b in numba.prange(n_rows):
        row = np.empty(n_items, dtype=np.float32)
        if use_pairs:
            _pairs_row(log_p[b], pair_codes_t, codes_t, row, np.empty(width * width, np.float32), scale, bias)
        else:
            _direct_row(log_p[b], codes_t, row, scale, bias)
        nan_rows[b] = select_row(row, k, ex_cols, ex_indptr[b], ex_indptr[b + 1], items[b], values[b])
    return items, values, nan_rows


# -- batch-first readout: users in the SIMD lanes -------------------------------------------------

_LANES = 32    # users scored together: per (item, depth) one contiguous row of 32 log-probabilities


# fastmath without nnan / ninf (the NaN-rooted heaps and the NaN check need IEEE compares) and
# without reassoc (the sums keep their order)
_FAST_IEEE = {"contract", "arcp", "nsz", "afn"}


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=_FAST_IEEE)
def _batch_topk_kernel(log_p, offsets, use_pairs, scale, bias, k, ex_indptr, ex_cols, capacity, lanes):
    # Users in blocks of `lanes`, each block's (depth·width, lanes) log-probabilities transposed so
    # that an item's score for all the block's users is `depth` contiguous row adds that LLVM
    # vectorises (no gathers). `lanes` is a run-time argument on purpose (never a default: numba
    # would make it a constant): a constant trip count is unrolled into scalar code before the
    # vectoriser sees it. The sums keep the row kernels'
    # order (pairs: a + b per depth pair, then pair after pair), so the scores are the same floats.
    # Each user keeps a heap of k + its exclusions, entered only by scores over its root (one
    # vectorised compare per item; NaN roots let every score in until the heap is full).
    n_rows, depth, width = log_p.shape
    n_items = offsets.shape[0]
    n_blocks = (n_rows + lanes - 1) // lanes
    kmax = capacity.max() if n_rows else 0
    heap_v = np.empty((n_rows, kmax), np.float64)
    heap_i = np.empty((n_rows, kmax), np.int64)
    sizes = np.zeros(n_rows, np.int64)
    nan_rows = np.zeros(n_rows, np.bool_)
    n_pairs = depth // 2 if use_pairs else 0
    for blk in numba.prange(n_blocks):
        u0 = blk * lanes
        nu = min(lanes, n_rows - u0)
        table = np.zeros((depth * width, lanes), np.float32)
        for u in range(nu):
            for j in range(depth):
                for c in range(width):
                    table[j * width + c, u] = log_p[u0 + u, j, c]
        acc = np.empty(lanes, np.float32)
        roots = np.full(lanes, np.nan, np.float32)
        roots[nu:] = np.inf                                  # lanes past the last user never enter
        for i in range(n_items):
            o = offsets[i]
            if n_pairs:
                r0, r1 = table[o[0]], table[o[1]]
                for t in range(lanes):
                    acc[t] = r0[t] + r1[t]
                for p in range(1, n_pairs):
                    r0, r1 = table[o[2 * p]], table[o[2 * p + 1]]
                    for t in range(lanes):
                        acc[t] += r0[t] + r1[t]
                start = 2 * n_pairs
            else:
                r0 = table[o[0]]
                for t in range(lanes):
                    acc[t] = r0[t]
                start = 1
            for j in range(start, depth):
                r0 = table[o[j]]
                for t in range(lanes):
                    acc[t] += r0[t]
            if bias.shape[0]:
                b = bias[i]
                for t in range(lanes):
                    acc[t] = acc[t] * scale + b
            else:
                for t in range(lanes):
                    acc[t] *= scale
            hits = 0
            for t in range(lanes):
                hits += not (acc[t] <= roots[t])
            if hits == 0:
                continue
            for u in range(nu):
                v = np.float64(acc[u])
                r = u0 + u
                if v != v:
                    nan_rows[r] = True
                    continue
                cap = capacity[r]
                if sizes[r] < cap:
                    sizes[r] = _offer(heap_v[r], heap_i[r], sizes[r], cap, v, i)
                    if sizes[r] == cap:
                        roots[u] = heap_v[r, 0]
                elif v > heap_v[r, 0]:
                    _offer(heap_v[r], heap_i[r], cap, cap, v, i)
                    roots[u] = heap_v[r, 0]
    items = np.empty((n_rows, k), np.int64)
    values = np.empty((n_rows, k), np.float64)
    for r in numba.prange(n_rows):
        hv, hi, size = heap_v[r], heap_i[r], sizes[r]
        for last in range(size - 1, 0, -1):                # heap sort, best first
            hv[0], hv[last] = hv[last], hv[0]
            hi[0], hi[last] = hi[last], hi[0]
            _sift_down(hv, hi, 0, last)
        out, e0, e1 = 0, ex_indptr[r], ex_indptr[r + 1]
        for s in range(size):                              # the best k that are not excluded
            if out == k:
                break
            excluded = False
            for e in range(e0, e1):
                excluded |= ex_cols[e] == hi[s]
            if not excluded:
                items[r, out], values[r, out] = hi[s], hv[s]
                out += 1
    return items, values, nan_rows
