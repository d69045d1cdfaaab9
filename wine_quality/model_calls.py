"""Calls from the entry to a model service that outlive the service's death: retried until it is back, in time.

A model service that is killed (the OOM killer, a crash in a native library, SIGKILL) breaks the calls it was
answering in one of four ways, all of which the supervisor's restart mends, and all of which are safe to repeat
because a prediction changes nothing:

- the connection is refused (no process listens yet);
- the connection is reset (the process died with the request unread);
- the headers came but no body (it died between two writes);
- the body came cut short (it died within a write larger than the socket took at once).

BentoML's dependency client (aiohttp) raises each of these as an `aiohttp.ClientError` or an `OSError`; an answer
the model service gave (an HTTP status) becomes a `BentoMLException`, which is not retried. tests/unit/
test_model_calls.py makes a real server die at each of the four points and checks that the call is answered once it
is back: it fails if an upgraded client raises something else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import aiohttp
import numpy as np
from bentoml.exceptions import BentoMLException, ServiceUnavailable

from wine_quality.coalesce import Coalescer
from wine_quality.settings import Settings

ModelCall = Callable[[np.ndarray], Awaitable[np.ndarray]]
# what a model service that died, or is restarting, looks like from here
TRANSPORT_FAILURES = (aiohttp.ClientError, OSError, EOFError)
FIRST_PAUSE_S, LONGEST_PAUSE_S = 0.02, 0.2
READY_PROBE_S = 1.0


class ModelTimeout(BentoMLException):
    """The model service did not answer within the request timeout: the request's 504."""

    error_code = HTTPStatus.GATEWAY_TIMEOUT


def is_transport_failure(exc: BaseException) -> bool:
    """Whether a call failed on the way to or from the model service (retry), not in an answer it gave or by taking
    longer than the request may (don't)."""
    return isinstance(exc, TRANSPORT_FAILURES) and not isinstance(exc, BentoMLException | TimeoutError)


def until_answered(call: ModelCall, deadline_s: float, what: str) -> ModelCall:
    """`call`, repeated with a short backoff while the model service is down, until it answers or `deadline_s`
    seconds have passed since the first try (then ServiceUnavailable, a 503)."""

    async def retrying(rows: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + deadline_s, FIRST_PAUSE_S
        while True:
            try:
                return await call(rows)
            except TimeoutError as exc:  # the client's own timeout, the request's: a 504, as the entry's would be
                raise ModelTimeout(f"the {what} did not answer within {deadline_s:g} seconds") from exc
            except Exception as exc:
                if not is_transport_failure(exc):
                    raise
                if loop.time() + pause >= deadline:
                    raise ServiceUnavailable(f"the {what} is down: {type(exc).__name__}: {exc}") from exc
            await asyncio.sleep(pause)
            pause = min(2 * pause, LONGEST_PAUSE_S)

    return retrying


class ModelClient:
    """One model service as the entry calls it: retried while it is down, single rows joined into one call."""

    def __init__(self, kind: str, proxy: Any, settings: Settings) -> None:
        self.kind, self.proxy, self.settings = kind, proxy, settings
        self.name = f"{kind} model service"
        self._calls: dict[str, ModelCall] = {}
        self._coalescer: Coalescer | None = None

    def _call(self, endpoint: str) -> ModelCall:
        # made on first use: BentoML sets up a dependency's endpoints after the entry's __init__
        if endpoint not in self._calls:
            call: ModelCall = getattr(self.proxy.to_async, endpoint)
            self._calls[endpoint] = until_answered(call, self.settings.requests.timeout_s, self.name)
        return self._calls[endpoint]

    async def predict(self, rows: np.ndarray) -> np.ndarray:
        """The model's output for rows: a single row through the batching path, many rows in one direct call."""
        if len(rows) > 1:
            return await self._call("predict_direct")(rows)
        batching = self.settings.batching
        if not (batching.enabled and batching.coalesce):
            # one call per request (adaptive batching in the model service may still join them)
            return await self._call("predict_batched")(rows)
        if self._coalescer is None:
            call = self._call("predict_batched")
            self._coalescer = Coalescer(call, batching.max_batch_size, batching.max_in_flight, batching.model_duty)
        return np.stack([await self._coalescer.predict(rows[0])])

    async def ready(self) -> bool:
        """Whether the model service answers its readiness probe within READY_PROBE_S (a dead one does not)."""
        try:
            return bool(await asyncio.wait_for(self.proxy.is_ready(), READY_PROBE_S))
        except Exception:  # noqa: BLE001 - a probe that fails in any way means not ready
            return False
