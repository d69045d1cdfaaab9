"""The entry service's front door, as ASGI middleware: an optional API key, a body-size limit, and load shedding.

- API key (WINE_API_KEY, off by default): every route but the probes, the API documents and the web page's files needs
  `Authorization: Bearer <key>`; anything else gets 401. The key is compared in constant time.
- Body size (WINE_MAX_BODY_BYTES): a larger body gets 413 before it is read (Content-Length), or as soon as it passes
  the limit (chunked).
- JSON only where JSON is read: a POST to one of BentoML's JSON APIs with another Content-Type gets 415 (BentoML
  would try to read a multipart body as form fields and fail with 500). A body with no Content-Type is read as JSON.
- Load shedding (WINE_MAX_CONCURRENT_WORK, WINE_SHED_AFTER_MS): POST requests hold units of work while they run,
  one per request plus one per 32 KiB of body (a 1,000-row batch weighs about eleven single wines), from the moment
  their body has arrived: a body still on the wire costs only its connection, until it arrives or the server's read
  timeout answers it 408 (wine_quality/http_protocol.py). Work over the limit is a queue; a queue that has stood for
  WINE_SHED_AFTER_MS is overload, not a burst, and from then until it has drained back to the limit, new requests get
  503 with Retry-After at once instead of queueing until they time out. A burst (a client's catch-up, a pause of the
  machine) is absorbed up to four times the limit, beyond which requests are shed at once.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# Liveness and readiness, in every protocol, and the metrics: open under the API key (orchestrators and load
# balancers probe without credentials), never shed.
PROBES = frozenset(
    {"/livez", "/readyz", "/healthz", "/metrics", "/v2/health/live", "/v2/health/ready", "/ping", "/health"}
)
DOCUMENTS = frozenset({"/", "/docs.json", "/schema.json"})
BODY_UNIT = 32 * 1024
BURST_FACTOR = 4  # a burst may hold this many times the limit's work before any wait for WINE_SHED_AFTER_MS


def is_probe(path: str) -> bool:
    """A liveness or readiness route of any protocol (V2's per-model readiness included), or the metrics."""
    return path in PROBES or (path.startswith("/v2/models/") and path.endswith("/ready"))


def is_open(path: str) -> bool:
    """Routes that never need the key: probes, the API documents and the web page (it asks the API itself)."""
    return is_probe(path) or path in DOCUMENTS or path == "/ui" or path.startswith(("/ui/", "/static"))


async def _answer(send: Send, status: int, error: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": error}).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """API key, body limit and load shedding in front of the entry service's routes."""

    def __init__(
        self,
        app: App,
        api_key: str | None,
        max_body_bytes: int,
        max_work: int,
        json_routes: frozenset[str],
        shed_after_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.max_body_bytes, self.max_work, self.json_routes = app, max_body_bytes, max_work, json_routes
        self.shed_after_s, self.clock = shed_after_s, clock
        self._expected = f"Bearer {api_key}".encode() if api_key else None
        self.work = 0  # units held by the requests running now
        self.queued_since: float | None = None  # since when the work has been over the limit, without a break

    def _overloaded(self, weight: int) -> bool:
        """Whether to shed a request of this weight: the work it would make is past the burst bound, or over the
        limit after a queue has stood for `shed_after_s`. The first request over the limit starts that clock."""
        after = self.work + weight
        if not self.work or after <= self.max_work:
            return False
        if after > BURST_FACTOR * self.max_work:
            return True
        now = self.clock()
        if self.queued_since is None:
            self.queued_since = now
        return now - self.queued_since >= self.shed_after_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self._expected is not None and not is_open(path) and not self._authorised(scope):
            problem = "missing or wrong API key: send `Authorization: Bearer <key>`"
            await _answer(send, 401, problem, {"WWW-Authenticate": "Bearer"})
            return
        if scope["method"] != "POST" or is_probe(path):
            await self.app(scope, receive, send)
            return
        if path in self.json_routes and not _is_json(scope):
            await _answer(send, 415, "send the body as JSON, with `Content-Type: application/json`")
            return
        length = self._content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await _answer(send, 413, self._too_large(length))
            return
        try:  # the whole body first, up to the limit: a request is work once it has arrived
            body = await self._read_limited(receive)
        except _Disconnected:  # gone, or timed out by the server (which answered it): nothing to answer
            return
        if body is None:
            await _answer(send, 413, self._too_large(None))
            return
        receive = replay(body, receive)
        weight = min(self.max_work, 1 + len(body) // BODY_UNIT)
        if self._overloaded(weight):
            retry = {"Retry-After": "1"}
            await _answer(send, 503, f"at capacity ({self.work} units of work in progress): retry in 1 s", retry)
            return
        self.work += weight
        try:
            await self.app(scope, receive, send)
        finally:
            self.work -= weight
            if self.work <= self.max_work:
                self.queued_since = None  # the queue has drained: the next one over the limit is a new burst

    def _authorised(self, scope: Scope) -> bool:
        given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        assert self._expected is not None
        return hmac.compare_digest(given, self._expected)

    @staticmethod
    def _content_length(scope: Scope) -> int | None:
        value = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def _too_large(self, length: int | None) -> str:
        size = f"{length} bytes" if length is not None else "more bytes"
        return f"request body of {size} is over the limit of {self.max_body_bytes} bytes (WINE_MAX_BODY_BYTES)"

    async def _read_limited(self, receive: Receive) -> bytes | None:
        """The body, or None once it passes the limit; raises _Disconnected if the connection ends first."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


class _Disconnected(Exception):
    """The connection ended before the request's body had arrived."""


def _is_json(scope: Scope) -> bool:
    value = next((v for k, v in scope["headers"] if k == b"content-type"), None)
    if value is None:
        return True
    media: bytes = value.split(b";")[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def replay(body: bytes, then: Receive, more_body: bool = False) -> Receive:
    """A receive that gives the body read ahead (and whether more follows), then whatever the connection says next
    (more body, or a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": more_body}

    return receive
