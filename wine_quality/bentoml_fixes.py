"""Patches of BentoML 1.4.40 that this service needs, applied when service.py is imported (supervisor and workers).

docs/patches.md has each one's upstream report with a reproduction; in short:

1. A timer per request. BentoML's `TimeoutMiddleware` (what `traffic.timeout` adds to every service) schedules
`loop.call_later(timeout, ...)` per request and never cancels it, and waits out the whole timeout when the app returns
without answering. At 1,500 requests/s that is about a million live objects that every full garbage collection walks
(p99 of 250-480 ms at 32 clients). The fix cancels the timer once the response starts or the app returns, with the
same 504.

2. No respawn in containers. `bentoml.serving.create_watcher` turns circus' respawn off when BENTOML_CONTAINERIZED is
set (BentoML's images set it): a model worker killed by the OOM killer then takes the whole server down with it. The
fix keeps respawn on everywhere.

3. A traceback per client error. BentoML logs every 400 (a bad wine) as an error with its traceback. A logging filter
turns those records into one INFO line naming the route and the first problem; server errors keep their traceback.

4. A worker restarted up to 10 s late. BentoML makes its circus arbiter with `check_delay=10`, and circus looks for dead
workers, and respawns them, only in that periodic check: a killed model service waited 0-10 s before it was even
started again. The fix passes a check delay of CHECK_DELAY_S to the same function, which already takes one.

`check()` refuses to start, naming BentoML's version, when a target no longer has the shape its patch relies on;
tests/unit/test_bentoml_fixes.py fails when upstream no longer has a defect (then its patch should go).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import logging
from typing import Any

import bentoml._internal.utils.circus as circus_utils
import bentoml.serving
from _bentoml_impl.server import serving as new_serving
from bentoml._internal.server import base_app, http_app
from bentoml._internal.server.http.traffic import TimeoutMiddleware
from bentoml.exceptions import BentoMLException
from circus.arbiter import Arbiter
from pydantic import ValidationError
from starlette.responses import JSONResponse

from wine_quality.schema import first_error

WRITTEN_FOR = "1.4.40"
UPSTREAM_CALL = TimeoutMiddleware.__call__
UPSTREAM_IN_CONTAINER = bentoml.serving.running_inside_container
UPSTREAM_ARBITER = circus_utils.create_standalone_arbiter
ERROR_LOGGER = "bentoml._internal.server.http_app"  # where BentoML logs an exception on a route
# Each check costs the supervisor a waitpid and a /proc read per worker; four a second is nothing, and a dead worker
# waits 0.125 s on average instead of 5.
CHECK_DELAY_S = 0.25


async def _call(self: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Run the request; answer 504 if it has not started its response within `self.timeout` seconds."""
    if scope["type"] not in ("http", "websocket"):
        await self.app(scope, receive, send)
        return
    loop = asyncio.get_running_loop()
    started = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, started)

    async def send_and_mark(message: Any) -> None:
        if not started.done():
            started.set_result(None)
        await send(message)

    def returned(_: asyncio.Future[None]) -> None:  # without answering, maybe: no reason to wait any longer
        if not started.done():
            started.set_result(None)

    handling = asyncio.ensure_future(self.app(scope, receive, send_and_mark))
    handling.add_done_callback(returned)
    try:
        await started
    except TimeoutError:
        if handling.cancel():
            detail = {"error": f"Not able to process the request in {self.timeout} seconds"}
            await JSONResponse(detail, status_code=504)(scope, receive, send)
        return
    finally:
        timer.cancel()  # the fix: the timer dies with the request, not `timeout` seconds later
    await handling


def _never_without_respawn() -> bool:
    """What create_watcher asks before turning respawn off: never, so circus restarts a dead worker."""
    return False


def _arbiter_checking_often(*args: Any, **kwargs: Any) -> Any:
    """BentoML's own arbiter, which checks its workers (and respawns the dead) every CHECK_DELAY_S seconds."""
    kwargs.setdefault("check_delay", CHECK_DELAY_S)
    return UPSTREAM_ARBITER(*args, **kwargs)


