"""Deterministic top-k selection over score matrices.

All functions return numpy arrays: ``items`` int64 and ``values`` float32, both
shaped ``(B, min(k, N))`` and sorted by descending score.  On the numpy path ties
are broken by the lower item index, so results are reproducible across
platforms and numpy versions (``np.argpartition`` alone does not give this).
"""

from __future__ import annotations

from typing import Any, Callable

import numba
import numpy as np

__all__ = ["topk", "topk_chunked", "inner_product_topk"]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return int(k)


def _check_exclude(exclude: Any, n_rows: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a CSR-like ``(indptr, indices)`` pair; return (row_ids, col_ids)."""
    if not (isinstance(exclude, (tuple, list)) and len(exclude) == 2):
        raise TypeError("exclude must be a pair (indptr, indices)")
    indptr = np.asarray(exclude[0])
    indices = np.asarray(exclude[1])
    if indptr.ndim != 1 or indptr.shape[0] != n_rows + 1:
        raise ValueError(
            f"exclude indptr must have shape ({n_rows + 1},), got {indptr.shape}"
        )
    if indices.ndim != 1 or (indices.size and not np.issubdtype(indices.dtype, np.integer)):
        raise ValueError("exclude indices must be a 1-d integer array")
    if not np.issubdtype(indptr.dtype, np.integer):
        raise ValueError("exclude indptr must be an integer array")
    indptr = indptr.astype(np.int64, copy=False)
    counts = np.diff(indptr)
    if indptr[0] != 0 or (counts < 0).any() or indptr[-1] != indices.shape[0]:
        raise ValueError(
            "exclude indptr must start at 0, be non-decreasing and end at len(indices)"
        )
    indices = indices.astype(np.int64, copy=False)
    if indices.size and (indices.min() < 0 or indices.max() >= n_items):
        raise ValueError(f"exclude indices must lie in [0, {n_items})")
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
    return rows, indices


@numba.njit(inline="always")
def _worse(v, i, w, j):
    """Is (value v, item i) ranked below (w, j)? Lower value, or equal value and higher index."""
    return v < w or (v == w and i > j)


@numba.njit(inline="always")
def _sift_down(hv, hi, pos, size):
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        if child + 1 < size and _worse(hv[child + 1], hi[child + 1], hv[child], hi[child]):
            child += 1
        if _worse(hv[child], hi[child], hv[pos], hi[pos]):
            hv[pos], hv[child] = hv[child], hv[pos]
            hi[pos], hi[child] = hi[child], hi[pos]
            pos = child
        else:
            return


@numba.njit(inline="always")
def _offer(hv, hi, size, k, v, j):
    """Offer (v, j) to the size-k heap in hv / hi (root = worst kept); returns the new size."""
    if size < k:                               # fill, then heapify once
        hv[size], hi[size] = v, j
        size += 1
        if size == k:
            for pos in range(k // 2 - 1, -1, -1):
                _sift_down(hv, hi, pos, k)
    elif _worse(hv[0], hi[0], v, j):
        hv[0], hi[0] = v, j
        _sift_down(hv, hi, 0, k)
    return size


_BLOCK = 64


@numba.njit(nogil=True, cache=True)
def select_row(row, k, ex_cols, e, e_end, items_out, values_out):
    """The k best (value, item) of one score row, ties to the lower item, sorted best first, into
    items_out / values_out; items ex_cols[e:e_end] (sorted) count as -inf. One pass with a size-k
    heap whose root is the worst kept item. Returns whether the row held a NaN.

    Once the heap is full, the row is read in blocks of _BLOCK: a block with no exclusion in which
    no value beats the root (a comparison the compiler vectorises) is skipped whole; items come in
    increasing order, so an equal value never displaces the root and `v > root` is the exact test.
    Only blocks holding a candidate, an exclusion or a NaN take the item-by-item path."""
    n = row.shape[0]
    hv = values_out
    hi = items_out
    size = 0
    has_nan = False
    if k == 0:
        for t in range(n):
            has_nan |= row[t] != row[t]
        return has_nan
    j = 0
    while j < n:
        full_block = size == k and j + _BLOCK <= n
        end = j + _BLOCK if full_block else j + 1
        while e < e_end and ex_cols[e] < j:
            e += 1
        if full_block and not (e < e_end and ex_cols[e] < end):
            root = hv[0]
            hits = 0
            for t in range(_BLOCK):                          # fixed trip count: LLVM vectorises it
                hits += not (np.float64(row[j + t]) <= root)    # a value over the root, or a NaN
            if hits:                                         # only values over the root enter
                for t in range(j, end):
                    v = np.float64(row[t])
                    if v != v:
                        has_nan = True
                    elif v > hv[0]:
                        size = _offer(hv, hi, size, k, v, t)
            j = end
            continue
        for t in range(j, end):
            v = np.float64(row[t])
            while e < e_end and ex_cols[e] < t:
                e += 1
            if e < e_end and ex_cols[e] == t:
                v = -np.inf
            elif v != v:
                has_nan = True
            size = _offer(hv, hi, size, k, v, t)
        j = end
    for last in range(k - 1, 0, -1):           # heap sort: the worst goes to the end
        hv[0], hv[last] = hv[last], hv[0]
        hi[0], hi[last] = hi[last], hi[0]
        _sift_down(hv, hi, 0, last)
    return has_nan


@numba.njit(parallel=True, cache=True, nogil=True)
def _topk_rows(scores, k, ex_indptr, ex_cols):
    """`select_row` over every row, in parallel. Returns (items, values, has_nan per row)."""
    b = scores.shape[0]
    items = np.empty((b, k), np.int64)
    values = np.empty((b, k), np.float64)
    nan_rows = np.zeros(b, np.bool_)
    for r in numba.prange(b):
        nan_rows[r] = select_row(scores[r], k, ex_cols, ex_indptr[r], ex_indptr[r + 1], items[r], values[r])
    return items, values, nan_rows


def sorted_exclusions(exclude, n_rows: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, columns sorted within each row) of a CSR-like exclusion pair; empty when None."""
    if exclude is None:
        return np.zeros(n_rows + 1, np.int64), np.zeros(0, np.int64)
    rows, cols = _check_exclude(exclude, n_rows, n_items)
    return np.asarray(exclude[0], dtype=np.int64), cols[np.lexsort((cols, rows))]


def _topk_rows_numpy(s: np.ndarray, kk: int, exclude) -> tuple[np.ndarray, np.ndarray]:
    ex_indptr, ex_cols = sorted_exclusions(exclude, *s.shape)
    items, values, nan_rows = _topk_rows(s, kk, ex_indptr, ex_cols)
    if nan_rows.any():
        raise ValueError("scores contains NaN")
    return items, values.astype(np.float32)


def _topk_torch(scores: Any, k: int, exclude: Any) -> tuple[np.ndarray, np.ndarray]:
    import torch

    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-d (B, N), got shape {tuple(scores.shape)}")
    b, n = scores.shape
    kk = min(k, n)
    work = scores.detach()
    if not work.is_floating_point():
        work = work.to(torch.float64)
    if bool(torch.isnan(work).any()):
        raise ValueError("scores contains NaN")
    if exclude is not None:
        rows, cols = _check_exclude(exclude, b, n)
        work = work.clone()
        r = torch.from_numpy(rows).to(work.device)
        c = torch.from_numpy(cols).to(work.device)
        work[r, c] = float("-inf")
    vals, idx = torch.topk(work, kk, dim=1, largest=True, sorted=True)
    return (
        idx.to(torch.int64).cpu().numpy(),
        vals.to(torch.float32).cpu().numpy(),
    )


def topk(
    scores: Any, k: int, *, exclude: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k items per row.

    Parameters
    ----------
    scores : (B, N) array of real numbers, or a ``torch.Tensor``
        Higher is better. ``-inf`` is allowed (ranked last); NaN raises.
        The caller's array is never modified.
    k : int >= 0
        Number of items to return; clipped to N.
    exclude : optional pair ``(indptr, indices)``
        CSR-like item lists per row: ``indptr`` int (B+1,), ``indices`` int
        (nnz,). Those items get score ``-inf`` before selection (they can
        still appear, with value ``-inf``, if a row has fewer than k other
        items).

    Returns
    -------
    items : (B, min(k, N)) int64, sorted by descending score; ties broken
        by the lower item index (numpy path).
    values : (B, min(k, N)) float32, the matching scores.

    Notes
    -----
    For a ``torch.Tensor`` input ``torch.topk`` is used (on the tensor's
    device) and the results are returned as numpy arrays; ``torch.topk``
    does not guarantee any order among tied scores, so tie order may differ
    from the numpy path.
    """
    k = _check_k(k)
    if _is_torch(scores):
        return _topk_torch(scores, k, exclude)
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be 2-d (B, N), got shape {s.shape}")
    if not (np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)):
        raise TypeError(f"scores must be a real numeric array, got dtype {s.dtype}")
    b, n = s.shape
    kk = min(k, n)
    if 0 < kk <= 1024 and b and s.dtype in (np.float32, np.float64) and s.flags.c_contiguous:
        return _topk_rows_numpy(s, kk, exclude)           # one parallel pass, no copies
    if np.issubdtype(s.dtype, np.integer) or s.dtype == np.float16:
        work = s.astype(np.float64)
    else:
        work = s
        if np.isnan(work).any():
            raise ValueError("scores contains NaN")
    if exclude is not None:
        rows, cols = _check_exclude(exclude, b, n)
        if work is s:
            work = s.copy()
        work[rows, cols] = -np.inf
    if kk == 0 or b == 0:
        return np.zeros((b, kk), np.int64), np.zeros((b, kk), np.float32)

    if kk == n:
        cand = np.broadcast_to(np.arange(n, dtype=np.int64), (b, n))
    else:
        part = np.argpartition(-work, kk - 1, axis=1)[:, :kk].copy()
        cand_vals = np.take_along_axis(work, part, axis=1)
        # The k-th largest value; everything strictly above it is in `part`.
        v = cand_vals.min(axis=1)
        eq_full = work == v[:, None]
        eq_total = eq_full.sum(axis=1)
        eq_in_cand = (cand_vals == v[:, None]).sum(axis=1)
        fix = np.flatnonzero(eq_total > eq_in_cand)
        if fix.size:
            # Boundary ties straddle the cut: keep everything above v plus the
            # lowest-index items equal to v (np.nonzero yields columns ascending).
            gt = cand_vals[fix] > v[fix, None]
            need = kk - gt.sum(axis=1)
            g_rows, g_pos = np.nonzero(gt)
            g_cols = part[fix][g_rows, g_pos]
            e_rows, e_cols = np.nonzero(eq_full[fix])
            e_start = np.cumsum(eq_total[fix]) - eq_total[fix]
            n_start = np.cumsum(need) - need
            take = np.repeat(e_start - n_start, need) + np.arange(need.sum())
            rows_all = np.concatenate([g_rows, e_rows[take]])
            cols_all = np.concatenate([g_cols, e_cols[take]])
            order = np.argsort(rows_all, kind="stable")
            part[fix] = cols_all[order].reshape(fix.size, kk)
        del eq_full
        cand = part
    cand = np.sort(cand, axis=1)
    vals = np.take_along_axis(work, cand, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")  # stable => index order on ties
    items = np.take_along_axis(cand, order, axis=1).astype(np.int64, copy=False)
    values = np.take_along_axis(vals, order, axis=1).astype(np.float32)
    return np.ascontiguousarray(items), values


def topk_chunked(
    score_fn: Callable[[int, int], Any],
    n_rows: int,
    k: int,
    *,
    chunk_rows: int = 1024,
    exclude: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k over a score matrix produced chunk by chunk to bound memory.

    Parameters
    ----------
    score_fn : callable ``(start, stop) -> (stop - start, N)`` scores
        numpy array or torch tensor (see :func:`topk`); N must be the same
        for every chunk.
    n_rows : int, total number of rows B.
    k : int, as in :func:`topk`.
    chunk_rows : int > 0, rows per call to ``score_fn``.
    exclude : optional ``(indptr (B+1,), indices (nnz,))`` for all B rows.
    progress : show a tqdm progress bar.

    Returns
    -------
    items (B, min(k, N)) int64 and values (B, min(k, N)) float32, identical
    to ``topk(full_scores, k, exclude=exclude)``. When ``n_rows == 0`` the
    arrays have shape (0, 0).
    """
    k = _check_k(k)
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 0:
        raise ValueError(f"n_rows must be an int >= 0, got {n_rows!r}")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be an int >= 1, got {chunk_rows!r}")
    n_rows = int(n_rows)
    if exclude is not None:
        if not (isinstance(exclude, (tuple, list)) and len(exclude) == 2):
            raise TypeError("exclude must be a pair (indptr, indices)")
        ex_ptr = np.asarray(exclude[0]).astype(np.int64, copy=False)
        ex_idx = np.asarray(exclude[1])
        if ex_ptr.ndim != 1 or ex_ptr.shape[0] != n_rows + 1:
            raise ValueError(
                f"exclude indptr must have shape ({n_rows + 1},), got {ex_ptr.shape}"
            )
    from tqdm.auto import tqdm

    items_parts: list[np.ndarray] = []
    values_parts: list[np.ndarray] = []
    n_items: int | None = None
    with tqdm(total=n_rows, unit="rows", disable=not progress, desc="topk") as bar:
        for start in range(0, n_rows, int(chunk_rows)):
            stop = min(start + int(chunk_rows), n_rows)
            chunk = score_fn(start, stop)
            shape = tuple(chunk.shape)
            if len(shape) != 2 or shape[0] != stop - start:
                raise ValueError(
                    f"score_fn({start}, {stop}) must return shape ({stop - start}, N), got {shape}"
                )
            if n_items is None:
                n_items = shape[1]
            elif shape[1] != n_items:
                raise ValueError(
                    f"score_fn returned N={shape[1]} for rows {start}:{stop}, expected {n_items}"
                )
            ex = None
            if exclude is not None:
                lo, hi = ex_ptr[start], ex_ptr[stop]
                ex = (ex_ptr[start : stop + 1] - lo, ex_idx[lo:hi])
            it, va = topk(chunk, k, exclude=ex)
            items_parts.append(it)
            values_parts.append(va)
            bar.update(stop - start)
    if not items_parts:
        return np.zeros((0, 0), np.int64), np.zeros((0, 0), np.float32)
    return np.concatenate(items_parts), np.concatenate(values_parts)


def inner_product_topk(
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    *,
    exclude: tuple[np.ndarray, np.ndarray] | None = None,
    chunk_rows: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k rows of `base` by inner product with each query: the one exact search
    primitive (cosine search is this over unit rows; `sketchrec.retrieval.CentroidIndex` wraps it).

    queries (B, d) and base (N, d) float arrays; ``queries[s:e] @ base.T`` is scored `chunk_rows`
    queries at a time, so memory stays at chunk_rows x N scores. `k` and `exclude` as in
    :func:`topk`. Returns items (B, min(k, N)) int64 and values (B, min(k, N)) float32, sorted
    best first, ties to the lower row (exactly ``topk(queries @ base.T, k, exclude=exclude)``).
    """
    queries, base = np.asarray(queries), np.asarray(base)
    if queries.ndim != 2 or base.ndim != 2 or queries.shape[1] != base.shape[1]:
        raise ValueError(f"queries (B, d) and base (N, d) must share d, got shapes {queries.shape} and {base.shape}")
    k = _check_k(k)
    if len(queries) == 0:
        kk = min(k, len(base))
        return np.zeros((0, kk), np.int64), np.zeros((0, kk), np.float32)
    return topk_chunked(lambda start, stop: queries[start:stop] @ base.T, len(queries), k,
                        chunk_rows=chunk_rows, exclude=exclude)
