"""A response leaves uvicorn in one write with the fix, in two without (wine_quality/one_write.py).

A real uvicorn server on a free port runs an app that pauses between its response's start and its body, the moment
a killed replica would die at; a raw socket reads what has arrived meanwhile. The pause lasts until the client has
looked, so no timing decides the outcome.
"""

from __future__ import annotations

import asyncio
import importlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from wine_quality import one_write

BODY = b'{"quality": 5.7}'
IMPLEMENTATIONS = {"httptools": "uvicorn.protocols.http.httptools_impl", "h11": "uvicorn.protocols.http.h11_impl"}
WAIT_S = 10.0


class PausingApp:
    """Starts its response, then sends the body only once the client has looked at what arrived meanwhile."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.looked = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        self.started.set()
        await asyncio.to_thread(self.looked.wait, WAIT_S)
        await send({"type": "http.response.body", "body": BODY})


@contextmanager
def serving(app: PausingApp, http: str) -> Iterator[int]:
    """A uvicorn server with that HTTP implementation on a free port, stopped at the end."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=http, lifespan="off", log_config=None, access_log=False)
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


def first_read(http: str, wait_s: float) -> tuple[bytes, bytes]:
    """What a client has received once the app has started its response (waiting up to wait_s for anything), and
    all it has received at the end."""
    app = PausingApp()
    with serving(app, http) as port, socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert app.started.wait(WAIT_S), "the app did not start its response"
        readable, _, _ = select.select([client], [], [], wait_s)
        early = client.recv(65536) if readable else b""
        app.looked.set()
        whole = early
        while chunk := client.recv(65536):
            whole += chunk
    return early, whole


@pytest.mark.parametrize("http", sorted(IMPLEMENTATIONS))
def test_upstream_uvicorn_still_sends_headers_before_the_body(http: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the fix the headers are out while the body is not. When this fails, uvicorn writes a response at
    once: delete wine_quality/one_write.py and this test."""
    one_write.apply()
    module = importlib.import_module(IMPLEMENTATIONS[http])
    monkeypatch.setattr(module, "RequestResponseCycle", one_write.UPSTREAM[IMPLEMENTATIONS[http]])
    early, whole = first_read(http, wait_s=WAIT_S)  # what upstream wrote is there at once
    assert early.startswith(b"HTTP/1.1 200") and early.endswith(b"\r\n\r\n") and BODY not in early
    assert whole.endswith(BODY)


@pytest.mark.parametrize("http", sorted(IMPLEMENTATIONS))
def test_with_the_fix_headers_never_leave_without_the_body(http: str) -> None:
    """With the fix nothing has left while the app pauses; then headers and body arrive whole."""
    one_write.apply()
    early, whole = first_read(http, wait_s=0.5)  # headers written early would be there at once
    assert early == b""
    assert whole.startswith(b"HTTP/1.1 200") and whole.endswith(b"\r\n\r\n" + BODY)
    assert b"content-length: %d" % len(BODY) in whole.lower()
