"""uvicorn's HTTP/1.1 protocols with read timeouts and one write per response: our one patch of uvicorn (0.55.0).

Written as the report upstream would get (uvicorn 0.55.0, both its `httptools` and its `h11` implementation):

1. Nothing times out a request that stops arriving. `timeout_keep_alive` runs only between requests, and
   `data_received` cancels it, so a client that sends part of a request's headers, or its headers and part of its
   body, then stalls, holds its connection and its request for as long as it likes (issue #157 proposed a request
   start and a request complete timeout; 0.55.0 has neither). Headers that never complete never reach the app, so no
   ASGI middleware can answer them. Reproduce:

       uvicorn app:app --timeout-keep-alive 1 &
       python -c "import socket, time; s = socket.create_connection(('127.0.0.1', 8000));
       s.send(b'POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 200\\r\\n\\r\\n{'); time.sleep(600)"

   The connection stays open for the ten minutes and the app's `receive()` waits as long. Behind load shedding that
   counted requests in progress, 120 such connections had every other client answered 503.

2. A response leaves in as many writes as the app sends messages: its headers on `http.response.start`, then each
   `http.response.body`. A server killed between two writes has sent part of a response: headers without a body (a
   load balancer cannot retry it elsewhere), or part of a body. BentoML answers its services' calls with one message
   per pickle buffer (`IterableResponse`): a model service's grade for one wine left as 334 bytes (headers and 118
   bytes of pickle), then 8 bytes (the float64), and a model service SIGKILLed between the two gave its caller
   `ClientPayloadError: Response payload is not completed (received 118 of 126 bytes)`. Reproduce: an app that
   sends `http.response.start`, sleeps, then sends its body; a client sees the headers during the sleep.

What this module does, in subclasses of uvicorn's `HttpToolsProtocol` (what `http="auto"` picks where httptools is
installed, as in development and in the bento's image) and `H11Protocol` (where it is not): a request's headers
must arrive within `read_timeout_s` of its first byte (of the connection's opening, for its first request), and its
body may not pause for longer; otherwise it gets 408 and the connection closes (a connection that never sent a byte
is closed without an answer). While uvicorn itself has stopped reading (back-pressure, pipelining) the clock stops.
The app is entered only once a request's body has arrived (or BUFFER_LIMIT of it), so that a body still on the wire
costs nothing in BentoML's middleware (tracing, metrics, timeout: about 0.5 ms of CPU per request). A response is
held until it is complete and written at once, unless it is streamed (no Content-Length: its headers leave with its
first chunk, then chunks as they come) or passes HOLD_LIMIT bytes.

How it is chosen: BentoML's worker (_bentoml_impl/worker/service.py) builds `uvicorn.Config` without `http=`, and
neither BentoML's configuration nor uvicorn's `Config` reads it from anywhere else, so `apply()` points the name
`auto` in `uvicorn.config.HTTP_PROTOCOLS` (how `Config.load` resolves `http="auto"`) at `Protocol`, our subclass of
the class `auto` picks. That entry is the only thing of uvicorn's this module changes; `check()` refuses to start
when what it relies on has changed, and tests/unit/test_http_protocol.py fails when upstream fixes either issue
(then this module should go).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
from typing import Any

import h11
import uvicorn.config
from uvicorn.protocols.http import h11_impl
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from wine_quality.guard import App, Receive, Scope, Send, replay

WRITTEN_FOR = "0.55.0"
UPSTREAM_AUTO = "uvicorn.protocols.http.auto:AutoHTTPProtocol"
OURS = f"{__name__}:Protocol"
HOLD_LIMIT = 256 * 1024  # past what a socket takes at once the kernel splits a write anyway
BUFFER_LIMIT = 64 * 1024  # the unread body at which uvicorn pauses reading: past it, the app reads the rest itself
IDLE, HEADERS, BODY = "idle", "headers", "body"  # what a connection waits for; None: nothing (its request is whole)
logger = logging.getLogger("uvicorn.error")


class _Held:
    """Stands in for a connection's transport while a response is held: keeps its writes until `flush`."""

    def __init__(self, transport: asyncio.Transport, cycle: Any, streamed: bool) -> None:
        self.transport, self.cycle, self.streamed = transport, cycle, streamed
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))
        self.size += len(data)

    def flush(self) -> None:
        if self.parts:
            self.transport.write(b"".join(self.parts))
            self.parts.clear()

    def close(self) -> None:
        # uvicorn closes after a complete response without keep-alive (send it), or after the app failed mid-response
        # (drop it: no answer at all is what a client or a balancer can retry)
        if self.cycle.response_complete:
            self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _hold_response(cycle: Any) -> None:
    """Make this request's response leave in one write (see the module's docstring for when it does not)."""
    upstream = cycle.send

    async def send(message: Any) -> None:
        held: _Held | None = cycle.transport if isinstance(cycle.transport, _Held) else None
        if held is None and message["type"] == "http.response.start" and not cycle.response_started:
            streamed = all(name.lower() != b"content-length" for name, _ in message.get("headers", ()))
            cycle.transport = held = _Held(cycle.transport, cycle, streamed)
        if held is None:
            await upstream(message)
            return
        try:
            await upstream(message)
        except BaseException:
            cycle.transport = held.transport  # uvicorn closes the connection: what was held never leaves
            raise
        if message["type"] == "http.response.start":
            return
        if cycle.response_complete or cycle.disconnected or held.streamed or held.size >= HOLD_LIMIT:
            cycle.transport = held.transport
            if not cycle.disconnected:
                held.flush()

    cycle.send = send  # what run_asgi hands the app, and what its own 500 goes through


