"""What one request may cost, and the one shape of every error answer.

`LIMITS` are the service's defaults (override any with ``create_app(limits={...})`` or
``sketchrec serve --limit NAME=VALUE``); `reject` builds an HTTPException whose detail already has
FastAPI's HTTPValidationError shape (a list of {loc, msg, type}), the shape of every error the
service answers.
"""

from __future__ import annotations

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
ERROR_CODES = {401: "missing X-API-Key header", 403: "wrong API key",
               404: "an id the request refers to is not in the bundle",
               408: "the request body took too long to arrive", 413: "the request is over a size or work limit",
               503: "too many requests in flight: retry later (see Retry-After)",
               504: "the request took longer than the server's time limit"}


def checked_limits(limits: dict | None) -> dict:
    """`LIMITS` with the given overrides; an unknown name is a ValueError."""
    unknown_limits = set(limits or {}) - set(LIMITS)
    if unknown_limits:
        raise ValueError(f"unknown limits {sorted(unknown_limits)}; known: {sorted(LIMITS)}")
    return {**LIMITS, **(limits or {})}


def scored_rows(lim: dict, n_items: int) -> int:
    """How many sessions (or items, or texts) one request may score against a catalogue of n_items."""
    return max(1, min(lim["max_sessions"], lim["max_scored"] // max(n_items, 1)))


def _error_detail(msg: str, type_: str, loc=()) -> list[dict]:
    return [{"loc": list(loc), "msg": msg, "type": type_}]


def reject(status: int, msg: str, type_: str, loc=("body",), headers: dict | None = None):
    """An HTTPException whose detail already has the schema's error shape."""
    from fastapi import HTTPException
    return HTTPException(status, _error_detail(msg, type_, loc), headers=headers)
