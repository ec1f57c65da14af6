"""HTTP service for a model bundle (FastAPI; run with uvicorn: `sketchrec serve BUNDLE`).

Endpoints (JSON; OpenAPI schema at /openapi.json, Swagger UI at /docs, ReDoc at /redoc):

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

An endpoint the bundle cannot answer (/similar without item vectors, /search without text
vectors, /profile and /explain for models without them) is not routed, so the OpenAPI schema
lists exactly what this server answers; /health says the same.

The service is meant to face clients that are careless or hostile (issue 28), so every request
costs a bounded amount of memory and time, and everything it can answer is in the schema:

- An ASGI middleware (`_Guard`) runs before FastAPI: it checks `X-API-Key` from the headers
  (bytes, constant-time) before a byte of the body is read, refuses a body over
  `max_body_bytes` from its Content-Length, or while streaming one without (chunked), and gives
  up on a body that takes more than `body_timeout_s` to arrive. It labels /metrics by route
  template, with every unmatched path under one label, so random paths cannot grow it.
- Heavy endpoints (everything that touches the model or the vectors) share one admission
  control (`_Gate`): at most `max_heavy_inflight` such requests are read and parsed at once
  (503 beyond, before reading the body), at most `model_slots` compute at once (torch / numba
  models are called one batch at a time; the wait is bounded by `queue_timeout_s`, 503), and a
  request answers 504 after `request_timeout_s`. The work runs on the gate's own thread, JSON
  encoding included, so /health and /metrics stay responsive on the event loop.
- Per-request work is bounded by the schema (k, sessions, items per session, texts, id and text
  lengths: 422; the rows one request scores against the whole catalogue are capped at
  `max_scored` / items, so the cap in the schema is this bundle's) and by limits JSON Schema
  cannot state, given in the schema's descriptions and answered with 413 naming the limit, before
  the request waits for the model: total input items, results (rows x k), estimated response
  bytes, text characters. Scoring runs in chunks of rows so that rows x items stays under
  `score_cells`, whatever the batch size, and glibc is asked to hand freed memory back after a
  large request. Unknown ids are counted exactly but echoed at most `max_unknown_echo` per
  request.
- Every error, the handlers' own included, has FastAPI's HTTPValidationError shape
  (`detail`: a list of {loc, msg, type}); validation errors never echo the input (which may be
  large, or NaN: NaN, Infinity and the like are refused with 422 like any other bad number).
- Swagger UI and ReDoc load their JS/CSS from this server (the `fastapi-offline` package's
  copies), never from a CDN: the docs work offline. Without that package /docs says so and
  points at /openapi.json.

With an API key configured, everything but /health and the docs (/docs, /redoc, /openapi.json
and their assets) requires the header `X-API-Key` (401 without it, 403 when wrong); unknown
paths then answer 401 too, so they cannot be probed without the key.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import hmac
import json
import os
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from starlette.requests import Request          # module level: FastAPI resolves the docs pages' annotations here

from sketchrec.bundle import Bundle, load_bundle
from sketchrec.data.sessions import Sessions

LIMITS = {
    # stated in the OpenAPI schema (422 beyond)
    "max_k": 1000, "max_sessions": 10_000, "max_items_per_session": 1_000, "max_texts": 1_000,
    "max_id_chars": 256, "max_text_chars": 1_000,
    # per request, beyond what JSON Schema can state (413, named in the schema's descriptions)
    "max_body_bytes": 1 << 20, "max_input_items": 100_000, "max_results": 200_000,
    "max_response_bytes": 8 << 20, "max_search_chars": 65_536, "max_unknown_echo": 100,
    # admission and time
    "max_heavy_inflight": 16, "model_slots": 1, "queue_timeout_s": 10.0, "request_timeout_s": 30.0,
    "body_timeout_s": 10.0,
    # time: rows x catalogue items scored per request (this caps the rows of /recommend, /similar and
    # /search in the schema: 3,114 sessions for Diginetica's 43,097 items, about 3 s on one core);
    # memory: rows per model call are cut so that rows x items stays under score_cells
    "max_scored": 1 << 27, "score_cells": 1 << 25,
}
SAFE_INT = 2 ** 53 - 1                       # integer ids: exact in every JSON parser (and schema validator)
HEAVY = ("/recommend", "/similar", "/search", "/profile", "/explain")
CLOSE = {"connection": "close"}              # refused before the body was read: do not read it either
UNMATCHED = "unmatched"                       # the /metrics label of every path no route matches
ASSETS = "/docs-assets"
ERROR_CODES = {401: "missing X-API-Key header", 403: "wrong API key",
               404: "an id the request refers to is not in the bundle",
               408: "the request body took too long to arrive", 413: "the request is over a size or work limit",
               503: "too many requests in flight: retry later (see Retry-After)",
               504: "the request took longer than the server's time limit"}


def _error_detail(msg: str, type_: str, loc=()) -> list[dict]:
    return [{"loc": list(loc), "msg": msg, "type": type_}]


def reject(status: int, msg: str, type_: str, loc=("body",), headers: dict | None = None):
    """An HTTPException whose detail already has the schema's error shape."""
    from fastapi import HTTPException
    return HTTPException(status, _error_detail(msg, type_, loc), headers=headers)


