"""Each response leaves the server in one write: its headers never go out without its body.

Uvicorn (0.54, the server BentoML runs) writes a response's status line and headers to the socket as soon as the app
sends `http.response.start`, and its body in a second write. A replica killed between the two (SIGKILL, the OOM
killer, a node lost) has sent a complete set of headers and no body. A load balancer has by then passed the headers
on, so it cannot retry the request on another replica, and the client gets a broken response: this is the one
request `tests/e2e/test_replicas.py` saw fail in about 7,000 with a replica killed under load.

The fix holds what a response writes from its start until the end of its first body message, and writes it at once:
a response of one body message (every response this service makes) is one write, so a killed replica either sent
a whole response (up to what the socket takes at once; a few hundred KiB here) or nothing, which the balancer
retries on another replica. It also saves a system call per response. A streamed response's headers go out with its
first chunk. It applies to uvicorn's `httptools` and `h11` implementations (the first is what `auto` picks when
`httptools` is installed, as it is here); tests/unit/test_one_write.py fails when upstream no longer splits a
response (then this module should go) or the fix stops applying.
"""

from __future__ import annotations

import importlib
from typing import Any

IMPLEMENTATIONS = ("uvicorn.protocols.http.httptools_impl", "uvicorn.protocols.http.h11_impl")
UPSTREAM: dict[str, type] = {}


class _Held:
    """Stands in for a connection's transport while a response starts: keeps its writes until `flush`."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))

    def flush(self) -> None:
        if self.parts:
            self.transport.write(b"".join(self.parts))
            self.parts.clear()

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _one_write(upstream: Any) -> type:
    """A subclass of one of uvicorn's request-response cycles whose response start waits for its first body."""

    class OneWriteCycle(upstream):  # type: ignore[misc]
        transport: Any  # the connection's, or a _Held one while a response starts

        async def send(self, message: Any) -> None:
            if message["type"] == "http.response.start" and not self.response_started:
                held = _Held(self.transport)
                self.transport = held
                try:
                    await super().send(message)
                except BaseException:
                    self.transport = held.transport
                    raise
                return
            try:
                await super().send(message)
            finally:
                held = self.transport
                if isinstance(held, _Held):
                    self.transport = held.transport
                    if not self.disconnected:
                        held.flush()

    OneWriteCycle.__qualname__ = OneWriteCycle.__name__ = f"OneWrite{upstream.__name__}"
    return OneWriteCycle


def apply() -> None:
    """Make uvicorn's HTTP/1.1 implementations write each response at once (idempotent)."""
    for name in IMPLEMENTATIONS:
        try:
            module = importlib.import_module(name)
        except ImportError:  # h11 or httptools not installed: that implementation cannot be picked
            continue
        if name not in UPSTREAM:
            UPSTREAM[name] = getattr(module, "RequestResponseCycle")  # noqa: B009 (mypy sees no such attribute)
            setattr(module, "RequestResponseCycle", _one_write(UPSTREAM[name]))  # noqa: B010
