"""The model's endpoints: POST /recommend (top-k items per session), /profile (behavioural
profiles: the model's input sketches, sparse) and /explain (why an item: per-modality
contributions and the most influential input buckets). /profile and /explain are routed only
for models that have them."""

from __future__ import annotations

import numpy as np

from sketchrec.data.sessions import Sessions
from sketchrec.serve.limits import reject
from sketchrec.serve.schemas import Explanation, ProfileResponse, Recommendation, RecommendBatchResponse


def to_sessions(service, items, rows: list[list]) -> tuple[Sessions, list[list], list[int]]:
    """Sessions of the known ids of `rows`, and per row the unknown ids (the echo bounded by
    max_unknown_echo) and how many there were."""
    flat = [str(i) for r in rows for i in r]
    internal = items.lookup(flat).internal if flat else np.zeros(0, np.int64)
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    row_of = np.repeat(np.arange(len(rows)), lengths)
    known = internal >= 0
    counts = np.bincount(row_of[~known], minlength=len(rows)).tolist()
    unknown = [[] for _ in rows]
    flat_rows = [x for r in rows for x in r]
    for position in np.flatnonzero(~known)[:service.lim["max_unknown_echo"]]:      # the echo is bounded
        unknown[row_of[position]].append(flat_rows[position])
    service.metrics.unknown_ids.inc(int((~known).sum()))
    kept = np.bincount(row_of[known], minlength=len(rows))
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(kept, out=indptr[1:])
    return Sessions(indptr, internal[known].astype(np.int32), service.n_items), unknown, counts


def register(service, model, items) -> None:
    """Route POST /recommend of `service` for `model` over the item id map `items`."""
    n_items = service.n_items

    def session_rows(req) -> list[list]:
        return req.sessions if hasattr(req, "sessions") else [req.items]

    def recommend_check(req) -> None:
        rows = session_rows(req)
        service.check_results(len(rows), min(req.k, n_items))
        service.check_inputs(rows)

    @service.heavy("/recommend", service.models["recommend"], Recommendation | RecommendBatchResponse,
                   recommend_check)
    def recommend(req):
        """Top-k items for one session ({"items": ...}) or for each of a batch ({"sessions": ...})."""
        batch, rows, k = hasattr(req, "sessions"), session_rows(req), min(req.k, n_items)
        histories, unknown, counts = to_sessions(service, items, rows)
        chunk_rows = service.chunk_rows
        parts = [model.recommend(histories.take(np.arange(s, min(s + chunk_rows, len(rows)))), k=k,
                                 exclude_seen=req.exclude_seen) for s in range(0, len(rows), chunk_rows)]
        top, scores = (np.concatenate(x) for x in zip(*parts))
        service.metrics.scored.labels("recommend").inc(len(rows))
        results = [{"items": t, "scores": v, "unknown_items": u, "unknown_count": c}
                   for (t, v), u, c in zip(service.ranked(top, scores), unknown, counts)]
        return service.answer({"results": results} if batch else results[0], large=len(rows) > 100)



def register_profiles(service, model, items, features: dict) -> None:
    """Route /profile and /explain, each when `features` says the model has it."""
    lim = service.lim

    if features["profile"]:
        @service.heavy("/profile", service.models["profile"], ProfileResponse,
                       lambda req: service.check_inputs(req.sessions))
        def profile(req):
            """Behavioural profiles (the model's input sketches) as sparse (index, value) lists."""
            histories, unknown, counts = to_sessions(service, items, req.sessions)
            x = model.profile(histories, sparse=True).tocsr()
            if x.nnz > lim["max_results"]:
                raise service.over("profile values", x.nnz, "max_results")
            service.metrics.scored.labels("profile").inc(len(req.sessions))
            values = np.round(x.data.astype(np.float64), 6)
            out = [{"indices": x.indices[x.indptr[r]:x.indptr[r + 1]], "values": values[x.indptr[r]:x.indptr[r + 1]],
                    "unknown_items": unknown[r], "unknown_count": counts[r]} for r in range(x.shape[0])]
            return service.answer({"dim": int(x.shape[1]), "results": out}, large=x.nnz > 10_000)

    if features["explain"]:
        @service.heavy("/explain", service.models["explain"], Explanation, extra_errors=(404,))
        def explain(req):
            """Why an item is recommended: per-modality contributions and the top input buckets."""
            target = items.lookup([str(req.item)])
            if not target.known[0]:
                raise reject(404, "the item to explain is not in the bundle", "unknown_item", ("body", "item"))
            histories, unknown, counts = to_sessions(service, items, [req.items])
            e = model.explain(histories, target.internal, top_buckets=req.top_buckets)[0]
            return service.answer({"item": req.item, "score": e["score"], "modalities": e["modalities"],
                                   "buckets": [{"feature": n, "attribution": a} for n, a in e["buckets"]],
                                   "unknown_items": unknown[0], "unknown_count": counts[0]})
