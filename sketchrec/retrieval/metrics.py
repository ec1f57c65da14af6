"""Retrieval metrics with a query / gallery split: mAP and CMC Acc@K.

For every query the whole gallery is ranked by cosine similarity. A gallery
row is relevant when it has the query's group. AP is the mean precision at
each relevant row's rank; Acc@K (the CMC curve) is whether a relevant row is
among the first K. Instance retrieval ranks every gallery vector; centroid
retrieval ranks one vector per group, so each query has exactly one relevant
row and AP is the reciprocal rank of its group's centroid — the protocol of
the centroid-retrieval paper (Wieczorek et al., ICONIP 2021, Table 12).
"""

from __future__ import annotations

import time

import numpy as np

from sketchrec.retrieval.index import group_centroids, normalise


def ranking_metrics(sims: np.ndarray, query_groups: np.ndarray, gallery_groups: np.ndarray,
                    ks=(1, 5, 10, 20, 50)) -> dict[str, np.ndarray]:
    """Per-query AP and hit@K for a (B, N) similarity block (ties broken by gallery order)."""
    order = np.argsort(-sims, axis=1, kind="stable")
    relevant = gallery_groups[order] == query_groups[:, None]                 # (B, N)
    n_rel = relevant.sum(1)
    ranks = np.arange(1, sims.shape[1] + 1)
    precision = np.cumsum(relevant, axis=1) / ranks
    ap = np.divide((precision * relevant).sum(1), n_rel, out=np.zeros(len(sims)), where=n_rel > 0)
    first = np.where(n_rel > 0, relevant.argmax(1) + 1, np.iinfo(np.int64).max)
    out = {"AP": ap, "first_rank": first}
    for k in ks:
        out[f"hit@{k}"] = first <= k
    return out


def evaluate_retrieval(queries: np.ndarray, query_groups, gallery: np.ndarray, gallery_groups,
                       mode: str = "instance", ks=(1, 5, 10, 20, 50), block: int = 1024) -> dict[str, float]:
    """mAP, Acc@K and query time of instance or centroid retrieval (exact cosine ranking).

    Queries whose group has no gallery row are counted (`queries_without_match`) and left out of
    the means, as in re-identification protocols."""
    query_groups, gallery_groups = np.asarray(query_groups), np.asarray(gallery_groups)
    if len(queries) != len(query_groups) or len(gallery) != len(gallery_groups):
        raise ValueError("every query and gallery row needs a group label")
    t0 = time.perf_counter()
    if mode == "centroid":
        gallery_groups, base, _ = group_centroids(gallery, gallery_groups)
    elif mode == "instance":
        base = normalise(gallery)
    else:
        raise ValueError(f"mode must be 'instance' or 'centroid', got {mode!r}")
    build_s = time.perf_counter() - t0
    q = normalise(queries)
    parts, search_s = [], 0.0
    for start in range(0, len(q), block):
        t0 = time.perf_counter()
        sims = q[start:start + block] @ base.T
        search_s += time.perf_counter() - t0
        parts.append(ranking_metrics(sims, query_groups[start:start + block], gallery_groups, ks))
    per_query = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    matched = np.isin(query_groups, gallery_groups)
    out = {"mAP": float(per_query["AP"][matched].mean()) if matched.any() else float("nan")}
    for k in ks:
        out[f"Acc@{k}"] = float(per_query[f"hit@{k}"][matched].mean()) if matched.any() else float("nan")
    out.update({"queries": int(len(q)), "queries_without_match": int((~matched).sum()),
                "gallery_rows": int(len(base)), "build_s": build_s, "similarity_s": search_s})
    return out
