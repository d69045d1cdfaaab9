"""uvicorn with and without wine_quality/http_protocol.py, over real sockets: read timeouts, one write per response.

A real uvicorn server runs in a thread on a free port and raw sockets play the clients. Apps that pause mid-response
wait until the client has looked, and stalled requests are awaited with a deadline, so no timing decides an outcome
(but the one test that sends a body slowly on purpose, with pauses a tenth of the timeout).
"""

from __future__ import annotations

import asyncio
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
import uvicorn.config
from uvicorn.protocols.http import h11_impl

from wine_quality import http_protocol
from wine_quality.guard import Guard
from wine_quality.settings import PROJECT_ROOT

WAIT_S = 10.0  # the most any test waits for something that should happen
TIMEOUT_S = 0.5  # the read timeout of the servers under test
BODY = b'{"quality": 5.7}'
POST = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
STALLS = {
    "headers": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty",
    "body": POST % 200 + b"\r\n{",
}


OURS = {"httptools": http_protocol.HttpTools, "h11": http_protocol.H11}


@pytest.fixture(params=sorted(OURS))
def http(request: pytest.FixtureRequest) -> str:
    """Each of uvicorn's HTTP/1.1 implementations: httptools (development and the image), h11 (where it is absent)."""
    return str(request.param)


def protocol(http: str, read_timeout_s: float) -> type[Any]:
    """Our protocol for that implementation, with its own read timeout (apply() sets the one the service uses)."""
    return type("TimedProtocol", (OURS[http],), {"read_timeout_s": read_timeout_s})


@contextmanager
def serving(app: Any, http: Any, **options: Any) -> Iterator[int]:
    """A uvicorn server with that protocol on a free port, stopped at the end."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, http=http, lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=1, **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        sock.close()


def connect(port: int, data: bytes = b"") -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    client.sendall(data)
    return client


def until_closed(client: socket.socket, wait_s: float = WAIT_S) -> bytes | None:
    """All the server sent before it closed the connection, or None if it is still open after wait_s."""
    received, deadline = b"", time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        if select.select([client], [], [], left)[0]:
            try:
                chunk = client.recv(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk
    return None


def status(answer: bytes | None) -> int | None:
    return int(answer.split(b" ", 2)[1]) if answer else None


def post(port: int, body: bytes = BODY) -> int | None:
    """An ordinary request's status."""
    with connect(port, POST % len(body) + b"Connection: close\r\n\r\n" + body) as client:
        return status(until_closed(client))