def _body_first(app: App) -> App:
    """The app, entered once the request's body has arrived (or BUFFER_LIMIT of it)."""

    async def body_first(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"expect" for name, _ in scope["headers"]):
            await app(scope, receive, send)  # 100-continue: the app may refuse the body before it is sent
            return
        parts, size, more = [], 0, True
        while more and size < BUFFER_LIMIT:
            message = await receive()
            if message["type"] != "http.request":
                return  # gone, or answered 408 by the read timeout: the app never hears of it
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            more = message.get("more_body", False)
        await app(scope, replay(b"".join(parts), receive, more), send)

    return body_first


class _ReadTimeouts(asyncio.Protocol):
    """The read timeouts, for either implementation: its subclass says what the connection waits for (`_wait`)."""

    read_timeout_s = 10.0  # set by apply()
    _timer: asyncio.TimerHandle | None = None
    _waiting_for: str | None = None
    _since = 0.0  # when what the connection waits for began to be awaited, or last arrived (a body)
    app: Any  # this and the rest are uvicorn's protocol's
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    flow: FlowControl
    cycle: Any
    client: tuple[str, int] | None
    server_state: ServerState

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # uvicorn's protocol, next in line
        self.app = _body_first(self.app)
        self._wait(IDLE)

    def connection_lost(self, exc: Exception | None) -> None:
        self._wait(None)
        super().connection_lost(exc)

    def _wait(self, what: str | None) -> None:
        """Start waiting for `what` now (None: for nothing)."""
        self._waiting_for, self._since = what, self.loop.time()
        if what is None and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        elif what is not None and self._timer is None:
            self._timer = self.loop.call_at(self._since + self.read_timeout_s, self._check)

    def _begin_request(self) -> None:
        """A request's first bytes: on a kept-alive connection its clock starts now; a new connection's first request
        counts from the connection's opening."""
        if self._waiting_for is None:
            self._wait(HEADERS)
        elif self._waiting_for == IDLE:
            self._waiting_for = HEADERS

    def _check(self) -> None:
        self._timer = None
        if self._waiting_for is None or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused:  # uvicorn stopped reading, not the client
            self._since = now
        due = self._since + self.read_timeout_s
        if now < due:
            self._timer = self.loop.call_at(due, self._check)
            return
        self._timed_out(self._waiting_for)

    def _queued(self) -> bool:
        """Whether the request being read waits behind another one's response (pipelining)."""
        return False

    def _timed_out(self, what: str) -> None:
        """408 and close, where no other response is on its way on this connection; else close after it."""
        self._waiting_for = None
        cycle = self.cycle
        if what == IDLE:
            self.transport.close()
        elif (what == HEADERS and (cycle is None or cycle.response_complete)) or (
            what == BODY and not cycle.response_started and not self._queued()
        ):
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True  # the app's receive() says so, and what it sends goes nowhere
                cycle.message_event.set()
            self._answer_408(what)
        elif cycle.response_complete:  # answered before its body arrived (413, 401): nothing left to say
            self.transport.close()
        else:  # a response is on its way: the connection closes once it has left
            cycle.keep_alive = False
        who = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
        logger.info("%s - the request's %s did not arrive within %s s", who, what, self.read_timeout_s)

    def _answer_408(self, what: str) -> None:
        body = json.dumps({"error": f"the request's {what} did not arrive within {self.read_timeout_s} s"}).encode()
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\n" + head + b"\r\n" + body)
        self.transport.close()


