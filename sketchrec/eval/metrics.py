"""Ranking metrics for session recommendation, top-k retrieval and link prediction.

Conventions
-----------
* Ranks are 1-based. Per-row metric arrays are float64 of shape (B,).
* Single-target protocol (SR-GNN and follow-ups): each row has one target
  item; ``HR@K`` (called "P@K" / "Recall@K" in those papers) is 1 if the
  target's rank <= K. RecBole's ``Precision@K`` is a different quantity
  (hits / K, see :func:`precision_at_k`): for one target it equals HR@K / K.
* Multi-relevant protocol: a row has a set R of relevant items, given in
  CSR form ``(relevant_indptr (B+1,), relevant_indices (nnz,))``; sets must
  not contain duplicates. Rows with an empty R give NaN; :func:`summarise`
  averages with ``nanmean`` and reports how many rows were NaN.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

__all__ = [
    "target_ranks", "linkpred_ranks", "hit_rate", "mrr", "ndcg_single",
    "session_metrics", "hits_at_k", "relevant_counts", "precision_at_k",
    "recall_at_k", "hit_rate_at_k", "ndcg_at_k", "map_at_k", "mrr_at_k",
    "ranking_metrics", "summarise", "retrieval_average_precision",
    "retrieval_map", "cmc_accuracy", "retrieval_first_ranks",
]

_TIES = ("pessimistic", "optimistic", "average")
_CHUNK_ELEMS = 1 << 22  # elements per (rows, N) temporary when chunking


def _int_arg(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _chunk(n_cols: int, chunk_rows: int | None) -> int:
    if chunk_rows is None:
        return max(1, _CHUNK_ELEMS // max(n_cols, 1))
    return _int_arg("chunk_rows", chunk_rows)


def _scores_2d(name: str, x: Any) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-d, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{name} must be real numeric, got dtype {a.dtype}")
    return a


def _ranks_1d(ranks: Any) -> np.ndarray:
    r = np.asarray(ranks)
    if r.ndim != 1:
        raise ValueError(f"ranks must be 1-d (B,), got shape {r.shape}")
    r = r.astype(np.float64, copy=False)
    if r.size and not (np.isfinite(r).all() and r.min() >= 1):
        raise ValueError("ranks must be finite and >= 1 (1-based)")
    return r


def _rank_against(s: np.ndarray, ref: np.ndarray, ties: str, self_in_s: bool,
                  chunk_rows: int | None) -> np.ndarray:
    """Rank of ``ref[i]`` among row ``s[i]`` (+ itself unless ``self_in_s``), chunked."""
    if ties not in _TIES:
        raise ValueError(f"ties must be one of {_TIES}, got {ties!r}")
    b, m = s.shape
    last = m if self_in_s else m + 1
    out = np.empty(b, np.float64 if ties == "average" else np.int64)
    step = _chunk(m, chunk_rows)
    for lo in range(0, b, step):
        hi = min(lo + step, b)
        blk, r = s[lo:hi], ref[lo:hi, None]
        gt = (blk > r).sum(axis=1)
        eq = (blk == r).sum(axis=1) - int(self_in_s)
        if ties == "pessimistic":
            rk = 1 + gt + eq
        elif ties == "optimistic":
            rk = 1 + gt
        else:
            rk = 1.0 + gt + eq / 2.0
        out[lo:hi] = np.where(np.isfinite(r[:, 0]), rk, last)
    return out


def target_ranks(
    scores: Any, targets: Any, *, ties: str = "pessimistic", chunk_rows: int | None = None
) -> np.ndarray:
    """1-based rank of each row's target among all N items.

    scores : (B, N) real array (higher is better). targets : (B,) int in [0, N).
    ties : "pessimistic" -> 1 + #(s > s_t) + #(s == s_t, j != t);
           "optimistic"  -> 1 + #(s > s_t);
           "average"     -> expected rank under random tie-breaking.
    A non-finite target score (NaN, -inf e.g. from exclusion, or +inf) ranks
    last (N). NaN scores of other items never count as above the target.
    Works in row chunks so the only (B, N) array is ``scores`` itself.

    Returns (B,) int64, or float64 for ties="average".
    """
    s = _scores_2d("scores", scores)
    t = np.asarray(targets)
    b, n = s.shape
    if t.shape != (b,) or (t.size and not np.issubdtype(t.dtype, np.integer)):
        raise ValueError(f"targets must be an integer array of shape ({b},), got {t.dtype} {t.shape}")
    t = t.astype(np.int64, copy=False)
    if t.size and (t.min() < 0 or t.max() >= n):
        raise ValueError(f"targets must lie in [0, {n})")
    return _rank_against(s, s[np.arange(b), t], ties, True, chunk_rows)


def linkpred_ranks(
    pos_scores: Any, neg_scores: Any, ties: str = "pessimistic", *, chunk_rows: int | None = None
) -> np.ndarray:
    """Rank of each positive among itself and its M negatives (1..M+1).

    pos_scores : (B,) real. neg_scores : (B, M) real. Tie policies as in
    :func:`target_ranks`; a non-finite positive score ranks last (M + 1).
    Returns (B,) int64, or float64 for ties="average". Feed the result to
    :func:`mrr` / :func:`hit_rate`.
    """
    neg = _scores_2d("neg_scores", neg_scores)
    pos = np.asarray(pos_scores)
    if pos.shape != (neg.shape[0],):
        raise ValueError(f"pos_scores must have shape ({neg.shape[0]},), got {pos.shape}")
    return _rank_against(neg, pos, ties, False, chunk_rows)


# ----------------------------------------------------------------- single target
def hit_rate(ranks: Any, k: int) -> np.ndarray:
    """HR@K per row: 1.0 if rank <= k else 0.0. ranks (B,) -> (B,) float64."""
    k = _int_arg("k", k)
    return (_ranks_1d(ranks) <= k).astype(np.float64)


def mrr(ranks: Any, k: int | None = None) -> np.ndarray:
    """Reciprocal rank per row: 1/rank, or 0 if rank > k (k=None: no cut-off).

    ranks (B,) int or float -> (B,) float64.
    """
    r = _ranks_1d(ranks)
    rr = 1.0 / r
    if k is not None:
        rr[r > _int_arg("k", k)] = 0.0
    return rr


def ndcg_single(ranks: Any, k: int) -> np.ndarray:
    """NDCG@K with one relevant item: 1/log2(rank+1) if rank <= k else 0.

    ranks (B,) -> (B,) float64.
    """
    k = _int_arg("k", k)
    r = _ranks_1d(ranks)
    return np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0)


def session_metrics(ranks: Any, ks: Sequence[int] = (10, 20)) -> dict[str, float]:
    """Mean HR@K, MRR@K, NDCG@K for each K: {"HR@10": .., "MRR@10": .., ...}."""
    out: dict[str, float] = {}
    r = _ranks_1d(ranks)
    for k in ks:
        for name, fn in (("HR", hit_rate), ("MRR", mrr), ("NDCG", ndcg_single)):
            v = fn(r, k)
            out[f"{name}@{k}"] = float(v.mean()) if v.size else float("nan")
    return out


# ----------------------------------------------------------------- multi relevant
def _csr(indptr: Any, indices: Any, n_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(indptr)
    x = np.asarray(indices)
    if p.ndim != 1 or p.size < 1 or not np.issubdtype(p.dtype, np.integer):
        raise ValueError("relevant_indptr must be a 1-d integer array of shape (B+1,)")
    if n_rows is not None and p.shape[0] != n_rows + 1:
        raise ValueError(f"relevant_indptr must have shape ({n_rows + 1},), got {p.shape}")
    if x.ndim != 1 or (x.size and not np.issubdtype(x.dtype, np.integer)):
        raise ValueError("relevant_indices must be a 1-d integer array")
    p = p.astype(np.int64, copy=False)
    if p[0] != 0 or p[-1] != x.shape[0] or (np.diff(p) < 0).any():
        raise ValueError("relevant_indptr must start at 0, be non-decreasing and end at len(relevant_indices)")
    x = x.astype(np.int64, copy=False)
    if x.size and x.min() < 0:
        raise ValueError("relevant_indices must be >= 0")
    return p, x


def relevant_counts(relevant_indptr: Any) -> np.ndarray:
    """|R| per row from a CSR indptr (B+1,) -> (B,) int64."""
    p = np.asarray(relevant_indptr)
    if p.ndim != 1 or p.size < 1:
        raise ValueError("relevant_indptr must be a 1-d array of shape (B+1,)")
    return np.diff(p.astype(np.int64))


def hits_at_k(topk_items: Any, relevant_indptr: Any, relevant_indices: Any) -> np.ndarray:
    """Membership of each recommended item in its row's relevant set.

    topk_items : (B, K) int (items < 0 are padding, never hits).
    relevant_indptr : (B+1,) int; relevant_indices : (nnz,) int.
    Returns (B, K) bool. Vectorised via int64 keys ``row * n_max + item``.
    """
    items = np.asarray(topk_items)
    if items.ndim != 2 or (items.size and not np.issubdtype(items.dtype, np.integer)):
        raise ValueError(f"topk_items must be a 2-d integer array (B, K), got {items.dtype} {items.shape}")
    b = items.shape[0]
    p, x = _csr(relevant_indptr, relevant_indices, b)
    items = items.astype(np.int64, copy=False)
    n_max = int(max(items.max(initial=0), x.max(initial=0))) + 1
    if b * n_max >= np.iinfo(np.int64).max:
        raise ValueError("topk_items/relevant_indices too large to encode as int64 keys")
    rows = np.arange(b, dtype=np.int64)
    rel_keys = np.repeat(rows, np.diff(p)) * n_max + x
    keys = rows[:, None] * n_max + items
    return np.isin(keys, rel_keys) & (items >= 0)


def _prep(hits: Any, n_relevant: Any, k: int | None) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    h = np.asarray(hits)
    if h.ndim != 2:
        raise ValueError(f"hits must be 2-d (B, K), got shape {h.shape}")
    h = h.astype(bool, copy=False)
    n = np.asarray(n_relevant)
    if n.shape != (h.shape[0],):
        raise ValueError(f"n_relevant must have shape ({h.shape[0]},), got {n.shape}")
    n = n.astype(np.float64)
    if (n < 0).any():
        raise ValueError("n_relevant must be >= 0")
    k = h.shape[1] if k is None else _int_arg("k", k)
    if k == 0:
        raise ValueError("k must be >= 1 (hits has 0 columns)")
    h = h[:, :k]
    if (h.sum(axis=1) > n).any():
        raise ValueError("n_relevant is smaller than the number of hits in some row")
    return h, n, k, n == 0


def precision_at_k(hits: Any, n_relevant: Any, k: int | None = None) -> np.ndarray:
    """P@K = (#hits in the first K) / K per row (RecBole's Precision@K).

    hits (B, K') bool, n_relevant (B,) int; k defaults to K'. The divisor is
    always k, even if fewer than k items were recommended (N < k).
    Rows with |R| = 0 are NaN. Returns (B,) float64.
    """
    h, n, k, empty = _prep(hits, n_relevant, k)
    return np.where(empty, np.nan, h.sum(axis=1) / k)


def recall_at_k(hits: Any, n_relevant: Any, k: int | None = None) -> np.ndarray:
    """Recall@K = (#hits in the first K) / |R| per row; NaN if |R| = 0."""
    h, n, _, empty = _prep(hits, n_relevant, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(empty, np.nan, h.sum(axis=1) / n)


def hit_rate_at_k(hits: Any, n_relevant: Any, k: int | None = None) -> np.ndarray:
    """HR@K = 1 if any of the first K is relevant, else 0; NaN if |R| = 0."""
    h, _, _, empty = _prep(hits, n_relevant, k)
    return np.where(empty, np.nan, h.any(axis=1).astype(np.float64))


def ndcg_at_k(hits: Any, n_relevant: Any, k: int | None = None) -> np.ndarray:
    """NDCG@K with binary relevance; NaN if |R| = 0.

    DCG = sum_{i=1..K} rel_i / log2(i+1); IDCG = sum_{i=1..min(|R|,K)} 1/log2(i+1).
    """
    h, n, k, empty = _prep(hits, n_relevant, k)
    disc = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = h @ disc[: h.shape[1]]
    ideal = np.concatenate([[0.0], np.cumsum(disc)])
    idcg = ideal[np.minimum(n, k).astype(np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(empty, np.nan, dcg / idcg)


def map_at_k(hits: Any, n_relevant: Any, k: int | None = None) -> np.ndarray:
    """AP@K = (1 / min(|R|, K)) * sum_{i<=K} P@i * rel_i per row; NaN if |R| = 0."""
    h, n, k, empty = _prep(hits, n_relevant, k)
    prec = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(empty, np.nan, (prec * h).sum(axis=1) / np.minimum(n, k))


def mrr_at_k(hits: Any, n_relevant: Any, k: int | None = None) -> np.ndarray:
    """1 / (position of the first hit within K), 0 if none; NaN if |R| = 0."""
    h, _, _, empty = _prep(hits, n_relevant, k)
    any_hit = h.any(axis=1)
    first = np.argmax(h, axis=1) + 1.0
    return np.where(empty, np.nan, np.where(any_hit, 1.0 / first, 0.0))


def ranking_metrics(
    topk_items: Any, relevant_indptr: Any, relevant_indices: Any, ks: Sequence[int] = (10, 20)
) -> dict[str, np.ndarray]:
    """Per-row Precision/Recall/HR/NDCG/MAP/MRR@K for each K in ``ks`` (keys like "NDCG@10").

    topk_items (B, K') int sorted best first (K' may be < max(ks) if N is small).
    Returns a dict of (B,) float64 arrays; pass it to :func:`summarise`.
    """
    hits = hits_at_k(topk_items, relevant_indptr, relevant_indices)
    n_rel = relevant_counts(relevant_indptr)
    fns = (("Precision", precision_at_k), ("Recall", recall_at_k), ("HR", hit_rate_at_k),
           ("NDCG", ndcg_at_k), ("MAP", map_at_k), ("MRR", mrr_at_k))
    return {f"{name}@{k}": fn(hits, n_rel, k) for k in ks for name, fn in fns}


def summarise(per_row: dict[str, np.ndarray]) -> dict[str, float]:
    """Average per-row metric arrays with nanmean, reporting skipped rows.

    Returns {name: mean over non-NaN rows, ..., "n_rows": B, "n_nan_rows": number
    of rows that are NaN in at least one metric}. A metric that is NaN on
    every row averages to NaN.
    """
    out: dict[str, float] = {}
    nan_any: np.ndarray | None = None
    for name, arr in per_row.items():
        a = np.asarray(arr, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"per_row[{name!r}] must be 1-d, got shape {a.shape}")
        if nan_any is None:
            nan_any = np.zeros(a.shape[0], bool)
        elif a.shape[0] != nan_any.shape[0]:
            raise ValueError(f"per_row[{name!r}] has {a.shape[0]} rows, expected {nan_any.shape[0]}")
        bad = np.isnan(a)
        nan_any |= bad
        ok = a[~bad]
        out[name] = float(ok.mean()) if ok.size else float("nan")
    out["n_rows"] = 0 if nan_any is None else int(nan_any.shape[0])
    out["n_nan_rows"] = 0 if nan_any is None else int(nan_any.sum())
    return out


# ----------------------------------------------------------------- retrieval
def _retrieval_args(similarity: Any, query_labels: Any, gallery_labels: Any):
    s = _scores_2d("similarity", similarity)
    q, g = s.shape
    ql = np.asarray(query_labels)
    gl = np.asarray(gallery_labels)
    if ql.shape != (q,):
        raise ValueError(f"query_labels must have shape ({q},), got {ql.shape}")
    if gl.shape != (g,):
        raise ValueError(f"gallery_labels must have shape ({g},), got {gl.shape}")
    return s, ql, gl


def retrieval_average_precision(
    similarity: Any, query_labels: Any, gallery_labels: Any, *, chunk_rows: int | None = None
) -> np.ndarray:
    """AP of each query over the full ranked gallery.

    similarity (Q, G) real (higher = more similar, NaN raises); labels (Q,), (G,).
    AP = (1/|R|) * sum over relevant positions i of P@i, with the gallery sorted
    by descending similarity, ties by lower gallery index. Queries with no
    relevant gallery item are NaN. Returns (Q,) float64.
    """
    s, ql, gl = _retrieval_args(similarity, query_labels, gallery_labels)
    q, g = s.shape
    out = np.empty(q, np.float64)
    pos = np.arange(1, g + 1, dtype=np.float64)
    step = _chunk(g, chunk_rows)
    for lo in range(0, q, step):
        hi = min(lo + step, q)
        blk = s[lo:hi]
        if np.issubdtype(blk.dtype, np.floating) and np.isnan(blk).any():
            raise ValueError("similarity contains NaN")
        order = np.argsort(-blk, axis=1, kind="stable")
        rel = gl[order] == ql[lo:hi, None]
        n_rel = rel.sum(axis=1)
        prec = np.cumsum(rel, axis=1) / pos
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo:hi] = np.where(n_rel > 0, (prec * rel).sum(axis=1) / n_rel, np.nan)
    return out


def _warn_excluded(n_bad: int, n: int, what: str) -> None:
    if n_bad:
        msg = f"{what}: {n_bad} of {n} queries have no relevant gallery item and were excluded"
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


def retrieval_map(
    similarity: Any, query_labels: Any, gallery_labels: Any, *,
    chunk_rows: int | None = None, return_count: bool = False,
) -> float | tuple[float, int]:
    """Mean average precision (re-id / retrieval mAP) over queries.

    Queries without any relevant gallery item are excluded (a RuntimeWarning
    gives their number); with ``return_count=True`` returns (mAP, n_excluded).
    mAP is NaN if every query is excluded. See :func:`retrieval_average_precision`.
    """
    ap = retrieval_average_precision(similarity, query_labels, gallery_labels, chunk_rows=chunk_rows)
    bad = int(np.isnan(ap).sum())
    _warn_excluded(bad, ap.size, "retrieval_map")
    ok = ap[~np.isnan(ap)]
    m = float(ok.mean()) if ok.size else float("nan")
    return (m, bad) if return_count else m


def retrieval_first_ranks(
    similarity: Any, query_labels: Any, gallery_labels: Any, *, chunk_rows: int | None = None
) -> np.ndarray:
    """1-based rank of each query's first relevant gallery item (NaN: the query has none).

    similarity (Q, G) real (NaN raises); labels (Q,), (G,). Ranking: descending similarity,
    ties by lower gallery index (as :func:`retrieval_average_precision`). Uses O(Q*G)
    comparisons, no sort. Returns (Q,) float64.
    """
    s, ql, gl = _retrieval_args(similarity, query_labels, gallery_labels)
    q, g = s.shape
    first = np.empty(q, np.float64)
    step = _chunk(g, chunk_rows)
    col = np.arange(g)
    for lo in range(0, q, step):
        hi = min(lo + step, q)
        blk = s[lo:hi].astype(np.float64, copy=False)
        if np.isnan(blk).any():
            raise ValueError("similarity contains NaN")
        match = gl[None, :] == ql[lo:hi, None]
        has = match.any(axis=1)
        best = np.where(match, blk, -np.inf).max(axis=1, initial=-np.inf)[:, None]
        j = np.argmax(match & (blk == best), axis=1)[:, None]  # lowest-index best match
        before = (blk > best) | ((blk == best) & (col[None, :] < j))
        first[lo:hi] = np.where(has, 1 + before.sum(axis=1), np.nan)
    return first


def cmc_accuracy(
    similarity: Any, query_labels: Any, gallery_labels: Any, ks: Sequence[int] = (1, 5, 10), *,
    chunk_rows: int | None = None, return_count: bool = False,
) -> dict[str, float] | tuple[dict[str, float], int]:
    """CMC Acc@K: fraction of queries whose top-K gallery items contain a correct label.

    Ranking: descending similarity, ties by lower gallery index (same as
    :func:`retrieval_average_precision`; ranks from :func:`retrieval_first_ranks`). Queries with
    no relevant gallery item are excluded (warned; ``return_count=True`` -> (dict, n_excluded)).
    Returns {"Acc@1": .., "Acc@5": .., ...}. Uses O(Q*G) comparisons, no sort.
    """
    ks = [_int_arg("ks", k) for k in ks]
    first = retrieval_first_ranks(similarity, query_labels, gallery_labels, chunk_rows=chunk_rows)
    q = first.shape[0]
    valid = ~np.isnan(first)
    bad = int(q - valid.sum())
    _warn_excluded(bad, q, "cmc_accuracy")
    f = first[valid]
    res = {f"Acc@{k}": (float((f <= k).mean()) if f.size else float("nan")) for k in ks}
    return (res, bad) if return_count else res
