"""What every endpoint of one app shares: the limits, the ids it answers with, the gate, the
metrics, and the request helpers (work limits beyond the schema, JSON straight from numpy, the
registration of a heavy endpoint). Endpoint modules get a `Service` and add their routes to it."""

from __future__ import annotations

import numpy as np
from fastapi.responses import JSONResponse

from sketchrec._optional import require
from sketchrec.serve.limits import ERROR_CODES, reject


class JSONBytes(JSONResponse):
    """JSON already encoded (orjson, straight from numpy rows, on the model thread)."""

    def render(self, content) -> bytes:
        return content if isinstance(content, bytes) else require("orjson").dumps(content)


class Service:
    """One app's shared state and helpers.

    app : the FastAPI app; lim : its limits; external : (n,) object array, the id of each row the
    endpoints answer with (items, products); cell_bytes : a result's bytes in an answer (id, score,
    separators: the response-size estimate); gate, metrics : `_Gate`, `ServiceMetrics`;
    api_key : None for an open service."""

    def __init__(self, app, lim: dict, external: np.ndarray, cell_bytes: int, gate, metrics,
                 api_key: str | None):
        from fastapi import Security
        from fastapi.security import APIKeyHeader

        from sketchrec.serve.schemas import _request_models
        self.app, self.lim, self.external, self.cell_bytes = app, lim, external, cell_bytes
        self.gate, self.metrics, self.api_key = gate, metrics, api_key
        self.n_items = len(external)
        self.chunk_rows = max(1, lim["score_cells"] // max(self.n_items, 1))
        self.models = _request_models(lim, self.n_items)
        self.keyed = [Security(APIKeyHeader(name="X-API-Key", auto_error=False))] if api_key is not None else []

    def errors(self, *codes: int, public: bool = False) -> dict:
        """OpenAPI entries for the error answers an operation can give, in the 422 shape."""
        codes = (*codes, 408, 413) + ((401, 403) if self.api_key is not None and not public else ())
        shape = {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}
        return {c: {"description": ERROR_CODES[c], "content": shape} for c in codes}

    # -- limits beyond the schema (413, checked on the loop before the request waits for the model) --
    def over(self, what: str, n: int, limit_name: str, unit: str = ""):
        return reject(413, f"{what} {n:,}{unit}: the limit is {self.lim[limit_name]:,}{unit} per request",
                      "work_limit")

    def check_results(self, rows: int, k: int) -> None:
        cells = rows * k
        if cells > self.lim["max_results"]:
            raise self.over(f"{rows:,} rows x k={k}: results", cells, "max_results")
        if cells * self.cell_bytes > self.lim["max_response_bytes"]:
            raise self.over("the answer would take about", cells * self.cell_bytes, "max_response_bytes", " bytes")

    def check_inputs(self, rows: list[list]) -> None:
        n = sum(map(len, rows))
        if n > self.lim["max_input_items"]:
            raise self.over("item ids", n, "max_input_items")

    def check_search(self, req) -> None:
        """A text search: the characters that count (the first 512 of each text), then the results."""
        chars = sum(min(len(t), 512) for t in req.texts)
        if chars > self.lim["max_search_chars"]:
            raise self.over("texts hold", chars, "max_search_chars", " characters")
        self.check_results(len(req.texts), min(req.k, self.n_items))

    # -- answers ----------------------------------------------------------------------------------
    def ranked(self, top: np.ndarray, scores: np.ndarray) -> list[tuple[list, list]]:
        """Ids and rounded scores per row; non-finite scores (excluded, fewer than k candidates:
        -inf or NaN) dropped."""
        scores = np.round(scores.astype(np.float64), 6)
        finite = np.isfinite(scores)
        if finite.all():
            return list(zip(self.external[top].tolist(), scores))
        return [(self.external[t[f]].tolist(), s[f]) for t, s, f in zip(top, scores, finite)]

    def answer(self, content, large: bool = False):
        response = JSONBytes(require("orjson").dumps(content, option=require("orjson").OPT_SERIALIZE_NUMPY))
        response.large = large                                    # release memory once the work's objects are gone
        return response

    def heavy(self, path: str, request_model, response, check=None, extra_errors=()):
        """Register a model endpoint: validated by FastAPI and `check`ed (the limits beyond the schema,
        cheap) on the loop, so that a request over a limit does not wait for the model; computed by
        the gate."""
        def register(work):
            def job(req):
                response = work(req)
                self.gate.done_large(getattr(response, "large", False))
                return response

            async def endpoint(req):
                if check is not None:
                    check(req)
                return await self.gate.run(lambda: job(req))
            endpoint.__name__, endpoint.__doc__ = work.__name__, work.__doc__
            endpoint.__annotations__ = {"req": request_model}
            self.app.post(path, dependencies=self.keyed,
                          responses={200: {"model": response}, **self.errors(503, 504, *extra_errors)},
                          response_class=JSONBytes)(endpoint)
            return work
        return register
