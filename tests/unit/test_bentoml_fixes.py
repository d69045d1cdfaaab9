"""The patches of BentoML this service applies: each upstream defect still there (else its patch should go), each
patch doing its job, and the start-up check that refuses a BentoML whose targets changed."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Annotated, Any

import bentoml
import bentoml.serving
import numpy as np
import psutil
import pytest
from bentoml._internal.server.http.traffic import TimeoutMiddleware
from bentoml.validators import ContentType
from starlette.testclient import TestClient

from wine_quality import bentoml_fixes
from wine_quality.settings import PROJECT_ROOT

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


def _schema_builds(api: Any) -> int:
    """How many JSON schemas 20 responses of this API build to name their media type."""
    spec = api.output_spec
    builds = 0
    upstream = spec.model_json_schema.__func__

    def counting(cls: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal builds
        builds += 1
        return upstream(cls, *args, **kwargs)

    spec.model_json_schema = classmethod(counting)
    try:
        assert {spec.mime_type() for _ in range(20)} == {"application/json"}
    finally:
        spec.model_json_schema = classmethod(upstream)
    return builds


@bentoml.service
class Arrays:
    """An array API as our model services declare it, and as BentoML's examples do."""

    @bentoml.api
    def declared(self, rows: np.ndarray) -> Annotated[np.ndarray, ContentType("application/json")]:
        return rows

    @bentoml.api
    def plain(self, rows: np.ndarray) -> np.ndarray:
        return rows


def test_bentoml_s_own_media_type_still_builds_a_schema_per_response() -> None:
    """Upstream (1.4.40) rebuilds an array output's JSON schema for every response to name its media type. When this
    fails, BentoML caches it: the ContentType on the model services' outputs may go."""
    assert _schema_builds(Arrays.apis["plain"]) == 20


def test_a_declared_content_type_builds_no_schema() -> None:
    """The supported hook that replaced our patch: a ContentType on the output names the media type, no schema built.
    (tests/integration/test_service.py checks that every model service declares it.)"""
    assert _schema_builds(Arrays.apis["declared"]) == 0


def test_bentoml_s_own_watchers_still_do_not_respawn_in_containers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream (1.4.40) turns respawn off wherever BENTOML_CONTAINERIZED is set, as in its images. When this fails,
    delete patch 2 and this test."""
    monkeypatch.setenv("BENTOML_CONTAINERIZED", "true")
    monkeypatch.setattr(bentoml.serving, "running_inside_container", bentoml_fixes.UPSTREAM_IN_CONTAINER)
    bentoml_fixes.UPSTREAM_IN_CONTAINER.cache_clear()
    try:
        assert bentoml.serving.create_watcher("w", ["-c", "pass"], use_sockets=False).respawn is False
    finally:
        bentoml_fixes.UPSTREAM_IN_CONTAINER.cache_clear()


def test_with_the_patch_watchers_respawn_in_containers(monkeypatch: pytest.MonkeyPatch) -> None:
    """With patch 2, a watcher made inside a container respawns its dead process."""
    monkeypatch.setenv("BENTOML_CONTAINERIZED", "true")
    monkeypatch.setattr(bentoml.serving, "running_inside_container", bentoml_fixes._never_without_respawn)
    assert bentoml.serving.create_watcher("w", ["-c", "pass"], use_sockets=False).respawn is True


@bentoml.service(metrics={"enabled": False})  # BentoML's metrics register once per process: test_model_calls' app does
class Numbers:
    """A route whose input pydantic validates: a bad one is a client error (400)."""

    @bentoml.api
    def double(self, x: int) -> int:
        return 2 * x


@pytest.fixture(scope="module")
def numbers() -> Iterator[TestClient]:
    """The service's app, started once (BentoML registers its metrics when an app starts)."""
    with TestClient(Numbers.to_asgi()) as client:
        yield client


