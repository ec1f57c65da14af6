"""The app factory: `create_app(bundle)` builds the FastAPI app for a model bundle or a
catalogue-search bundle — error handlers, /health and /metrics, the endpoints the bundle can
answer (one module per group), the docs, and the guard in front of it all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from starlette.requests import Request          # module level: FastAPI resolves the handlers' annotations here

import sketchrec
from sketchrec._optional import require
from sketchrec.bundle import Bundle, load_bundle
from sketchrec.data.sessions import Sessions
from sketchrec.retrieval.catalogue import KIND as CATALOGUE_KIND
from sketchrec.retrieval.catalogue import CatalogueSearch
from sketchrec.serve import catalogue as catalogue_endpoints
from sketchrec.serve import docs, recommend, vectors
from sketchrec.serve.context import Service
from sketchrec.serve.docs import ASSETS
from sketchrec.serve.gate import _Gate
from sketchrec.serve.guard import _Guard
from sketchrec.serve.limits import _error_detail, checked_limits
from sketchrec.serve.metrics import ServiceMetrics
from sketchrec.serve.schemas import Health

def bundle_kind(path: str | Path) -> str | None:
    """The `kind` a bundle's current manifest declares (None: a model bundle, or not readable
    here; the load that follows checks everything and says what is wrong)."""
    root = Path(path)
    try:
        name = (root / "CURRENT").read_text(encoding="ascii").strip()
        manifest = json.loads((root / name / "manifest.json").read_bytes())
    except (OSError, ValueError):
        return None
    return manifest.get("kind") if isinstance(manifest, dict) else None


def load_servable(path: str | Path):
    """What `create_app` serves from `path`: a `CatalogueSearch` for a catalogue-search bundle,
    else a model `Bundle` (memory-mapped). Errors are `BundleError`s naming the file."""
    if bundle_kind(path) == CATALOGUE_KIND:
        return CatalogueSearch.load(path)
    return load_bundle(path)


def create_app(bundle, api_key: str | None = None, limits: dict | None = None,
               threads: int | None = None, int8: bool = False):
    """The FastAPI app serving `bundle`: a model bundle (a loaded `Bundle`, or a path to load
    memory-mapped) or a catalogue-search bundle (a fitted `CatalogueSearch`, or a path to one).
    threads: compute threads of the model (torch and numba; default: their own defaults).
    int8: serve an EMDE with int8 linear layers (`EMDE.to_int8`; no /explain then)."""
    if not isinstance(bundle, (Bundle, CatalogueSearch)):
        bundle = load_servable(bundle)
    lim = checked_limits(limits)
    if isinstance(bundle, CatalogueSearch):
        return _catalogue_app(bundle, api_key, lim, threads, int8)
    return _model_app(bundle, api_key, lim, threads, int8)


def _model_app(bundle: Bundle, api_key, lim: dict, threads, int8: bool):
    """/recommend, and /similar, /search, /profile, /explain where the bundle can answer them."""
    if bundle.items is None:
        raise ValueError("the bundle has no item ids (save it with items=IdMap(...)) and cannot be served")
    orjson = require("orjson", "the HTTP service")
    model, items = bundle.model, bundle.items
    if int8:
        if not hasattr(model, "to_int8"):
            raise ValueError(f"int8 serving applies to EMDE bundles, not {type(model).__name__}")
        model.to_int8()
    n_items = len(items)
    external = np.asarray(items.keys.to_pylist(), dtype=object)
    cell_bytes = max(len(orjson.dumps(x)) for x in external) + 12       # an id, a rounded score, separators
    chunk_rows = max(1, lim["score_cells"] // max(n_items, 1))
    item_index, text_index = vectors.indexes(bundle.extras.get("item_vectors"), bundle.extras.get("text_vectors"),
                                             chunk_rows)
    features = {"similar": item_index is not None, "search": text_index is not None,
                "profile": hasattr(model, "profile"), "explain": hasattr(model, "explain") and not int8}
    # The first call compiles numba kernels and touches the model's arrays (seconds): pay for it
    # here, before the service is up, not in a user's first request.
    model.recommend(Sessions(np.array([0, 1]), np.zeros(1, np.int32), n_items), k=1)

    health = {"status": "ok", "model": bundle.manifest.get("model_class"), "items": n_items,
              "bundle": bundle.path.name if bundle.path else None, "endpoints": features}
    service = _service(api_key, lim, threads, external, cell_bytes, health,
                       version=bundle.manifest.get("sketchrec_version", "?"),
                       description=f"{bundle.manifest.get('model_class')} over {n_items:,} items")
    recommend.register(service, model, items)
    if item_index is not None:
        vectors.register_similar(service, items, item_index)
    if text_index is not None:
        vectors.register_search(service, text_index)
    recommend.register_profiles(service, model, items, features)
    return _finish(service)


def _catalogue_app(catalogue, api_key, lim: dict, threads, int8: bool):
    """POST /search: text queries -> products, over a `CatalogueSearch`."""
    from sketchrec.embedders.text import TextEncoder
    if int8:
        raise ValueError("int8 serving applies to EMDE bundles, not a CatalogueSearch")
    catalogue._check_fitted()
    orjson = require("orjson", "the HTTP service")
    external = np.asarray(catalogue.ids_.tolist(), dtype=object)
    longest_title = max((len(orjson.dumps(t)) for t in catalogue.texts_), default=2)
    cell_bytes = max(len(orjson.dumps(x)) for x in external) + longest_title + 14   # id, title, score, separators
    encoder = TextEncoder(max_length=catalogue.config_.get("max_length", 32), progress=False)
    catalogue.search(["warm-up"], 1, encoder=encoder, as_result=True)    # load the encoder now, not in a request
    path = getattr(catalogue, "path_", None)
    health = {"status": "ok", "model": type(catalogue).__name__, "items": len(external),
              "bundle": path.name if path else None,
              "endpoints": {"recommend": False, "similar": False, "search": True, "profile": False, "explain": False}}
    service = _service(api_key, lim, threads, external, cell_bytes, health, version=sketchrec.__version__,
                       description=f"text -> product search ({catalogue.config_.get('pooling')} pooling) "
                                   f"over {len(external):,} products")
    catalogue_endpoints.register(service, catalogue, encoder)
    return _finish(service)


def _service(api_key, lim: dict, threads, external: np.ndarray, cell_bytes: int, health_body: dict, *,
             version: str, description: str) -> Service:
    """The app with its error handlers, /health and /metrics, wrapped in a `Service`."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import PlainTextResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException
    orjson = require("orjson", "the HTTP service")

    app = FastAPI(title="sketchrec", version=version, description=description, docs_url=None, redoc_url=None)
    service = Service(app, lim, external, cell_bytes, _Gate(lim, threads), ServiceMetrics(), api_key)

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

    @app.get("/health", response_model=Health, responses=service.errors(public=True))
    async def health():
        return health_body

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=service.keyed, responses=service.errors())
    async def metrics():
        return PlainTextResponse(service.metrics.text(), media_type="text/plain; version=0.0.4")

    return service


def _finish(service: Service):
    """The docs, then the guard in front of everything; the app."""
    app, lim = service.app, service.lim
    docs.register(app)
    app.add_middleware(_Guard, router=app.router, api_key=service.api_key, gate=service.gate,
                       observe=service.metrics.observe,
                       open_labels=("/health", "/docs", "/redoc", "/openapi.json", ASSETS),
                       max_body=lim["max_body_bytes"], body_timeout=lim["body_timeout_s"])
    app.state.limits = lim
    return app
