"""The front door as ASGI middleware: the API key, the body limit, JSON only, and load shedding."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wine_quality.guard import Guard

JSON_ROUTES = frozenset({"/predict"})


class App:
    """The service behind the guard: answers 200 after reading the body; with `hold`, predictions first wait for
    `release` (probes never wait)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.release = asyncio.Event()
        self.hold = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        if self.hold and scope["path"] == "/predict":
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def call(
    guard: Guard,
    path: str,
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
    method: str = "POST",
    chunked: bool = False,
) -> tuple[int, dict[str, str]]:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if not chunked:
        raw.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": method, "path": path, "headers": raw}
    parts = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await guard(scope, receive, send)
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


class Clock:
    """The guard's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def guard(
    app: App,
    api_key: str | None = None,
    max_body: int = 10_000,
    max_work: int = 4,
    shed_after_s: float = 0.5,
    clock: Clock | None = None,
) -> Guard:
    return Guard(
        app,
        api_key=api_key,
        max_body_bytes=max_body,
        max_work=max_work,
        json_routes=JSON_ROUTES,
        shed_after_s=shed_after_s,
        clock=clock or Clock(),
    )


def test_the_key_is_needed_everywhere_but_probes_documents_and_the_page() -> None:
    """With a key set, a route without `Bearer <key>` gets 401 with WWW-Authenticate; probes and documents do not."""
    g = guard(App(), api_key="s3cret")

    async def run() -> dict[str, int]:
        return {
            "none": (await call(g, "/predict"))[0],
            "wrong": (await call(g, "/predict", headers={"Authorization": "Bearer nope"}))[0],
            "right": (await call(g, "/predict", headers={"Authorization": "Bearer s3cret"}))[0],
            "models": (await call(g, "/models", method="GET"))[0],
            "readyz": (await call(g, "/readyz", method="GET"))[0],
            "docs": (await call(g, "/docs.json", method="GET"))[0],
            "page": (await call(g, "/ui/app.js", method="GET"))[0],
        }

    assert asyncio.run(run()) == {
        "none": 401,
        "wrong": 401,
        "right": 200,
        "models": 401,
        "readyz": 200,
        "docs": 200,
        "page": 200,
    }


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_gets_413_and_one_under_it_arrives_whole(chunked: bool) -> None:
    """Declared or chunked, a body over the limit never reaches the service; a smaller one arrives unchanged."""
    app = App()
    g = guard(app, max_body=5000)
    small, large = b"x" * 4999, b"y" * 5001
    assert asyncio.run(call(g, "/predict", small, chunked=chunked))[0] == 200
    assert asyncio.run(call(g, "/predict", large, chunked=chunked))[0] == 413
    assert app.bodies == [small]


def test_json_apis_take_json_only() -> None:
    """A multipart or text body to a JSON API gets 415; JSON (with a charset, or +json) and no type pass."""
    g = guard(App())

    async def status(content_type: str | None) -> int:
        return (await call(g, "/predict", headers={"Content-Type": content_type} if content_type else {}))[0]

    got = {
        t: asyncio.run(status(t))
        for t in (
            "multipart/form-data",
            "text/plain",
            "application/json; charset=utf-8",
            "application/problem+json",
            None,
        )
    }
    assert got == {
        "multipart/form-data": 415,
        "text/plain": 415,
        "application/json; charset=utf-8": 200,
        "application/problem+json": 200,
        None: 200,
    }


def test_a_queue_that_stands_past_the_grace_is_shed_with_retry_after_and_admitted_again_once_drained() -> None:
    """4 units allowed, 4 requests held: a fifth is a burst and is admitted; once work has stood over the limit for
    the grace (0.5 s), the next gets 503 + Retry-After at once, probes still pass; when the held ones finish, requests
    are admitted again, and a new burst gets a new grace."""
    app, clock = App(), Clock()
    app.hold = True
    g = guard(app, max_work=4, clock=clock)

    async def run() -> tuple[int, int, int, str | None, int, int, int, int]:
        held = [asyncio.create_task(call(g, "/predict")) for _ in range(4)]
        await asyncio.sleep(0.01)
        burst = asyncio.create_task(call(g, "/predict"))  # over the limit, within the grace
        await asyncio.sleep(0.01)
        in_burst = g.work
        clock.now += 0.4
        still = asyncio.create_task(call(g, "/predict"))  # 0.4 s: still a burst
        await asyncio.sleep(0.01)
        clock.now += 0.2
        shed, headers = await call(g, "/predict")  # 0.6 s over the limit: overload
        probe = (await call(g, "/readyz", method="GET"))[0]
        app.release.set()
        await asyncio.gather(*held, burst, still)
        app.hold = False
        after = (await call(g, "/predict"))[0]
        return in_burst, burst.result()[0], shed, headers.get("retry-after"), probe, still.result()[0], after, g.work

    assert asyncio.run(run()) == (5, 200, 503, "1", 200, 200, 200, 0)
    assert g.queued_since is None


def test_a_burst_past_four_times_the_limit_is_shed_at_once() -> None:
    """2 units allowed: 8 held requests are a burst (four times the limit), the ninth is shed without waiting."""
    app = App()
    app.hold = True
    g = guard(app, max_work=2)

    async def run() -> tuple[int, int]:
        held = [asyncio.create_task(call(g, "/predict")) for _ in range(8)]
        await asyncio.sleep(0.01)
        in_use = g.work
        ninth = (await call(g, "/predict"))[0]
        app.release.set()
        await asyncio.gather(*held)
        return in_use, ninth

    assert asyncio.run(run()) == (8, 503)


def test_a_large_body_weighs_more_than_a_small_one() -> None:
    """With 4 units allowed, no grace and one small request held, a 128 KiB body (1 + 4 units) is shed, a small one
    is not."""
    app = App()
    app.hold = True
    g = guard(app, max_work=4, max_body=200_000, shed_after_s=0.0)

    async def run() -> tuple[int, int, int]:
        held = asyncio.create_task(call(g, "/predict"))
        await asyncio.sleep(0.01)
        heavy = (await call(g, "/predict", b"x" * (4 * 32 * 1024)))[0]
        light = asyncio.create_task(call(g, "/predict"))
        await asyncio.sleep(0.01)
        in_use = g.work
        app.release.set()
        await asyncio.gather(held, light)
        return heavy, in_use, light.result()[0]

    assert asyncio.run(run()) == (503, 2, 200)


def test_a_request_holds_no_work_until_its_body_has_arrived() -> None:
    """A body still on the wire is not work: the request counts once the last of its body is in. A client gone (or
    timed out by the server) before then holds nothing, reaches no route and is sent nothing."""
    app = App()
    app.hold = True
    g = guard(app)
    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": [(b"content-length", b"2")]}
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    def client(then: str) -> tuple[asyncio.Event, Any]:
        rest = asyncio.Event()
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": b"{", "more_body": True},
            {"type": "http.request", "body": b"}", "more_body": False}
            if then == "rest"
            else {"type": "http.disconnect"},
        ]

        async def receive() -> dict[str, Any]:
            if len(messages) == 1:
                await rest.wait()
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        return rest, receive

    async def run() -> tuple[int, int, int, int]:
        rest, receive = client("rest")
        task = asyncio.create_task(g(scope, receive, send))
        await asyncio.sleep(0.01)
        on_the_wire = g.work
        rest.set()
        await asyncio.sleep(0.01)
        arrived = g.work
        app.release.set()
        await task
        gone, receive = client("gone")
        gone.set()
        await g(scope, receive, send)
        return on_the_wire, arrived, g.work, len(sent)

    assert asyncio.run(run()) == (0, 1, 0, 2)  # the two messages are the first request's answer
    assert app.bodies == [b"{}"]
