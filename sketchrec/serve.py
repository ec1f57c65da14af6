"""HTTP service for a model bundle (FastAPI; run with uvicorn: `sketchrec serve BUNDLE`).

Endpoints (JSON; OpenAPI docs at /docs):

- POST /recommend  {"items": [...]} or {"sessions": [[...], ...]}, "k", "exclude_seen"
                   -> per session: the top-k item ids and scores, and the unknown ids it had
- POST /similar    {"items": [...], "k"} -> per item: the most similar items (cosine over the
                   bundle's `item_vectors` extra)
- POST /search     {"texts": [...], "k"} -> items whose text is closest (needs the bundle's
                   `text_vectors` extra: MiniLM vectors of item texts)
- POST /profile    {"sessions": [[...]]} -> behavioural profiles (EMDE input sketches) as sparse
                   (index, value) lists, for downstream models
- POST /explain    {"items": [...], "item": id} -> why this item: per-modality contributions
                   (occlusion) and the most influential input buckets (gradient x input); EMDE
- GET /health, GET /metrics (Prometheus text format)

Requests are validated: unknown item ids are reported in the response (and ignored), k and the
number of sessions / items per request are bounded (422 beyond), an empty or all-unknown session
gets popularity-free scores from the model as usual. With an API key configured every endpoint
but /health requires the header `X-API-Key` (401 without it, 403 when wrong).
"""

from __future__ import annotations

import hmac
import threading
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from sketchrec.bundle import Bundle, load_bundle
from sketchrec.data.sessions import Sessions

LIMITS = {"max_k": 1000, "max_sessions": 10_000, "max_items_per_session": 1_000, "max_texts": 1_000}


class RecommendRequest(BaseModel):
    items: list[str | int] | None = Field(None, description="one session's item ids, oldest first")
    sessions: list[list[str | int]] | None = Field(None, description="several sessions (a batch)")
    k: int = Field(20, ge=1)
    exclude_seen: bool = False


class ItemsRequest(BaseModel):
    items: list[str | int]
    k: int = Field(10, ge=1)


class TextRequest(BaseModel):
    texts: list[str]
    k: int = Field(10, ge=1)


class ProfileRequest(BaseModel):
    sessions: list[list[str | int]]


class ExplainRequest(BaseModel):
    items: list[str | int] = Field(description="the session's item ids, oldest first")
    item: str | int = Field(description="the recommended item to explain")
    top_buckets: int = Field(5, ge=1, le=100)