# -- requests: every bound the handlers enforce is stated here, so it is in the schema --------

def _integral(value):
    """JSON Schema's integer includes 1.0: take it (strict mode alone would not), but not true or "1"."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _json_int(ge: int, le: int):
    """An integer in [ge, le] as JSON Schema means it (the bounds inside, so the schema states them)."""
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_integral)]


def scored_rows(lim: dict, n_items: int) -> int:
    """How many sessions (or items, or texts) one request may score against a catalogue of n_items."""
    return max(1, min(lim["max_sessions"], lim["max_scored"] // max(n_items, 1)))


def _request_models(lim: dict, n_items: int) -> dict[str, type[BaseModel]]:
    """The request bodies, with this app's limits as schema constraints (strict: JSON types only,
    no "1" for 1 or true for 1; no unknown fields). Rows scored against the whole catalogue are
    capped by `max_scored` / items, so the schema states the cap for this bundle."""
    rows = scored_rows(lim, n_items)
    Id = (Annotated[str, StringConstraints(max_length=lim["max_id_chars"])]
          | _json_int(-SAFE_INT, SAFE_INT))
    Session = Annotated[list[Id], Field(max_length=lim["max_items_per_session"])]
    K = Annotated[_json_int(1, lim["max_k"]), Field(description="results per row")]
    strict = ConfigDict(strict=True, extra="forbid")
    work = (f"At most {lim['max_input_items']:,} item ids and {lim['max_results']:,} results (rows x k) per "
            f"request, and an answer of at most {lim['max_response_bytes']:,} bytes (413 beyond).")

    class RecommendOne(BaseModel):
        """One session."""
        model_config = strict
        items: Session = Field(description="one session's item ids, oldest first")
        k: K = 20
        exclude_seen: bool = False

    class RecommendBatch(BaseModel):
        """Several sessions (a batch)."""
        model_config = strict
        sessions: Annotated[list[Session], Field(min_length=1, max_length=rows)] = Field(
            description="several sessions, each oldest first. " + work)
        k: K = 20
        exclude_seen: bool = False

    class ItemsRequest(BaseModel):
        model_config = strict
        items: Annotated[list[Id], Field(max_length=rows)] = Field(
            description="item ids to find neighbours of. " + work)
        k: K = 10

    class TextRequest(BaseModel):
        model_config = strict
        texts: Annotated[list[Annotated[str, StringConstraints(max_length=lim["max_text_chars"])]],
                         Field(min_length=1, max_length=min(lim["max_texts"], rows))] = Field(
            description=f"queries; their first 512 characters each count towards a limit of "
                        f"{lim['max_search_chars']:,} characters per request (413 beyond). " + work)
        k: K = 10

    class ProfileRequest(BaseModel):
        model_config = strict
        sessions: Annotated[list[Session], Field(min_length=1, max_length=lim["max_sessions"])] = Field(
            description="sessions to profile. " + work.replace("results (rows x k)", "profile values"))

    class ExplainRequest(BaseModel):
        model_config = strict
        items: Session = Field(description="the session's item ids, oldest first")
        item: Id = Field(description="the recommended item to explain (404 if the bundle does not have it)")
        top_buckets: _json_int(1, 100) = 5

    return {"recommend": RecommendOne | RecommendBatch, "similar": ItemsRequest, "search": TextRequest,
            "profile": ProfileRequest, "explain": ExplainRequest}


# -- responses: documented, not validated at run time (batches are encoded straight from numpy) --

ItemId = str | int


class Recommendation(BaseModel):
    items: list[ItemId] = Field(description="best first; fewer than k when fewer items can be recommended")
    scores: list[float]
    unknown_items: list[ItemId] = Field(description="ids not in the bundle (ignored); the echo is truncated")
    unknown_count: int = Field(description="how many ids were unknown, all of them")


class RecommendBatchResponse(BaseModel):
    results: list[Recommendation]


class Neighbours(BaseModel):
    item: ItemId
    unknown: bool = False
    items: list[ItemId]
    scores: list[float]


class SimilarResponse(BaseModel):
    results: list[Neighbours]


class TextHits(BaseModel):
    text: str
    items: list[ItemId]
    scores: list[float]


class SearchResponse(BaseModel):
    results: list[TextHits]


class Profile(BaseModel):
    indices: list[int]
    values: list[float]
    unknown_items: list[ItemId]
    unknown_count: int


class ProfileResponse(BaseModel):
    dim: int
    results: list[Profile]


class Bucket(BaseModel):
    feature: str
    attribution: float


class Explanation(BaseModel):
    item: ItemId
    score: float
    modalities: dict[str, float]
    buckets: list[Bucket]
    unknown_items: list[ItemId]
    unknown_count: int


class Health(BaseModel):
    status: str
    model: str | None
    items: int
    bundle: str | None
    endpoints: dict[str, bool]


# -- the guard: authentication, body size, metrics labels; before FastAPI reads anything -----

class _TooLarge(Exception):
    pass


class _Guard:
    """Pure ASGI middleware (not BaseHTTPMiddleware: that one would read the body first)."""

    def __init__(self, app, *, router, api_key: str | None, open_labels, max_body: int, body_timeout: float,
                 gate: "_Gate", observe):
        self.app, self.router, self.gate, self.observe = app, router, gate, observe
        self.key = api_key.encode() if api_key is not None else None
        self.open_labels, self.max_body, self.body_timeout = frozenset(open_labels), max_body, body_timeout

    def label(self, scope) -> str:
        from starlette.routing import Match
        for route in self.router.routes:
            if route.matches(scope)[0] is not Match.NONE:
                return route.path
        return UNMATCHED

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, label, status = time.perf_counter(), self.label(scope), [500]

        async def send_seen(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        entered = False
        try:
            refusal = self.refuse(scope, label)
            if refusal is None and label in HEAVY:
                entered = self.gate.enter()
                if not entered:
                    refusal = (503, "busy", "too many requests in flight: retry later", {"retry-after": "1", **CLOSE})
            if refusal is None:
                try:
                    body = await self.read_body(receive)
                except _TooLarge:
                    refusal = (413, "body_too_large", f"the request body is over the limit of "
                               f"{self.max_body:,} bytes", CLOSE)
                except TimeoutError:
                    refusal = (408, "body_timeout", f"the request body took over {self.body_timeout:g} s "
                               "to arrive", CLOSE)
                else:
                    if body is None:                                      # the client left
                        return
                    refusal = self.invalid_json(scope, body)
                    if refusal is None:
                        return await self.app(scope, self.replay(body, receive), send_seen)
            await self.reply(send_seen, *refusal)
        finally:
            if entered:
                self.gate.leave()
            self.observe(label, status[0], time.perf_counter() - t0)

    def refuse(self, scope, label):
        """(status, type, message, headers) to answer without reading the body, or None."""
        headers = dict(reversed(list(scope["headers"])))                 # the first of repeated headers wins
        if self.key is not None and label not in self.open_labels:
            given = headers.get(b"x-api-key")
            if given is None:
                return 401, "missing_api_key", "missing X-API-Key header", {
                    "www-authenticate": 'APIKey header="X-API-Key"', **CLOSE}
            if not hmac.compare_digest(given, self.key):                  # bytes: any header value compares
                return 403, "wrong_api_key", "wrong API key", CLOSE
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return 413, "body_too_large", (f"Content-Length {int(length):,} is over the limit of "
                                           f"{self.max_body:,} bytes"), CLOSE
        return None

    @staticmethod
    def invalid_json(scope, body: bytes):
        """A 422 for a JSON body that is not strict JSON (bad UTF-8, NaN, Infinity, integers past 64
        bits): Python's json module, which FastAPI parses with, takes some of these or fails with a
        400 the schema does not have."""
        if not body:
            return None
        kind = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
        if kind != b"application/json" and not (kind.startswith(b"application/") and kind.endswith(b"+json")):
            return None
        import orjson
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as err:
            return 422, "json_invalid", f"the body is not valid JSON: {str(err)[:200]}", None
        return None

    async def read_body(self, receive) -> bytes | None:
        chunks, size = [], 0
        async with asyncio.timeout(self.body_timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    raise _TooLarge
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)

    @staticmethod
    def replay(body: bytes, receive):
        first = [True]

        async def replayed():
            if first[0]:
                first[0] = False
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()                                        # then: wait for the disconnect
        return replayed

    @staticmethod
    async def reply(send, status: int, type_: str, msg: str, headers: dict | None):
        import orjson
        loc = ["header", "X-API-Key"] if status in (401, 403) else [] if status == 503 else ["body"]
        body = orjson.dumps({"detail": _error_detail(msg, type_, loc)})
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


# -- the gate: how many heavy requests are in flight, and how many compute -------------------

@functools.cache
def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _release_memory() -> None:
    """Give freed heap pages back to the OS after a large request (glibc keeps them otherwise, and
    RSS stays at its peak)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def _use_threads(threads: int | None) -> None:
    """Compute threads for torch (process-wide) and numba (per calling thread: the model threads)."""
    if threads:
        import numba
        import torch
        torch.set_num_threads(threads)
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


