"""Fixes for BentoML 1.4.40 that this service needs, applied when service.py is imported.

1. A timer per request. BentoML's `TimeoutMiddleware` (bentoml/_internal/server/http/traffic.py), which every
service gets from `traffic.timeout`, schedules `loop.call_later(timeout, ...)` per request and never cancels it.
Each request so leaves a timer alive for the whole timeout (30-60 s), holding its future, its context and its
OpenTelemetry span: at 1,500 requests/s that is about a million live objects, and every full garbage collection
walks them all. Measured on this service: full collections of 70-420 ms, a p99 of 250-480 ms at 32 clients and 150
ms even at one client; with the timer cancelled, full collections take under 1 ms and p99 fell to about 25 ms.

The same middleware also waits out the whole timeout when the app returns without answering (its client gone, or
timed out by the server's read timeout with 408): the request's task stays for 30 s, and a SIGTERM's drain waits
for it. 2,000 uploads that stall again as soon as each is answered 408 (every 10 s) would keep 6,000 such tasks.

The fix: the middleware's `__call__` behaves the same (504 when no response has started within the timeout) and
cancels its timer as soon as the response starts or the app returns.

2. No respawn in containers. `bentoml.serving.create_watcher` turns circus' respawn off when BENTOML_CONTAINERIZED is
set (it is, in every image BentoML builds): a model worker killed by the OOM killer or a crash in a native library
then stays dead while the entry keeps answering /livez, so nothing restarts it. The fix keeps respawn on everywhere.

3. A traceback per client error. BentoML logs every 400 (a bad wine) as an error with its full traceback. The fix
turns those records into one line at INFO, naming the route and the first problem; server errors keep their traceback.

4. A JSON schema per response. For an API returning an array (our model services), BentoML derives the response's
media type from the output model's JSON schema, rebuilt on every response: a fifth of a model service's time per
single-row call. The media type depends on the class alone; the fix computes it once per class.

tests/unit/test_bentoml_fixes.py fails when upstream no longer has a bug (then its fix should go) or a fix stops
applying.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import bentoml.serving
from _bentoml_sdk.io_models import IOMixin
from bentoml._internal.server.http.traffic import TimeoutMiddleware
from bentoml.exceptions import BentoMLException
from pydantic import ValidationError
from starlette.responses import JSONResponse

from wine_quality.schema import first_error

UPSTREAM_CALL = TimeoutMiddleware.__call__
UPSTREAM_IN_CONTAINER = bentoml.serving.running_inside_container
UPSTREAM_MIME_TYPE = IOMixin.__dict__["mime_type"]  # the classmethod object itself
_MIME_TYPES: dict[type, str] = {}
ERROR_LOGGER = "bentoml._internal.server.http_app"  # where BentoML logs an exception on a route


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


def _mime_type_once(cls: type) -> str:
    """The upstream media type of an IO class, computed on first use and then remembered."""
    known = _MIME_TYPES.get(cls)
    if known is None:
        known = _MIME_TYPES[cls] = UPSTREAM_MIME_TYPE.__func__(cls)
    return known


def apply() -> None:
    """Install the four fixes (idempotent)."""
    IOMixin.mime_type = classmethod(_mime_type_once)
    TimeoutMiddleware.__call__ = _call  # type: ignore[method-assign,assignment]
    bentoml.serving.running_inside_container = _never_without_respawn  # type: ignore[assignment]
    logger = logging.getLogger(ERROR_LOGGER)
    if not any(isinstance(f, OneLineClientErrors) for f in logger.filters):
        logger.addFilter(OneLineClientErrors())
