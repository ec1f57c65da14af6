"""Numba kernels of Cleora's propagation. Rows run in parallel and never share
outputs, so results do not depend on the thread count."""

from __future__ import annotations

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@numba.njit(cache=True, inline="always")
def _splitmix(x):
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@numba.njit(parallel=True, cache=True, nogil=True)
def init_uniform(out, row_start, col_start, seed):
    """out[i, c] = U(-1, 1) drawn from hash(seed, row_start + i, col_start + c).

    A pure function of (seed, row, column): any block of T0 can be made
    anywhere (another process, a Dask worker) and equals the same block of
    the whole matrix. Cost O(n·d).
    """
    n, d = out.shape
    s = _splitmix(np.uint64(seed) * _GOLDEN + np.uint64(1))
    for i in numba.prange(n):
        r = _splitmix(s ^ (np.uint64(row_start + i) * _MIX1))
        for c in range(d):
            x = _splitmix(r + np.uint64(col_start + c) * _GOLDEN)
            out[i, c] = np.float32((x >> np.uint64(40)) * (1.0 / 16777216.0) * 2.0 - 1.0)


@numba.njit(cache=True, nogil=True)
def _fill_csr(src, dst, w, symmetric, indptr, indices, data):
    # counting-sort placement: entry e goes to the next free slot of its row;
    # a symmetric edge (not a self-loop) is placed in both rows. O(E).
    cursor = indptr[:-1].copy()
    for e in range(len(src)):
        a, b = src[e], dst[e]
        p = cursor[a]
        indices[p] = b
        data[p] = w[e]
        cursor[a] = p + 1
        if symmetric and a != b:
            p = cursor[b]
            indices[p] = a
            data[p] = w[e]
            cursor[b] = p + 1


@numba.njit(parallel=True, cache=True, nogil=True)
def _sort_sum_rows(bounds, indptr, indices, data, new_len):
    # per row (nnz-balanced chunks in parallel): sort by column, add up
    # duplicates in place; new_len[r] = kept entries
    for chunk in numba.prange(len(bounds) - 1):
        for r in range(bounds[chunk], bounds[chunk + 1]):
            _sort_sum_row(indptr, indices, data, new_len, r)


@numba.njit(cache=True, nogil=True, inline="always")
def _sort_sum_row(indptr, indices, data, new_len, r):
    lo, hi = indptr[r], indptr[r + 1]
    if hi - lo == 0:
        new_len[r] = 0
        return
    order = np.argsort(indices[lo:hi], kind="mergesort")
    cols = indices[lo:hi][order]
    vals = data[lo:hi][order]
    k = 0
    for t in range(hi - lo):
        if t > 0 and cols[t] == cols[t - 1]:
            vals[k - 1] += vals[t]
        else:
            cols[k] = cols[t]
            vals[k] = vals[t]
            k += 1
    indices[lo:lo + k] = cols[:k]
    data[lo:lo + k] = vals[:k]
    new_len[r] = k


@numba.njit(parallel=True, cache=True, nogil=True)
def _compact(indptr, indices, data, new_indptr, out_indices, out_data):
    for r in numba.prange(len(indptr) - 1):
        lo, k = indptr[r], new_indptr[r + 1] - new_indptr[r]
        out_indices[new_indptr[r]:new_indptr[r] + k] = indices[lo:lo + k]
        out_data[new_indptr[r]:new_indptr[r] + k] = data[lo:lo + k]


def edges_to_csr(src, dst, weight, n: int, symmetric: bool):
    """Canonical CSR (sorted columns, duplicates summed) of an edge list.

    src, dst: (E,) int node ids < n; weight: (E,) float32. symmetric adds
    each non-loop edge in both directions. Returns (indptr int64, indices
    int32, data float32). Counting sort + parallel per-row sort: O(E log deg).
    """
    src = np.ascontiguousarray(src, dtype=np.int64)
    dst = np.ascontiguousarray(dst, dtype=np.int64)
    counts = np.bincount(src, minlength=n)
    if symmetric:
        off = src != dst
        counts = counts + np.bincount(dst[off], minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=np.int32)
    data = np.empty(indptr[-1], dtype=np.float32)
    _fill_csr(src, dst, np.ascontiguousarray(weight, dtype=np.float32), symmetric, indptr, indices, data)
    new_len = np.empty(n, dtype=np.int64)
    _sort_sum_rows(row_chunks(indptr), indptr, indices, data, new_len)
    new_indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(new_len, out=new_indptr[1:])
    if new_indptr[-1] == indptr[-1]:
        return indptr, indices, data
    out_indices = np.empty(new_indptr[-1], dtype=np.int32)
    out_data = np.empty(new_indptr[-1], dtype=np.float32)
    _compact(indptr, indices, data, new_indptr, out_indices, out_data)
    return new_indptr, out_indices, out_data