TRIM_EVERY_S = 5.0


class _Gate:
    def __init__(self, lim: dict, threads: int | None = None):
        self.max_inflight, self.slots = lim["max_heavy_inflight"], lim["model_slots"]
        self.queue_timeout, self.timeout = lim["queue_timeout_s"], lim["request_timeout_s"]
        self.inflight = 0
        self.trim_pending, self.last_trim = False, 0.0
        self.executor = ThreadPoolExecutor(self.slots, thread_name_prefix="sketchrec-model",
                                           initializer=_use_threads, initargs=(threads,))
        self._free = None
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.inflight >= self.max_inflight:
                return False
            self.inflight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.inflight -= 1
            idle = self.inflight == 0 and self.trim_pending
        if idle:                                   # a trim put off while busy: now, on the model thread
            self.executor.submit(self._trim, True)

    def done_large(self, large: bool) -> None:
        """After a model call, on the model thread: give freed heap pages back to the OS after a large
        request, but at most once per `TRIM_EVERY_S` while busy (after a trim the next request faults
        its buffers in again: +23 ms on 1,000 EMDE sessions); one put off is done when the service
        goes idle (`leave`), so RSS still comes back down after a burst."""
        self.trim_pending |= large
        if self.trim_pending and time.monotonic() - self.last_trim >= TRIM_EVERY_S:
            self._trim()

    def _trim(self, only_pending: bool = False) -> None:
        if only_pending and not self.trim_pending:
            return
        self.trim_pending, self.last_trim = False, time.monotonic()
        _release_memory()

    def _done(self, future) -> None:
        self._free.release()
        if not future.cancelled():
            future.exception()                     # retrieved: a request that timed out logs no warning

    async def run(self, fn):
        """fn() on the model thread, after waiting for a slot; its result (or exception)."""
        if self._free is None:
            self._free = asyncio.Semaphore(self.slots)
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(self._free.acquire(), self.queue_timeout)
        except TimeoutError:
            raise reject(503, f"no model slot free within {self.queue_timeout:g} s: retry later", "busy", (),
                         {"retry-after": "1"}) from None
        future = asyncio.get_running_loop().run_in_executor(self.executor, fn)
        future.add_done_callback(self._done)                              # when the work ends, not the wait
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(self.timeout - (time.perf_counter() - t0), 0))
        except TimeoutError:
            raise reject(504, f"the request took over {self.timeout:g} s", "timeout", ()) from None