class PausingApp:
    """Starts its response and sends all its body but the last piece, then the rest only once the client has looked
    at what arrived meanwhile. `pieces=2` is how BentoML answers its services' calls: one message per pickle buffer."""

    def __init__(self, pieces: int = 1, chunked: bool = False) -> None:
        self.pieces, self.chunked = pieces, chunked
        self.started = threading.Event()
        self.looked = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"application/json")]
        if not self.chunked:
            headers.append((b"content-length", str(len(BODY)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        cut = len(BODY) * (self.pieces - 1) // self.pieces
        if cut:
            await send({"type": "http.response.body", "body": BODY[:cut], "more_body": True})
        self.started.set()
        await asyncio.to_thread(self.looked.wait, WAIT_S)
        await send({"type": "http.response.body", "body": BODY[cut:]})


def first_read(app: Any, http: Any, wait_s: float) -> tuple[bytes, bytes]:
    """What a client has received once the app has paused (waiting up to wait_s for anything), and all it has
    received at the end."""
    with serving(app, http) as port, connect(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") as c:
        assert app.started.wait(WAIT_S), "the app did not start its response"
        readable, _, _ = select.select([c], [], [], wait_s)
        early = c.recv(65536) if readable else b""
        app.looked.set()
        whole = early + (until_closed(c) or b"")
    return early, whole


class Answering:
    """Reads the body and answers 200, noting the work the guard in front holds meanwhile; with `release`, it answers
    only once that is set."""

    def __init__(self) -> None:
        self.guard: Guard | None = None
        self.work_seen: list[int] = []
        self.release: threading.Event | None = None
        self.entered = 0  # requests that reached the server's app (the guard)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        if self.guard is not None:
            self.work_seen.append(self.guard.work)
        if self.release is not None:
            await asyncio.to_thread(self.release.wait, WAIT_S)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})


@contextmanager
def guarded(http: str, read_timeout_s: float = TIMEOUT_S) -> Iterator[tuple[int, Answering]]:
    """A server with our protocol and the guard in front of an Answering app."""
    app = Answering()
    guard = app.guard = Guard(app, api_key=None, max_body_bytes=2**20, max_work=4, json_routes=frozenset({"/predict"}))

    async def entering(scope: Any, receive: Any, send: Any) -> None:
        app.entered += scope["type"] == "http"
        await guard(scope, receive, send)

    with serving(entering, protocol(http, read_timeout_s)) as port:
        yield port, app


def test_upstream_uvicorn_still_writes_a_response_as_its_messages_come(http: str) -> None:
    """Without the fix the headers are out while the body is not. When this fails, uvicorn writes a response at once:
    delete the one-write half of wine_quality/http_protocol.py and this test."""
    early, whole = first_read(PausingApp(), http, wait_s=WAIT_S)  # what upstream wrote is there at once
    assert early.startswith(b"HTTP/1.1 200") and early.endswith(b"\r\n\r\n") and BODY not in early
    assert whole.endswith(BODY)


def test_upstream_uvicorn_still_waits_for_a_stalled_request_forever(http: str) -> None:
    """Without the fix, partial headers and a partial body keep their connection open well past the keep-alive
    timeout (1 s). When this fails, uvicorn times out reads itself: delete the read timeouts of
    wine_quality/http_protocol.py and this test."""
    with serving(Answering(), http, timeout_keep_alive=1) as port:
        clients = [connect(port, stall) for stall in STALLS.values()]
        time.sleep(3.0)
        assert [until_closed(c, wait_s=0.1) for c in clients] == [None, None]
        for c in clients:
            c.close()


@pytest.mark.parametrize("pieces", [1, 2])
def test_with_the_fix_a_response_leaves_whole(http: str, pieces: int) -> None:
    """Nothing has left while the app pauses, between its response's start and its body or between two pieces of
    its body (how BentoML answers a model call: 118 bytes of pickle, then an 8-byte buffer); then it arrives whole."""
    early, whole = first_read(PausingApp(pieces), protocol(http, WAIT_S), wait_s=0.5)  # anything written would be there
    assert early == b""
    assert whole.startswith(b"HTTP/1.1 200") and whole.endswith(b"\r\n\r\n" + BODY)
    assert b"content-length: %d" % len(BODY) in whole.lower()


def test_a_streamed_response_still_goes_out_as_it_comes(http: str) -> None:
    """A chunked response is streamed: its headers and first chunk arrive (together) while the app pauses."""
    early, whole = first_read(PausingApp(2, chunked=True), protocol(http, WAIT_S), wait_s=WAIT_S)
    assert early.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in early.lower()
    assert early.endswith(b"\r\n\r\n8\r\n" + BODY[:8] + b"\r\n")
    assert whole.endswith(BODY[8:] + b"\r\n0\r\n\r\n")


def test_stalled_headers_and_bodies_get_408_while_other_clients_are_answered(http: str) -> None:
    """Five requests stalled mid-headers and five mid-body never reach the app and hold no work in the guard:
    ordinary requests meanwhile get 200 and see only their own unit of work; at the read timeout each stalled one gets
    408 (JSON) and is closed."""
    with guarded(http, read_timeout_s=2.0) as (port, app):
        stalled = {kind: [connect(port, data) for _ in range(5)] for kind, data in STALLS.items()}
        assert [post(port) for _ in range(5)] == [200] * 5
        assert app.work_seen == [1] * 5 and app.entered == 5
        answers = {kind: [until_closed(c) for c in clients] for kind, clients in stalled.items()}
        assert {kind: {status(a) for a in got} for kind, got in answers.items()} == {"headers": {408}, "body": {408}}
        head, _, body = answers["body"][0].partition(b"\r\n\r\n")  # type: ignore[union-attr]
        assert b"content-type: application/json" in head and b"connection: close" in head
        assert body == b'{"error": "the request\'s body did not arrive within 2.0 s"}'
        assert app.guard is not None and app.guard.work == 0


def test_a_large_body_stalled_past_the_buffer_gets_408_and_holds_no_work(http: str) -> None:
    """A body larger than the protocol buffers (64 KiB) reaches the app as it comes; stalled there it holds no work
    in the guard, which is still reading it, and gets 408 at the read timeout."""
    with guarded(http) as (port, app), connect(port, POST % 200_000 + b"\r\n" + b"[" * 100_000) as client:
        deadline = time.monotonic() + WAIT_S
        while not app.entered:
            assert time.monotonic() < deadline, "the app was never entered"
            time.sleep(0.01)
        assert app.guard is not None and app.guard.work == 0
        assert status(until_closed(client)) == 408


def test_a_connection_that_never_sends_a_byte_is_closed_without_an_answer(http: str) -> None:
    """An idle new connection is closed at the read timeout; there is no request to answer."""
    with guarded(http) as (port, _), connect(port) as client:
        assert until_closed(client) == b""


def test_the_next_request_on_a_kept_alive_connection_is_timed_too(http: str) -> None:
    """After one answered request, the next request's stalled headers on the same connection get 408."""
    with guarded(http) as (port, _), connect(port, POST % len(BODY) + b"\r\n" + BODY) as client:
        first = b""
        while not first.endswith(b"\r\n\r\n{}"):
            first += client.recv(65536)
        client.sendall(STALLS["headers"])
        assert status(first) == 200 and status(until_closed(client)) == 408


def test_slow_answers_and_slow_but_steady_bodies_are_not_cut(http: str) -> None:
    """A body that keeps coming (a byte every tenth of the timeout, longer than the timeout in all) and an answer
    that takes twice the timeout: 200."""
    with guarded(http, read_timeout_s=1.0) as (port, app):
        app.release = threading.Event()
        with connect(port, POST % len(BODY) + b"Connection: close\r\n\r\n") as client:
            for byte in BODY:
                time.sleep(0.1)
                client.sendall(bytes([byte]))
            time.sleep(2.0)
            app.release.set()
            assert status(until_closed(client)) == 200


def test_apply_makes_what_bentoml_asks_for_pick_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """BentoML's worker builds uvicorn.Config with http='auto': after apply() that loads our protocol for the
    implementation uvicorn would have picked, with the read timeout given."""
    monkeypatch.setitem(uvicorn.config.HTTP_PROTOCOLS, "auto", http_protocol.UPSTREAM_AUTO)
    monkeypatch.setattr(http_protocol._ReadTimeouts, "read_timeout_s", http_protocol._ReadTimeouts.read_timeout_s)
    http_protocol.apply(3.0)
    config = uvicorn.Config(Answering(), log_config=None)
    config.load()
    assert config.http_protocol_class is http_protocol.Protocol is http_protocol.HttpTools
    assert http_protocol.Protocol.read_timeout_s == 3.0


def test_the_start_up_check_names_uvicorn_and_its_version_when_its_target_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """check() passes on this uvicorn; where `auto` names another class, or a cycle no longer sets what we read, it
    raises one line naming uvicorn, the version found and the first thing missing."""
    http_protocol.check()
    expected = r"^wine_quality.http_protocol needs uvicorn 0\.55\.0, found \d+\.\d+\.\d+: "
    monkeypatch.setitem(uvicorn.config.HTTP_PROTOCOLS, "auto", "elsewhere:Protocol")
    with pytest.raises(RuntimeError, match=expected + r".*'elsewhere:Protocol'$"):
        http_protocol.check()
    monkeypatch.undo()
    monkeypatch.setattr(h11_impl.RequestResponseCycle, "__init__", lambda self: None)
    with pytest.raises(RuntimeError, match=expected + r"uvicorn.protocols.http.h11_impl.RequestResponseCycle sets no"):
        http_protocol.check()


WITHOUT_HTTPTOOLS = """
import sys


class NoHttptools:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "httptools":
            raise ModuleNotFoundError(name)


sys.meta_path.insert(0, NoHttptools())
import uvicorn
from wine_quality import http_protocol

http_protocol.apply(5.0)
config = uvicorn.Config(lambda scope, receive, send: None, log_config=None)
config.load()
print(config.http_protocol_class.__name__)
"""


def test_without_httptools_auto_picks_our_h11_protocol() -> None:
    """Where httptools is not installed uvicorn's `auto` picks h11, and so do we: the module imports, its check passes
    and http='auto' loads our h11 protocol."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_HTTPTOOLS], capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT
    )
    assert done.stdout.strip() == "H11", done.stderr
