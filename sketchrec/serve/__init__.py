"""HTTP service for a model bundle or a catalogue-search bundle (FastAPI; run with uvicorn:
`sketchrec serve BUNDLE`).

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

A catalogue-search bundle (`sketchrec train crossmodal`, `sketchrec.retrieval.CatalogueSearch`)
is served with one model endpoint:

- POST /search     {"texts": [...], "k"} -> per text: the k products whose photos match it best
                   (ids, titles, cosines)

An endpoint the bundle cannot answer (/similar without item vectors, /search without text
vectors, /profile and /explain for models without them) is not routed, so the OpenAPI schema
lists exactly what this server answers; /health says the same.

The service is meant to face clients that are careless or hostile (issue 28), so every request
costs a bounded amount of memory and time, and everything it can answer is in the schema:

- An ASGI middleware (`_Guard`, `guard.py`) runs before FastAPI: it checks `X-API-Key` from the headers
  (bytes, constant-time) before a byte of the body is read, refuses a body over
  `max_body_bytes` from its Content-Length, or while streaming one without (chunked), and gives
  up on a body that takes more than `body_timeout_s` to arrive. It labels /metrics by route
  template, with every unmatched path under one label, so random paths cannot grow it.
- Heavy endpoints (everything that touches the model or the vectors) share one admission
  control (`_Gate`, `gate.py`): at most `max_heavy_inflight` such requests are read and parsed at once
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

The package, by seam: `app` (the app factory), `recommend` / `vectors` / `catalogue` / `docs` (the
endpoints, one module per group), `context` (what the endpoints share), `schemas` (request and
response bodies), `limits` (limits and the error shape), `guard`, `gate`, `metrics`, `workers`
(running it: one process or several).
"""

from sketchrec._optional import require

require("fastapi", "the HTTP service (sketchrec serve)")

from sketchrec.serve.app import CATALOGUE_KIND, bundle_kind, create_app, load_servable  # noqa: E402, F401
from sketchrec.serve.context import JSONBytes, Service  # noqa: E402, F401
from sketchrec.serve.docs import ASSETS, _docs_assets  # noqa: E402, F401
from sketchrec.serve.gate import TRIM_EVERY_S, _Gate, _libc, _release_memory, _use_threads  # noqa: E402, F401
from sketchrec.serve.guard import CLOSE, HEAVY, UNMATCHED, _Guard, _TooLarge  # noqa: E402, F401
from sketchrec.serve.limits import (ERROR_CODES, LIMITS, SAFE_INT, _error_detail, checked_limits,  # noqa: E402, F401
                                    reject, scored_rows)
from sketchrec.serve.metrics import ServiceMetrics  # noqa: E402, F401
from sketchrec.serve.schemas import (Bucket, CatalogueHits, CatalogueSearchResponse, Explanation,  # noqa: E402, F401
                                     Health, ItemId, Neighbours, Profile, ProfileResponse, Recommendation,
                                     RecommendBatchResponse, SearchResponse, SimilarResponse, TextHits,
                                     _integral, _json_int, _request_models)
from sketchrec.serve.workers import (WORKER_ENV, _reuseport_worker, _run_reuseport_workers, serve,  # noqa: E402, F401
                                     worker_app)

__all__ = ["CATALOGUE_KIND", "ERROR_CODES", "LIMITS", "SAFE_INT", "WORKER_ENV", "bundle_kind", "create_app",
           "load_servable", "reject", "scored_rows", "serve", "worker_app"]