# -- the app ------------------------------------------------------------------------------

def _docs_assets() -> Path | None:
    """Swagger UI and ReDoc files shipped by the `fastapi-offline` package (no registry package
    ships them alone in a version that reads OpenAPI 3.1), or None when it is not installed."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    static = Path(fastapi_offline.__file__).parent / "static"
    return static if (static / "swagger-ui-bundle.js").exists() else None


def create_app(bundle: Bundle | str | Path, api_key: str | None = None, limits: dict | None = None,
               threads: int | None = None, int8: bool = False):
    """The FastAPI app serving `bundle` (a loaded one, or a path to load memory-mapped).
    threads: compute threads of the model (torch and numba; default: their own defaults).
    int8: serve an EMDE with int8 linear layers (`EMDE.to_int8`; no /explain then)."""
    import orjson
    from fastapi import FastAPI, Security
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
    from fastapi.security import APIKeyHeader
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from starlette.exceptions import HTTPException as StarletteHTTPException

    class JSONBytes(JSONResponse):
        """JSON already encoded (orjson, straight from numpy rows, on the model thread)."""
        def render(self, content) -> bytes:
            return content if isinstance(content, bytes) else orjson.dumps(content)

    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    if bundle.items is None:
        raise ValueError("the bundle has no item ids (save it with items=IdMap(...)) and cannot be served")
    unknown_limits = set(limits or {}) - set(LIMITS)
    if unknown_limits:
        raise ValueError(f"unknown limits {sorted(unknown_limits)}; known: {sorted(LIMITS)}")
    lim = {**LIMITS, **(limits or {})}
    model, items = bundle.model, bundle.items
    if int8:
        if not hasattr(model, "to_int8"):
            raise ValueError(f"int8 serving applies to EMDE bundles, not {type(model).__name__}")
        model.to_int8()
    n_items = len(items)
    external = np.asarray(items.keys.to_pylist(), dtype=object)
    cell_bytes = max(len(orjson.dumps(x)) for x in external) + 12       # an id, a rounded score, separators
    item_vectors = bundle.extras.get("item_vectors")
    text_vectors = bundle.extras.get("text_vectors")
    unit = lambda v: v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)  # noqa: E731
    item_unit = unit(item_vectors.astype(np.float32)) if item_vectors is not None else None
    text_unit = unit(text_vectors.astype(np.float32)) if text_vectors is not None else None
    chunk_rows = max(1, lim["score_cells"] // max(n_items, 1))
    features = {"similar": item_unit is not None, "search": text_unit is not None,
                "profile": hasattr(model, "profile"), "explain": hasattr(model, "explain") and not int8}
    # The first call compiles numba kernels and touches the model's arrays (seconds): pay for it
    # here, before the service is up, not in a user's first request.
    model.recommend(Sessions(np.array([0, 1]), np.zeros(1, np.int32), n_items), k=1)

    registry = CollectorRegistry()

    def exposed() -> CollectorRegistry:
        """This process's metrics, or every worker's when prometheus_client runs in multiprocess
        mode (`serve(workers > 1)` sets $PROMETHEUS_MULTIPROC_DIR; the values are then in files there)."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return registry
        from prometheus_client import multiprocess
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return merged
    requests = Counter("sketchrec_requests_total", "Requests by route template and status", ["endpoint", "status"],
                       registry=registry)
    latency = Histogram("sketchrec_request_seconds", "Request latency by route template", ["endpoint"],
                        registry=registry, buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
    scored = Counter("sketchrec_sessions_scored_total", "Sessions (or items / texts) answered", ["endpoint"],
                     registry=registry)
    unknown_ids = Counter("sketchrec_unknown_items_total", "Unknown item ids in requests", registry=registry)

    def observe(label: str, status: int, seconds: float) -> None:
        latency.labels(label).observe(seconds)
        requests.labels(label, str(status)).inc()

    assets = _docs_assets()
    app = FastAPI(title="sketchrec", version=bundle.manifest.get("sketchrec_version", "?"),
                  description=f"{bundle.manifest.get('model_class')} over {n_items:,} items",
                  docs_url=None, redoc_url=None)
    gate = _Gate(lim, threads)
    models = _request_models(lim, n_items)
    keyed = [Security(APIKeyHeader(name="X-API-Key", auto_error=False))] if api_key is not None else []

    def errors(*codes: int, public: bool = False) -> dict:
        """OpenAPI entries for the error answers an operation can give, in the 422 shape."""
        codes = (*codes, 408, 413) + ((401, 403) if api_key is not None and not public else ())
        shape = {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}
        return {c: {"description": ERROR_CODES[c], "content": shape} for c in codes}

    # --- errors: one shape, no echo of the input ---
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        detail = [{"loc": [str(p)[:64] if isinstance(p, str) else p for p in e.get("loc", ())],
                   "msg": str(e.get("msg", ""))[:300], "type": str(e.get("type", ""))} for e in exc.errors()[:20]]
        return Response(orjson.dumps({"detail": detail}), status_code=422, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail
        if not isinstance(detail, list):
            detail = _error_detail(str(detail), f"http_{exc.status_code}")
        if exc.status_code == 404 and not isinstance(exc.detail, list):
            served = ", ".join(r.path for r in app.routes if getattr(r, "include_in_schema", False))
            detail = _error_detail(f"no such endpoint; this server answers {served}", "not_found", ("path",))
        return Response(orjson.dumps({"detail": detail}), status_code=exc.status_code,
                        media_type="application/json", headers=exc.headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        return Response(orjson.dumps({"detail": _error_detail("internal error", "internal")}), status_code=500,
                        media_type="application/json")

    # --- request helpers: limits beyond the schema, unknown ids, JSON from numpy ---
    def over(what: str, n: int, limit_name: str, unit: str = ""):
        return reject(413, f"{what} {n:,}{unit}: the limit is {lim[limit_name]:,}{unit} per request", "work_limit")

    def check_results(rows: int, k: int) -> None:
        cells = rows * k
        if cells > lim["max_results"]:
            raise over(f"{rows:,} rows x k={k}: results", cells, "max_results")
        if cells * cell_bytes > lim["max_response_bytes"]:
            raise over("the answer would take about", cells * cell_bytes, "max_response_bytes", " bytes")

    def check_inputs(rows: list[list]) -> None:
        n = sum(map(len, rows))
        if n > lim["max_input_items"]:
            raise over("item ids", n, "max_input_items")

    def to_sessions(rows: list[list]) -> tuple[Sessions, list[list], list[int]]:
        flat = [str(i) for r in rows for i in r]
        internal = items.lookup(flat).internal if flat else np.zeros(0, np.int64)
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        row_of = np.repeat(np.arange(len(rows)), lengths)
        known = internal >= 0
        counts = np.bincount(row_of[~known], minlength=len(rows)).tolist()
        unknown = [[] for _ in rows]
        flat_rows = [x for r in rows for x in r]
        for position in np.flatnonzero(~known)[:lim["max_unknown_echo"]]:      # the echo is bounded
            unknown[row_of[position]].append(flat_rows[position])
        unknown_ids.inc(int((~known).sum()))
        kept = np.bincount(row_of[known], minlength=len(rows))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(kept, out=indptr[1:])
        return Sessions(indptr, internal[known].astype(np.int32), n_items), unknown, counts

    def ranked(top: np.ndarray, scores: np.ndarray) -> list[tuple[list, list]]:
        """Ids and rounded scores per row; -inf (excluded, or fewer than k candidates) dropped."""
        scores = np.round(scores.astype(np.float64), 6)
        finite = np.isfinite(scores)
        if finite.all():
            return list(zip(external[top].tolist(), scores))
        return [(external[t[f]].tolist(), s[f]) for t, s, f in zip(top, scores, finite)]

    def answer(content, large: bool = False) -> Response:
        response = JSONBytes(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY))
        response.large = large                                    # release memory once the work's objects are gone
        return response

    # --- endpoints ---
    @app.get("/health", response_model=Health, responses=errors(public=True))
    async def health():
        return {"status": "ok", "model": bundle.manifest.get("model_class"), "items": n_items,
                "bundle": bundle.path.name if bundle.path else None, "endpoints": features}

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=keyed, responses=errors())
    async def metrics():
        return PlainTextResponse(generate_latest(exposed()).decode(), media_type="text/plain; version=0.0.4")

    def heavy(path: str, request_model, response, check=None, extra_errors=()):
        """Register a model endpoint: validated by FastAPI and `check`ed (the limits beyond the schema,
        cheap) on the loop, so that a request over a limit does not wait for the model; computed by
        the gate."""
        def register(work):
            def job(req):
                response = work(req)
                gate.done_large(getattr(response, "large", False))
                return response

            async def endpoint(req):
                if check is not None:
                    check(req)
                return await gate.run(lambda: job(req))
            endpoint.__name__, endpoint.__doc__ = work.__name__, work.__doc__
            endpoint.__annotations__ = {"req": request_model}
            app.post(path, dependencies=keyed, responses={200: {"model": response}, **errors(503, 504, *extra_errors)},
                     response_class=JSONBytes)(endpoint)
            return work
        return register

    def session_rows(req) -> list[list]:
        return req.sessions if hasattr(req, "sessions") else [req.items]

    def recommend_check(req) -> None:
        rows = session_rows(req)
        check_results(len(rows), min(req.k, n_items))
        check_inputs(rows)

    @heavy("/recommend", models["recommend"], Recommendation | RecommendBatchResponse, recommend_check)
    def recommend(req):
        """Top-k items for one session ({"items": ...}) or for each of a batch ({"sessions": ...})."""
        batch, rows, k = hasattr(req, "sessions"), session_rows(req), min(req.k, n_items)
        histories, unknown, counts = to_sessions(rows)
        parts = [model.recommend(histories.take(np.arange(s, min(s + chunk_rows, len(rows)))), k=k,
                                 exclude_seen=req.exclude_seen) for s in range(0, len(rows), chunk_rows)]
        top, scores = (np.concatenate(x) for x in zip(*parts))
        scored.labels("recommend").inc(len(rows))
        results = [{"items": t, "scores": v, "unknown_items": u, "unknown_count": c}
                   for (t, v), u, c in zip(ranked(top, scores), unknown, counts)]
        return answer({"results": results} if batch else results[0], large=len(rows) > 100)

    if features["similar"]:
        def similar_check(req) -> None:                    # unknown ids count: they have a (short) result too
            check_results(len(req.items), min(req.k, n_items))

        @heavy("/similar", models["similar"], SimilarResponse, similar_check)
        def similar(req):
            """The items closest to each given item (cosine over the bundle's item vectors)."""
            from sketchrec.topk import topk_chunked
            k = min(req.k, n_items)
            look = items.lookup([str(i) for i in req.items]) if req.items else None
            known = look.known if look is not None else np.zeros(0, bool)
            rows = look.internal[known] if look is not None else np.zeros(0, np.int64)
            hits = iter(ranked(*topk_chunked(lambda s, e: item_unit[rows[s:e]] @ item_unit.T, len(rows), k,
                                             chunk_rows=chunk_rows, exclude=(np.arange(len(rows) + 1), rows)))
                        if len(rows) else [])
            results = []
            for item, is_known in zip(req.items, known):
                t, v = next(hits) if is_known else ([], [])
                results.append({"item": item, "unknown": not is_known, "items": t, "scores": v})
            unknown_ids.inc(int((~known).sum()))
            scored.labels("similar").inc(len(req.items))
            return answer({"results": results}, large=len(rows) > 100)

    if features["search"]:
        encoder = []

        def search_check(req) -> None:
            chars = sum(min(len(t), 512) for t in req.texts)
            if chars > lim["max_search_chars"]:
                raise over("texts hold", chars, "max_search_chars", " characters")
            check_results(len(req.texts), min(req.k, n_items))

        @heavy("/search", models["search"], SearchResponse, search_check)
        def search(req):
            """Items whose text is closest to each query (MiniLM vectors)."""
            from sketchrec.embedders.text import TextEncoder
            from sketchrec.topk import topk
            k = min(req.k, n_items)
            if not encoder:
                encoder.append(TextEncoder(progress=False))
            top, vals = topk(encoder[0].encode(req.texts) @ text_unit.T, k)
            scored.labels("search").inc(len(req.texts))
            return answer({"results": [{"text": t, "items": i, "scores": v}
                                       for t, (i, v) in zip(req.texts, ranked(top, vals))]})

    if features["profile"]:
        @heavy("/profile", models["profile"], ProfileResponse, lambda req: check_inputs(req.sessions))
        def profile(req):
            """Behavioural profiles (the model's input sketches) as sparse (index, value) lists."""
            histories, unknown, counts = to_sessions(req.sessions)
            x = model.profile(histories, sparse=True).tocsr()
            if x.nnz > lim["max_results"]:
                raise over("profile values", x.nnz, "max_results")
            scored.labels("profile").inc(len(req.sessions))
            values = np.round(x.data.astype(np.float64), 6)
            out = [{"indices": x.indices[x.indptr[r]:x.indptr[r + 1]], "values": values[x.indptr[r]:x.indptr[r + 1]],
                    "unknown_items": unknown[r], "unknown_count": counts[r]} for r in range(x.shape[0])]
            return answer({"dim": int(x.shape[1]), "results": out}, large=x.nnz > 10_000)

    if features["explain"]:
        @heavy("/explain", models["explain"], Explanation, extra_errors=(404,))
        def explain(req):
            """Why an item is recommended: per-modality contributions and the top input buckets."""
            target = items.lookup([str(req.item)])
            if not target.known[0]:
                raise reject(404, "the item to explain is not in the bundle", "unknown_item", ("body", "item"))
            histories, unknown, counts = to_sessions([req.items])
            e = model.explain(histories, target.internal, top_buckets=req.top_buckets)[0]
            return answer({"item": req.item, "score": e["score"], "modalities": e["modalities"],
                           "buckets": [{"feature": n, "attribution": a} for n, a in e["buckets"]],
                           "unknown_items": unknown[0], "unknown_count": counts[0]})

    # --- docs, from local files ---
    if assets is not None:
        from fastapi.staticfiles import StaticFiles
        app.mount(ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request):
        root = request.scope.get("root_path", "")
        if assets is None:
            return HTMLResponse(f"<p>Swagger UI is not installed here (pip install fastapi-offline). The API schema "
                                f"is at <a href='{root}/openapi.json'>{root}/openapi.json</a>.</p>")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title="sketchrec API",
                                   swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{ASSETS}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request):
        root = request.scope.get("root_path", "")
        if assets is None:
            return await docs(request)
        return get_redoc_html(openapi_url=f"{root}/openapi.json", title="sketchrec API",
                              redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{ASSETS}/favicon.png", with_google_fonts=False)

    app.add_middleware(_Guard, router=app.router, api_key=api_key, gate=gate, observe=observe,
                       open_labels=("/health", "/docs", "/redoc", "/openapi.json", ASSETS),
                       max_body=lim["max_body_bytes"], body_timeout=lim["body_timeout_s"])
    app.state.limits = lim
    return app


WORKER_ENV = "SKETCHREC_SERVE_WORKER"       # JSON {bundle, limits, threads, int8} for `worker_app`


def serve(bundle: Bundle | str | Path, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          limits: dict | None = None, max_connections: int = 256, workers: int = 1,
          threads: int | None = None, int8: bool = False) -> None:
    """Run the service with uvicorn (blocking). Beyond `max_connections` open connections per
    worker uvicorn itself answers 503.

    workers > 1: that many uvicorn worker processes, each with its own socket on the port
    (SO_REUSEPORT, so the kernel spreads connections over them; elsewhere uvicorn's shared
    socket). Each loads the bundle memory-mapped, so the weights are
    one copy in the page cache for all of them (`sketchrec.bundle.map_safetensors`), and /metrics
    adds up every worker's counts (prometheus_client's multiprocess mode, in a temporary
    directory removed at exit). threads: compute threads per worker (torch and numba; default:
    the cores this process may use, shared out among the workers). int8: see `create_app`."""
    import uvicorn
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    threads = threads or max(1, len(os.sched_getaffinity(0)) // workers)
    options = dict(host=host, port=port, log_level="warning", limit_concurrency=max_connections)
    if workers == 1:
        uvicorn.run(create_app(bundle, api_key=api_key, limits=limits, threads=threads, int8=int8), **options)
        return
    root = bundle.path.parent if isinstance(bundle, Bundle) else Path(bundle)
    with tempfile.TemporaryDirectory(prefix="sketchrec-metrics-") as metrics_dir:
        env = {WORKER_ENV: json.dumps({"bundle": str(root), "limits": limits or {}, "threads": threads,
                                       "int8": int8}),
               "PROMETHEUS_MULTIPROC_DIR": metrics_dir, "NUMBA_NUM_THREADS": str(threads),
               "OMP_NUM_THREADS": str(threads)}
        if api_key is not None:
            env["SKETCHREC_API_KEY"] = api_key            # the workers' environment: not visible in `ps`
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            if hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux"):
                _run_reuseport_workers(workers, options)
            else:
                uvicorn.run("sketchrec.serve:worker_app", factory=True, workers=workers, **options)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _run_reuseport_workers(workers: int, options: dict) -> None:
    """`workers` processes, each with its own listening socket on the same port (SO_REUSEPORT), so
    the kernel spreads new connections over the workers by a hash of each connection. (uvicorn's
    own workers share one socket, and the first to wake accepts every pending connection: 8 client
    connections opened together all went to one of two workers in benchmarks/serve_load.py.)
    A worker that exits stops the others and the server exits non-zero, for the process manager
    to restart it; SIGINT / SIGTERM stop every worker gracefully."""
    import multiprocessing
    import signal
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_reuseport_worker, args=(options,), name=f"sketchrec-worker-{i}")
             for i in range(workers)]
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in procs:
            p.start()
        while not stop.is_set() and all(p.is_alive() for p in procs):
            stop.wait(0.5)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()                      # SIGTERM: uvicorn finishes what it is answering
        for p in procs:
            p.join(30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [p for p in procs if p.exitcode not in (0, -signal.SIGTERM)]
    if not stop.is_set() and failed:
        raise SystemExit(f"worker {failed[0].name} exited with code {failed[0].exitcode}; the server stopped")


def _reuseport_worker(options: dict) -> None:
    import uvicorn
    host, port = options["host"], options["port"]
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    config = uvicorn.Config("sketchrec.serve:worker_app", factory=True,
                            **{k: v for k, v in options.items() if k not in ("host", "port")})
    uvicorn.Server(config).run(sockets=[sock])


def worker_app():
    """The app of one worker process started by `serve(workers > 1)` (configured by $WORKER_ENV)."""
    config = json.loads(os.environ[WORKER_ENV])
    return create_app(config["bundle"], api_key=os.environ.get("SKETCHREC_API_KEY"), limits=config["limits"],
                      threads=config["threads"], int8=config["int8"])
