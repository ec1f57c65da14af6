"""Retrieval evaluation protocols: a query / gallery split (mAP, CMC Acc@K) and paired cross-modal data.

The metrics themselves — AP over the ranked gallery, the rank of the first relevant row, R@K,
MRR — are `sketchrec.eval.metrics`'s (`retrieval_average_precision`, `retrieval_first_ranks`,
`target_ranks`, `hit_rate`, `mrr`); this module applies them to the two retrieval settings.

Query / gallery: for every query the whole gallery is ranked by cosine similarity. A gallery
row is relevant when it has the query's group. AP is the mean precision at each relevant row's
rank; Acc@K (the CMC curve) is whether a relevant row is among the first K. Instance retrieval
ranks every gallery vector; centroid retrieval ranks one vector per group, so each query has
exactly one relevant row and AP is the reciprocal rank of its group's centroid — the protocol
of the centroid-retrieval paper (Wieczorek et al., ICONIP 2021, Table 12).

Paired: row i of the image vectors and row i of the text vectors are the same product; R@K and
MRR in both directions, and their R-sum (model selection of the cross-modal trainer).
"""

from __future__ import annotations

import time

import numpy as np

from sketchrec._deprecation import renamed_function
from sketchrec.eval.metrics import (hit_rate, mrr, retrieval_average_precision, retrieval_first_ranks,
                                    target_ranks)
from sketchrec.retrieval.index import group_centroids, normalise


def per_query_retrieval_metrics(sims: np.ndarray, query_groups: np.ndarray, gallery_groups: np.ndarray,
                                ks=(1, 5, 10, 20, 50)) -> dict[str, np.ndarray]:
    """Per-query AP (0 without a relevant row), first_rank (int64; the largest int64 without a
    relevant row) and hit@K for a (B, N) similarity block; ties broken by gallery order."""
    ap = np.nan_to_num(retrieval_average_precision(sims, query_groups, gallery_groups), nan=0.0)
    ranks = retrieval_first_ranks(sims, query_groups, gallery_groups)
    first = np.full(len(ranks), np.iinfo(np.int64).max, dtype=np.int64)
    found = ~np.isnan(ranks)
    first[found] = ranks[found]
    out = {"AP": ap, "first_rank": first}
    for k in ks:
        out[f"hit@{k}"] = first <= k
    return out


#: the former name (two functions were called `ranking_metrics`: this one and eval.metrics's)
ranking_metrics = renamed_function(per_query_retrieval_metrics, "ranking_metrics")


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
        parts.append(per_query_retrieval_metrics(sims, query_groups[start:start + block], gallery_groups, ks))
    per_query = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    matched = np.isin(query_groups, gallery_groups)
    out = {"mAP": float(per_query["AP"][matched].mean()) if matched.any() else float("nan")}
    for k in ks:
        out[f"Acc@{k}"] = float(per_query[f"hit@{k}"][matched].mean()) if matched.any() else float("nan")
    out.update({"queries": int(len(q)), "queries_without_match": int((~matched).sum()),
                "gallery_rows": int(len(base)), "build_s": build_s, "similarity_s": search_s})
    return out


def paired_retrieval_metrics(img: np.ndarray, txt: np.ndarray) -> dict[str, float]:
    """R@1/5/10 and MRR for image->text ("i2t_...") and text->image ("t2i_...") where row i of
    `img` (n, d) and of `txt` (n, d) is the same product, and "rsum", the six recalls' sum. A
    product's rank is 1 + the number of the other side's rows strictly more similar."""
    sims = img @ txt.T
    out = {}
    for name, s in (("i2t", sims), ("t2i", sims.T)):
        ranks = target_ranks(s, np.arange(len(s)), ties="optimistic")
        for k in (1, 5, 10):
            out[f"{name}_R@{k}"] = float(hit_rate(ranks, k).mean())
        out[f"{name}_MRR"] = float(mrr(ranks).mean())
    out["rsum"] = sum(out[f"{n}_R@{k}"] for n in ("i2t", "t2i") for k in (1, 5, 10))
    return out