class OneLineClientErrors(logging.Filter):
    """A client error (400 and other 4xx) becomes one INFO line; anything else keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            problem = f"{exc.error_count()} validation error(s), first {first_error(exc)}"
        elif isinstance(exc, BentoMLException) and exc.error_code.value < 500:
            problem = f"{exc.error_code.value}: {exc}"
        else:
            return True
        record.msg = f"{record.getMessage()}: client error, {problem}"
        record.args, record.exc_info, record.exc_text = None, None, None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _names(function: Any) -> set[str]:
    """The global and attribute names a function's code refers to."""
    return set(inspect.unwrap(function).__code__.co_names)


def _keywords(function: Any) -> set[str]:
    """The keyword names a function's code passes in its calls."""
    consts = inspect.unwrap(function).__code__.co_consts
    return {name for const in consts if isinstance(const, tuple) for name in const if isinstance(name, str)}


def _problems() -> list[str]:
    """What this module's patches rely on and BentoML (or its circus) no longer has; empty when all is there."""
    problems = []
    # 1: BentoML builds the middleware from the class (so its __call__ is ours), and it has what ours uses
    middlewares: property = base_app.BaseAppFactory.__dict__["middlewares"]
    if "TimeoutMiddleware" not in _names(middlewares.fget):
        problems.append("BaseAppFactory.middlewares no longer adds TimeoutMiddleware")
    if not callable(getattr(TimeoutMiddleware, "_set_timer_out", None)):
        problems.append("TimeoutMiddleware has no _set_timer_out")
    if not {"app", "timeout"} <= _names(TimeoutMiddleware.__init__):
        problems.append("TimeoutMiddleware.__init__ sets no app or no timeout")
    # 2: create_watcher asks running_inside_container, by its module-level name, whether to pass respawn=False
    watcher = bentoml.serving.create_watcher
    if "running_inside_container" not in _names(watcher) or "respawn" not in _keywords(watcher):
        problems.append("bentoml.serving.create_watcher no longer asks running_inside_container for respawn")
    # 3: route exceptions are logged on this logger
    if getattr(getattr(http_app, "logger", None), "name", None) != ERROR_LOGGER:
        problems.append(f"route exceptions are no longer logged on {ERROR_LOGGER}")
    # 4: serve_http looks create_standalone_arbiter up in its module when it runs, and that passes check_delay on
    if "create_standalone_arbiter" not in _names(new_serving.serve_http) or hasattr(
        new_serving, "create_standalone_arbiter"
    ):
        problems.append("serve_http no longer imports create_standalone_arbiter when it runs")
    if "check_delay" not in {*inspect.unwrap(UPSTREAM_ARBITER).__code__.co_consts, *_keywords(UPSTREAM_ARBITER)}:
        problems.append("create_standalone_arbiter no longer takes a check_delay")
    if "check_delay" not in inspect.signature(Arbiter.__init__).parameters:
        problems.append("circus' Arbiter takes no check_delay")
    return problems


def check() -> None:
    """Raise, naming BentoML's version, if a patch's target is not there as the patch expects."""
    if problems := _problems():
        version = importlib.metadata.version("bentoml")
        raise RuntimeError(f"wine_quality.bentoml_fixes needs bentoml {WRITTEN_FOR}, found {version}: {problems[0]}")


def apply() -> None:
    """Install the four patches (idempotent)."""
    TimeoutMiddleware.__call__ = _call  # type: ignore[method-assign,assignment]
    bentoml.serving.running_inside_container = _never_without_respawn  # type: ignore[assignment]
    circus_utils.create_standalone_arbiter = _arbiter_checking_often
    logger = logging.getLogger(ERROR_LOGGER)
    if not any(isinstance(f, OneLineClientErrors) for f in logger.filters):
        logger.addFilter(OneLineClientErrors())
