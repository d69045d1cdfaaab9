"""The BentoML fix this service applies: the request timeout leaves no timer behind, and still answers 504."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from bentoml._internal.server.http.traffic import TimeoutMiddleware

from wine_quality import bentoml_fixes

SCOPE = {"type": "http", "method": "POST", "path": "/predict", "headers": []}


async def quick_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def slow_app(scope: Any, receive: Any, send: Any) -> None:
    await asyncio.sleep(5)
    await quick_app(scope, receive, send)


def _serve(call: Any, app: Any, requests: int, timeout: float) -> tuple[int, list[int]]:
    """Send requests through a TimeoutMiddleware using `call`; the live timers left after them, and the statuses."""
    middleware = TimeoutMiddleware(app, timeout=timeout)
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def run() -> int:
        for _ in range(requests):
            await call(middleware, dict(SCOPE), receive, send)
        await asyncio.sleep(0.01)  # a cancelled request's own sleep is dropped once its task has seen the cancel
        gc.collect()
        return sum(isinstance(o, asyncio.TimerHandle) and not o.cancelled() for o in gc.get_objects())

    return asyncio.run(run()), statuses


def test_bentoml_s_own_middleware_still_leaks_a_timer_per_request() -> None:
    """Upstream (1.4.40) keeps one timer per request alive for the whole timeout. When this fails, BentoML fixed it:
    delete wine_quality/bentoml_fixes.py and this test."""
    timers, statuses = _serve(bentoml_fixes.UPSTREAM_CALL, quick_app, requests=50, timeout=60)
    assert statuses == [200] * 50
    assert timers >= 50


def test_the_fixed_middleware_leaves_no_timer_and_still_answers_504_on_timeout() -> None:
    """With the fix, answered requests leave no timer; a request that has not started answering in time gets 504."""
    timers, statuses = _serve(bentoml_fixes._call, quick_app, requests=50, timeout=60)
    assert statuses == [200] * 50 and timers == 0
    timers, statuses = _serve(bentoml_fixes._call, slow_app, requests=1, timeout=0.05)
    assert statuses == [504] and timers == 0


async def silent_app(scope: Any, receive: Any, send: Any) -> None:
    """Returns without answering, as our guard does when its client is gone before the body arrived."""


def _done_within_a_few_turns(call: Any) -> tuple[bool, int]:
    """Whether a request to an app that returns without answering is over after a few turns of the event loop (no
    wall-clock time), and the live timers then."""

    async def run() -> tuple[bool, int]:
        middleware = TimeoutMiddleware(silent_app, timeout=60)

        async def receive() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            raise AssertionError("nothing is sent")

        task = asyncio.ensure_future(call(middleware, dict(SCOPE), receive, send))
        for _ in range(20):
            await asyncio.sleep(0)
        timers = sum(isinstance(o, asyncio.TimerHandle) and not o.cancelled() for o in gc.get_objects())
        done = task.done()
        task.cancel()
        return done, timers

    return asyncio.run(run())


def test_bentoml_s_own_middleware_still_waits_out_the_timeout_after_a_silent_app() -> None:
    """Upstream (1.4.40) holds a request whose app returned without answering until its timeout. When this fails,
    BentoML fixed it: delete that part of the fix and this test."""
    assert _done_within_a_few_turns(bentoml_fixes.UPSTREAM_CALL) == (False, 1)


def test_the_fixed_middleware_lets_a_silent_app_go_at_once() -> None:
    """With the fix, a request whose app returned without answering is over at once, and leaves no timer."""
    assert _done_within_a_few_turns(bentoml_fixes._call) == (True, 0)


def test_apply_installs_the_fix_where_bentoml_looks_it_up() -> None:
    """After apply(), the middleware class BentoML builds its apps from runs the fixed call."""
    bentoml_fixes.apply()
    assert TimeoutMiddleware.__call__ is bentoml_fixes._call


def _schema_builds(mime_type: Any) -> int:
    """How many JSON schemas 20 responses of an array-returning API build, with this `mime_type`."""
    import numpy as np
    from _bentoml_sdk.io_models import IOMixin, IORootModel

    class Rows(IORootModel):  # what BentoML makes for `-> np.ndarray`
        root: np.ndarray

    builds = 0
    upstream = Rows.model_json_schema.__func__  # type: ignore[attr-defined]

    def counting(cls: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal builds
        builds += 1
        return upstream(cls, *args, **kwargs)

    Rows.model_json_schema = classmethod(counting)  # type: ignore[method-assign,assignment]
    saved = IOMixin.__dict__["mime_type"]
    IOMixin.mime_type = mime_type
    try:
        assert {Rows.mime_type() for _ in range(20)} == {"application/json"}
    finally:
        IOMixin.mime_type = saved
    return builds


def test_bentoml_s_own_media_type_still_builds_a_schema_per_response() -> None:
    """Upstream (1.4.40) rebuilds the output's JSON schema for every response of an array API. When this fails,
    BentoML caches it: delete fix 4 and this test."""
    assert _schema_builds(bentoml_fixes.UPSTREAM_MIME_TYPE) == 20


def test_the_media_type_is_computed_once_per_class() -> None:
    """With the fix, the schema is built once, and the media type is the same as upstream's."""
    assert _schema_builds(classmethod(bentoml_fixes._mime_type_once)) == 1