def create_app(bundle: Bundle | str | Path, api_key: str | None = None, limits: dict | None = None):
    from fastapi import Depends, FastAPI, Header, HTTPException, Request
    import orjson
    from fastapi.responses import PlainTextResponse, Response

    class FastJSON(Response):
        """orjson straight from numpy rows: batch answers skip FastAPI's per-value Python walk
        (jsonable_encoder)."""
        media_type = "application/json"

        def render(self, content) -> bytes:
            return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    if bundle.items is None:
        raise ValueError("the bundle has no item ids (save it with items=IdMap(...)) and cannot be served")
    lim = {**LIMITS, **(limits or {})}
    model, items = bundle.model, bundle.items
    external = np.asarray(items.keys.to_pylist(), dtype=object)
    item_vectors = bundle.extras.get("item_vectors")
    text_vectors = bundle.extras.get("text_vectors")
    unit = lambda v: v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)  # noqa: E731
    item_unit = unit(item_vectors.astype(np.float32)) if item_vectors is not None else None
    text_unit = unit(text_vectors.astype(np.float32)) if text_vectors is not None else None
    lock = threading.Lock()          # torch / numba models are called one batch at a time
    # The first call compiles numba kernels and touches the model's arrays (seconds): pay for it
    # here, before the service is up, not in a user's first request.
    model.recommend(Sessions(np.array([0, 1]), np.zeros(1, np.int32), len(items)), k=1)

    registry = CollectorRegistry()
    requests = Counter("sketchrec_requests_total", "Requests by endpoint and status", ["endpoint", "status"],
                       registry=registry)
    latency = Histogram("sketchrec_request_seconds", "Request latency by endpoint", ["endpoint"], registry=registry,
                        buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
    scored = Counter("sketchrec_sessions_scored_total", "Sessions (or items / texts) answered", ["endpoint"],
                     registry=registry)
    unknown_ids = Counter("sketchrec_unknown_items_total", "Unknown item ids in requests", registry=registry)

    app = FastAPI(title="sketchrec", version=bundle.manifest.get("sketchrec_version", "?"),
                  description=f"{bundle.manifest.get('model_class')} over {len(items):,} items")

    def check_key(x_api_key: str | None = Header(default=None)):
        if api_key is None:
            return
        if x_api_key is None:
            raise HTTPException(401, "missing X-API-Key header")
        if not hmac.compare_digest(x_api_key, api_key):
            raise HTTPException(403, "wrong API key")

    @app.middleware("http")
    async def observe(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        path = request.url.path
        latency.labels(path).observe(time.perf_counter() - t0)
        requests.labels(path, str(response.status_code)).inc()
        return response

    def bounded_k(k: int) -> int:
        if k > lim["max_k"]:
            raise HTTPException(422, f"k={k} is above the limit {lim['max_k']}")
        return min(k, len(items))

    def to_sessions(rows: list[list]) -> tuple[Sessions, list[list]]:
        if not rows:
            raise HTTPException(422, "no sessions given")
        if len(rows) > lim["max_sessions"]:
            raise HTTPException(422, f"{len(rows)} sessions: the limit is {lim['max_sessions']} per request")
        longest = max(map(len, rows))
        if longest > lim["max_items_per_session"]:
            raise HTTPException(422, f"a session has {longest} items: the limit is {lim['max_items_per_session']}")
        flat = [str(i) for r in rows for i in r]
        look = items.lookup(flat) if flat else None
        internal = look.internal if look is not None else np.zeros(0, np.int64)
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        row_of = np.repeat(np.arange(len(rows)), lengths)
        known = internal >= 0
        unknown = [[] for _ in rows]
        for r, value in zip(row_of[~known], np.asarray(flat, dtype=object)[~known]):
            unknown[r].append(value)
        unknown_ids.inc(int((~known).sum()))
        counts = np.bincount(row_of[known], minlength=len(rows))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return Sessions(indptr, internal[known].astype(np.int32), len(items)), unknown

    @app.get("/health")
    def health():
        return {"status": "ok", "model": bundle.manifest.get("model_class"), "items": len(items),
                "bundle": bundle.path.name if bundle.path else None,
                "endpoints": {"similar": item_unit is not None, "search": text_unit is not None,
                              "profile": hasattr(model, "profile")}}

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=[Depends(check_key)])
    def metrics():
        return PlainTextResponse(generate_latest(registry).decode(), media_type="text/plain; version=0.0.4")

    @app.post("/recommend", dependencies=[Depends(check_key)])
    def recommend(req: RecommendRequest):
        if (req.items is None) == (req.sessions is None):
            raise HTTPException(422, "give exactly one of 'items' (one session) or 'sessions' (a batch)")
        rows = [req.items] if req.items is not None else req.sessions
        k = bounded_k(req.k)
        histories, unknown = to_sessions(rows)
        with lock:
            top, scores = model.recommend(histories, k=k, exclude_seen=req.exclude_seen)
        scored.labels("recommend").inc(len(rows))
        ids, rounded = external[top].tolist(), np.round(scores.astype(np.float64), 6)
        results = [{"items": t, "scores": v, "unknown_items": u} for t, v, u in zip(ids, rounded, unknown)]
        return FastJSON({"results": results} if req.sessions is not None else results[0])

    @app.post("/similar", dependencies=[Depends(check_key)])
    def similar(req: ItemsRequest):
        if item_unit is None:
            raise HTTPException(404, "this bundle has no item vectors (extra 'item_vectors')")
        if len(req.items) > lim["max_sessions"]:
            raise HTTPException(422, f"{len(req.items)} items: the limit is {lim['max_sessions']}")
        k = bounded_k(req.k)
        look = items.lookup([str(i) for i in req.items])
        results = []
        rows = look.internal[look.known]
        sims = item_unit[rows] @ item_unit.T if len(rows) else np.zeros((0, len(items)), np.float32)
        sims[np.arange(len(rows)), rows] = -np.inf                       # not itself
        from sketchrec.eval.topk import topk
        top, vals = topk(sims, k) if len(rows) else (np.zeros((0, k), int), np.zeros((0, k)))
        it = iter(zip(top, vals))
        for item, known in zip(req.items, look.known):
            if not known:
                results.append({"item": item, "unknown": True, "items": [], "scores": []})
            else:
                t, v = next(it)
                results.append({"item": item, "items": external[t].tolist(), "scores": np.round(v.astype(np.float64), 6)})
        unknown_ids.inc(int((~look.known).sum()))
        scored.labels("similar").inc(len(req.items))
        return FastJSON({"results": results})

    @app.post("/search", dependencies=[Depends(check_key)])
    def search(req: TextRequest):
        if text_unit is None:
            raise HTTPException(404, "this bundle has no text modality (extra 'text_vectors')")
        if not req.texts or len(req.texts) > lim["max_texts"]:
            raise HTTPException(422, f"give 1 to {lim['max_texts']} texts")
        k = bounded_k(req.k)
        from sketchrec.embedders.text import TextEncoder
        from sketchrec.eval.topk import topk
        with lock:
            q = TextEncoder(progress=False).encode(req.texts)
        top, vals = topk(q @ text_unit.T, k)
        scored.labels("search").inc(len(req.texts))
        return {"results": [{"text": t, "items": external[i].tolist(), "scores": np.round(v, 6).tolist()}
                            for t, i, v in zip(req.texts, top, vals)]}

    @app.post("/profile", dependencies=[Depends(check_key)])
    def profile(req: ProfileRequest):
        if not hasattr(model, "profile"):
            raise HTTPException(404, f"{type(model).__name__} has no behavioural profiles (EMDE has)")
        histories, unknown = to_sessions(req.sessions)
        with lock:
            x = model.profile(histories, sparse=True).tocsr()
        scored.labels("profile").inc(len(req.sessions))
        out = []
        for r in range(x.shape[0]):
            sl = slice(x.indptr[r], x.indptr[r + 1])
            out.append({"indices": x.indices[sl].tolist(), "values": np.round(x.data[sl], 6).tolist(),
                        "unknown_items": unknown[r]})
        return {"dim": int(x.shape[1]), "results": out}

    @app.post("/explain", dependencies=[Depends(check_key)])
    def explain(req: ExplainRequest):
        if not hasattr(model, "explain"):
            raise HTTPException(404, f"{type(model).__name__} has no explanations (EMDE has)")
        target = items.lookup([str(req.item)])
        if not target.known[0]:
            raise HTTPException(422, f"unknown item {req.item!r}")
        histories, unknown = to_sessions([req.items])
        with lock:
            e = model.explain(histories, target.internal, top_buckets=req.top_buckets)[0]
        return {"item": req.item, "score": e["score"], "modalities": e["modalities"],
                "buckets": [{"feature": n, "attribution": a} for n, a in e["buckets"]], "unknown_items": unknown[0]}

    return app


def serve(bundle: Bundle | str | Path, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          workers: int = 1) -> None:
    """Run the service with uvicorn (blocking)."""
    import uvicorn
    uvicorn.run(create_app(bundle, api_key=api_key), host=host, port=port, log_level="warning", workers=workers)
