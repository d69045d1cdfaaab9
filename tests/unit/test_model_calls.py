"""A model service that dies while answering costs the entry a retry, not an error: each way its answer can break,
on a real socket, with BentoML's own dependency client."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import bentoml
import numpy as np
import pytest
import uvicorn
from _bentoml_impl.client import RemoteProxy
from bentoml.exceptions import BentoMLException, ServiceUnavailable

from harness.ports import free_port
from wine_quality.model_calls import ModelTimeout, until_answered

ROWS = np.array([[1.0, 2.0], [3.0, 4.0]])


@bentoml.service
class Summer:
    """A stand-in model service: one array API, as the real ones have."""

    @bentoml.api
    async def predict(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[1] != 2:
            raise bentoml.exceptions.InvalidArgument("two columns please")
        return rows.sum(axis=1)


@pytest.fixture(scope="module")
def model_service() -> Iterator[int]:
    """The stand-in served by a real uvicorn in a thread; yields its port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(Summer.to_asgi(is_main=False), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    yield port
    server.should_exit = True
    thread.join(10)


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    """One whole HTTP answer with a Content-Length body, as the model service sent it."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


@dataclass
class DyingProxy:
    """Stands between the client and the model service; its first connection dies at `point`, later ones pass."""

    upstream: int
    point: str  # "reset" (request unread), "headers" (no body), "truncated" (body cut short)
    port: int = field(default_factory=free_port)
    connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        first = self.connections == 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        try:
            if first and self.point == "reset":
                await reader.read(1)
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()  # RST: as from a process that died with the request unread
                return
            while request := await reader.read(65536):
                up_writer.write(request)
                await up_writer.drain()
                await asyncio.sleep(0.01)  # the rest of a request sent in pieces
                answer = await _read_answer(up_reader)
                if first:
                    head_end = answer.index(b"\r\n\r\n") + 4
                    writer.write(answer[:head_end] if self.point == "headers" else answer[:-8])
                    await writer.drain()
                    writer.transport.abort()
                    return
                writer.write(answer)
                await writer.drain()
        finally:
            up_writer.close()
            writer.close()


@contextlib.asynccontextmanager
async def _client(port: int) -> AsyncIterator[RemoteProxy[Summer]]:
    """What `bentoml.depends` makes for a model service in another process, set up as the entry's start-up does."""
    proxy = RemoteProxy(f"http://127.0.0.1:{port}", service=Summer, media_type="application/vnd.bentoml+pickle")
    await proxy.__aenter__()
    try:
        yield proxy
    finally:
        await proxy.close()


@pytest.mark.parametrize("point", ["reset", "headers", "truncated"])
def test_an_answer_broken_by_a_dying_service_is_asked_again(model_service: int, point: str) -> None:
    """A connection reset before the answer, headers without a body, a body cut short: the call is repeated on a
    new connection and returns the service's real answer."""

    async def scenario() -> tuple[np.ndarray, int]:
        proxy = DyingProxy(model_service, point)
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", proxy.port)
        async with _client(proxy.port) as client:
            answer = await until_answered(client.to_async.predict, 10, "stand-in")(ROWS)
        server.close()
        return answer, proxy.connections

    answer, connections = asyncio.run(scenario())
    assert answer.tolist() == [3.0, 7.0]
    assert connections == 2  # it broke once, and the second try was answered


def test_a_refused_connection_is_retried_until_the_service_listens(model_service: int) -> None:
    """Nothing listens (the supervisor is restarting the service): the call waits, and is answered once it does."""

    async def scenario() -> tuple[np.ndarray, int]:
        proxy = DyingProxy(model_service, "none")
        proxy.connections = 1  # every connection passes
        tries = 0
        async with _client(proxy.port) as client:
            call = client.to_async.predict

            async def counted(rows: np.ndarray) -> np.ndarray:
                nonlocal tries
                tries += 1
                return np.asarray(await call(rows))

            async def listen_later() -> asyncio.Server:
                while tries < 3:
                    await asyncio.sleep(0.01)
                return await asyncio.start_server(proxy.handle, "127.0.0.1", proxy.port)

            answer, server = await asyncio.gather(until_answered(counted, 10, "stand-in")(ROWS), listen_later())
        server.close()
        return answer, tries

    answer, tries = asyncio.run(scenario())
    assert answer.tolist() == [3.0, 7.0]
    assert tries >= 4  # refused three times at least, then answered


def test_a_service_that_stays_down_is_a_503_at_the_deadline() -> None:
    """Past the deadline the caller gets ServiceUnavailable (the entry's 503), naming the service and the cause."""

    async def scenario() -> None:
        async with _client(free_port()) as client:
            await until_answered(client.to_async.predict, 0.3, "stand-in model service")(ROWS)

    with pytest.raises(ServiceUnavailable, match="stand-in model service is down: ClientConnectorError"):
        asyncio.run(scenario())


def test_an_answer_the_service_gave_is_not_retried(model_service: int) -> None:
    """A refusal by the model service itself (a 4xx) is its answer: passed on at once, not repeated."""
    tries = 0

    async def scenario() -> None:
        nonlocal tries
        async with _client(model_service) as client:

            async def counted(rows: np.ndarray) -> np.ndarray:
                nonlocal tries
                tries += 1
                return np.asarray(await client.to_async.predict(rows))

            await until_answered(counted, 10, "stand-in")(np.ones((2, 3)))

    with pytest.raises(BentoMLException, match="two columns"):
        asyncio.run(scenario())
    assert tries == 1


def test_a_call_that_outlasts_its_timeout_is_a_504_at_once() -> None:
    """A call whose client timed out (the request's time is up) is not repeated: it is the request's 504
    (ModelTimeout), not a 500 and not a retry."""
    tries = 0

    async def times_out(rows: np.ndarray) -> np.ndarray:
        nonlocal tries
        tries += 1
        raise TimeoutError

    with pytest.raises(ModelTimeout, match="slow stand-in did not answer within 10 seconds") as raised:
        asyncio.run(until_answered(times_out, 10, "slow stand-in")(ROWS))
    assert tries == 1 and raised.value.error_code == 504