def _logged_for_a_bad_request(client: TestClient, caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    with caplog.at_level(logging.INFO, logger=bentoml_fixes.ERROR_LOGGER):
        assert client.post("/double", json={"x": "not a number"}).status_code == 400
    return [r for r in caplog.records if r.name == bentoml_fixes.ERROR_LOGGER]


def test_bentoml_still_logs_a_client_error_with_its_traceback(
    numbers: TestClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream (1.4.40) logs a 400 as an ERROR with the exception's traceback. When this fails, delete patch 3."""
    logger = logging.getLogger(bentoml_fixes.ERROR_LOGGER)
    monkeypatch.setattr(logger, "filters", [])
    records = _logged_for_a_bad_request(numbers, caplog)
    assert [(r.levelno, r.exc_info is not None) for r in records] == [(logging.ERROR, True)]


def test_with_the_filter_a_client_error_is_one_info_line(numbers: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """With patch 3, the same 400 is one INFO line naming the route and the field, without a traceback."""
    bentoml_fixes.apply()
    (record,) = _logged_for_a_bad_request(numbers, caplog)
    assert record.levelno == logging.INFO and record.exc_info is None
    assert "/double" in record.getMessage() and "x" in record.getMessage()


def test_bentoml_s_own_arbiter_still_checks_its_workers_every_10_s() -> None:
    """Upstream (1.4.40) makes its circus arbiter with check_delay=10: a dead worker is restarted 0-10 s after it
    died. When this fails, BentoML checks more often (or respawns at once): delete patch 4 and this test."""
    arbiter = bentoml_fixes.UPSTREAM_ARBITER(watchers=[])
    assert arbiter.check_delay == 10


SUPERVISOR = """
from wine_quality import bentoml_fixes

bentoml_fixes.apply()
import bentoml.serving
from bentoml._internal.utils import circus

worker = bentoml.serving.create_watcher("sleeper", ["-c", "import time; time.sleep(600)"], use_sockets=False)
circus.create_standalone_arbiter(watchers=[worker]).start()
"""


def _children(supervisor: subprocess.Popen[bytes], deadline_s: float, besides: int = 0) -> int:
    """The pid of the supervisor's worker, other than `besides`, once there is one (polled until the deadline)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        pids = [p.pid for p in psutil.Process(supervisor.pid).children() if p.pid != besides]
        if pids:
            return pids[0]
        time.sleep(0.02)
    raise AssertionError(f"no new worker within {deadline_s} s")


def test_with_the_patch_a_killed_worker_is_respawned_at_once() -> None:
    """With patch 4, BentoML's arbiter (a real circus supervisor) starts a SIGKILLed worker again within a second or
    so, not after up to 10 s. (The bound is loose: the figure is about 0.3 s.)"""
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR], cwd=PROJECT_ROOT, start_new_session=True, stderr=subprocess.DEVNULL
    )
    try:
        first = _children(supervisor, deadline_s=60)
        os.kill(first, signal.SIGKILL)
        killed = time.monotonic()
        _children(supervisor, deadline_s=5, besides=first)
        print(f"respawned {time.monotonic() - killed:.2f} s after SIGKILL")
    finally:
        os.killpg(supervisor.pid, signal.SIGKILL)
        supervisor.wait()


def test_the_start_up_check_names_bentoml_and_its_version_when_a_target_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """check() passes on this BentoML, before and after apply(); where a target lost what its patch relies on, it
    raises one line naming BentoML, the version found and the first thing missing."""
    bentoml_fixes.check()
    bentoml_fixes.apply()
    bentoml_fixes.check()
    expected = r"^wine_quality.bentoml_fixes needs bentoml 1\.4\.40, found \d+\.\d+\.\d+: "
    monkeypatch.delattr(TimeoutMiddleware, "_set_timer_out")
    with pytest.raises(RuntimeError, match=expected + "TimeoutMiddleware has no _set_timer_out$"):
        bentoml_fixes.check()
    monkeypatch.undo()
    from _bentoml_impl.server import serving

    monkeypatch.setattr(serving, "create_standalone_arbiter", bentoml_fixes.UPSTREAM_ARBITER, raising=False)
    with pytest.raises(RuntimeError, match=expected + "serve_http no longer imports create_standalone_arbiter"):
        bentoml_fixes.check()


def test_apply_installs_every_patch_where_bentoml_looks_it_up() -> None:
    """After apply(), what BentoML calls is ours: the middleware's call, the container test, the arbiter's factory."""
    from bentoml._internal.utils import circus

    bentoml_fixes.apply()
    assert TimeoutMiddleware.__call__ is bentoml_fixes._call
    assert bentoml.serving.running_inside_container is bentoml_fixes._never_without_respawn
    assert circus.create_standalone_arbiter is bentoml_fixes._arbiter_checking_often
    assert circus.create_standalone_arbiter(watchers=[]).check_delay == bentoml_fixes.CHECK_DELAY_S