def row_chunks(indptr: np.ndarray, per_thread: int = 64) -> np.ndarray:
    """Row boundaries splitting a CSR matrix into chunks of about equal nnz.

    Power-law graphs put most edges on few rows: equal-row chunks would leave
    one thread with most of the work; many small chunks of equal nnz keep
    every thread busy. Returns (n_chunks + 1,) int64 row indices.
    """
    n = len(indptr) - 1
    n_chunks = max(1, numba.get_num_threads() * per_thread)
    targets = np.linspace(0.0, float(indptr[-1]), n_chunks + 1)
    bounds = np.searchsorted(indptr, targets).astype(np.int64)
    bounds[0], bounds[-1] = 0, n
    return np.unique(bounds)


@numba.njit(cache=True, fastmath=True, inline="always")
def _gather_row(indptr, indices, data, dense, i, o):
    # o = Σ_k data[k] · dense[indices[k]] over row i; returns ||o||² in float64
    o[:] = 0.0
    d = dense.shape[1]
    for k in range(indptr[i], indptr[i + 1]):
        w = data[k]
        row = dense[indices[k]]
        for c in range(d):
            o[c] += w * row[c]
    s = 0.0
    for c in range(d):
        s += np.float64(o[c]) * np.float64(o[c])
    return s


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def spmm_rows(bounds, indptr, indices, data, dense, out, sq_norm):
    """out[i] = Σ_k data[k] · dense[indices[k]] for every row i of a CSR matrix,
    and sq_norm[i] += ||out[i]||² (float64, so blocks of columns can add up).

    Cost O(nnz · d) multiply-adds; reads nnz rows of `dense` (the bandwidth
    bound). Rows go in nnz-balanced chunks; each row is written by one thread.
    """
    for chunk in numba.prange(len(bounds) - 1):
        for i in range(bounds[chunk], bounds[chunk + 1]):
            sq_norm[i] += _gather_row(indptr, indices, data, dense, i, out[i])


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def propagate_normalised(bounds, indptr, indices, data, dense, out):
    """out[i] = rownorm_L2(Σ_k data[k] · dense[indices[k]]): one pass, normalised while in cache."""
    for chunk in numba.prange(len(bounds) - 1):
        for i in range(bounds[chunk], bounds[chunk + 1]):
            o = out[i]
            s = _gather_row(indptr, indices, data, dense, i, o)
            if s > 0.0:
                inv = np.float32(1.0 / np.sqrt(s))
                for c in range(o.shape[0]):
                    o[c] *= inv


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def spmm_columns(bounds, indptr, indices, data, dense, c0, out, sq_norm):
    """out[i, :] = Σ_k data[k] · dense[indices[k], c0:c0 + w] (w = out.shape[1]) and
    sq_norm[i] += ||out[i]||²: one column block of M · dense, for in-place
    propagation (columns of M·T depend only on the same columns of T).
    """
    w_cols = out.shape[1]
    for chunk in numba.prange(len(bounds) - 1):
        for i in range(bounds[chunk], bounds[chunk + 1]):
            o = out[i]
            o[:] = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                w = data[k]
                row = dense[indices[k]]
                for c in range(w_cols):
                    o[c] += w * row[c0 + c]
            s = 0.0
            for c in range(w_cols):
                s += np.float64(o[c]) * np.float64(o[c])
            sq_norm[i] += s


@numba.njit(parallel=True, cache=True, nogil=True)
def copy_columns(src, dst, c0):
    """dst[:, c0:c0 + src.shape[1]] = src, rows in parallel."""
    n, w = src.shape
    for i in numba.prange(n):
        for c in range(w):
            dst[i, c0 + c] = src[i, c]


def propagate_in_place(indptr, indices, data, dense, block_dims):
    """dense <- rownorm_L2(M · dense) using one (n, block_dims) buffer instead of a second matrix.

    Memory n·(d + block_dims) floats instead of 2·n·d; reads M once per column block.
    """
    n, d = dense.shape
    bounds = row_chunks(indptr)
    buffer = np.empty((n, min(block_dims, d)), dtype=np.float32)
    sq = np.zeros(n, dtype=np.float64)
    for c0 in range(0, d, block_dims):
        width = min(block_dims, d - c0)
        out = buffer[:, :width] if width == buffer.shape[1] else np.empty((n, width), np.float32)
        spmm_columns(bounds, indptr, indices, data, dense, c0, out, sq)
        copy_columns(out, dense, c0)
    scale_rows(dense, sq)
    return dense


@numba.njit(parallel=True, cache=True, nogil=True)
def scale_rows(x, sq_norm):
    """x[i] /= sqrt(sq_norm[i]) in place (rows with zero norm stay zero)."""
    n, d = x.shape
    for i in numba.prange(n):
        if sq_norm[i] > 0.0:
            inv = np.float32(1.0 / np.sqrt(sq_norm[i]))
            for c in range(d):
                x[i, c] *= inv


def propagate(indptr, indices, data, dense, out=None):
    """out = rownorm_L2(M · dense) for a CSR M given by (indptr, indices, data)."""
    if out is None:
        out = np.empty((len(indptr) - 1, dense.shape[1]), dtype=np.float32)
    propagate_normalised(row_chunks(indptr), indptr, indices, data, dense, out)
    return out