class H11(_ReadTimeouts, H11Protocol):
    """uvicorn's h11 protocol with read timeouts and one write per response; h11's state says what it waits for."""

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        new_request = self.cycle is not before
        if new_request:
            _hold_response(self.cycle)
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if new_request or self._waiting_for != BODY:
                self._wait(BODY)
            self._since = self.loop.time()  # handle_events runs when bytes arrive
        elif state is h11.IDLE:
            if self.conn.trailing_data[0]:  # part of the next request's headers
                self._begin_request()
        else:  # the request is whole (DONE, MUST_CLOSE), or there is no more to read (ERROR, CLOSED, upgraded)
            self._wait(None)


if AutoHTTPProtocol is H11Protocol:  # httptools is not installed
    Protocol: type[asyncio.Protocol] = H11
else:
    from uvicorn.protocols.http import httptools_impl

    class HttpTools(_ReadTimeouts, httptools_impl.HttpToolsProtocol):
        """uvicorn's httptools protocol with read timeouts and one write per response; the parser's callbacks say
        what it waits for."""

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._begin_request()

        def on_headers_complete(self) -> None:
            before = self.cycle
            super().on_headers_complete()
            if self.cycle is before:  # upgraded (WebSocket): no request of ours to time
                self._wait(None)
                return
            _hold_response(self.cycle)
            self._wait(BODY)

        def on_body(self, body: bytes) -> None:
            self._since = self.loop.time()
            super().on_body(body)

        def on_message_complete(self) -> None:
            self._wait(None)
            super().on_message_complete()

        def _queued(self) -> bool:
            return bool(self.pipeline)

    Protocol = HttpTools

PROTOCOL_SETS = ("loop", "cycle", "flow", "transport", "server_state", "client")
CYCLE_SETS = ("transport", "message_event", "disconnected", "keep_alive", "response_started", "response_complete")


def _unset(cls: type, names: tuple[str, ...]) -> list[str]:
    """Which of these attributes `cls.__init__` no longer sets."""
    code = cls.__init__.__code__  # type: ignore[misc]
    return [f"{cls.__module__}.{cls.__name__} sets no {name}" for name in names if name not in code.co_names]


def check() -> None:
    """Raise, naming uvicorn's version, if what this module relies on is not there as it expects."""
    problems = [f"http='auto' picks {AutoHTTPProtocol.__name__}"] if AutoHTTPProtocol not in Protocol.__mro__ else []
    if uvicorn.config.HTTP_PROTOCOLS.get("auto") not in (UPSTREAM_AUTO, OURS):
        problems.append(f"uvicorn.config.HTTP_PROTOCOLS['auto'] is {uvicorn.config.HTTP_PROTOCOLS.get('auto')!r}")
    # each implementation's protocol: its request-response cycle, the methods we extend, what else we read
    hooks: dict[type, tuple[type, tuple[str, ...], tuple[str, ...]]] = {
        H11Protocol: (h11_impl.RequestResponseCycle, ("handle_events",), ("conn",)),
    }
    if Protocol is not H11:
        hooks[httptools_impl.HttpToolsProtocol] = (
            httptools_impl.RequestResponseCycle,
            ("on_message_begin", "on_headers_complete", "on_body", "on_message_complete"),
            ("pipeline",),
        )
    for protocol, (cycle, methods, sets) in hooks.items():
        names = ("connection_made", "connection_lost", *methods)
        problems += [f"{protocol.__name__} has no {name}" for name in names if not hasattr(protocol, name)]
        problems += _unset(protocol, (*PROTOCOL_SETS, *sets)) + _unset(cycle, CYCLE_SETS)
        send = getattr(cycle, "send", None)  # what one write per response relies on: it writes to self.transport
        if send is None or "transport" not in send.__code__.co_names:
            problems.append(f"{cycle.__module__}.{cycle.__name__}.send does not write to self.transport")
    problems += _unset(FlowControl, ("read_paused",))
    if problems:
        version = importlib.metadata.version("uvicorn")
        raise RuntimeError(f"wine_quality.http_protocol needs uvicorn {WRITTEN_FOR}, found {version}: {problems[0]}")


def apply(read_timeout_s: float) -> None:
    """Check uvicorn, then make `http="auto"` (what BentoML's worker asks for) pick `Protocol` (idempotent)."""
    check()
    _ReadTimeouts.read_timeout_s = read_timeout_s
    uvicorn.config.HTTP_PROTOCOLS["auto"] = OURS
