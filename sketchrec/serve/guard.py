"""The guard: authentication, body size and time, metrics labels — before FastAPI reads anything.

A pure ASGI middleware (`_Guard`) checks `X-API-Key` from the headers (bytes, constant-time)
before a byte of the body is read, refuses a body over `max_body_bytes` from its Content-Length,
or while streaming one without (chunked), and gives up on a body that takes more than
`body_timeout_s` to arrive. It admits heavy requests through the gate (`sketchrec.serve.gate`)
and labels /metrics by route template, with every unmatched path under one label, so random
paths cannot grow it.
"""

from __future__ import annotations

import asyncio
import hmac
import time

from sketchrec.serve.limits import _error_detail

HEAVY = ("/recommend", "/similar", "/search", "/profile", "/explain")
CLOSE = {"connection": "close"}              # refused before the body was read: do not read it either
UNMATCHED = "unmatched"                       # the /metrics label of every path no route matches


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
