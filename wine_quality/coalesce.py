"""Join concurrent single-row predictions in the entry process into one call to a model service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import numpy as np

ModelCall = Callable[[np.ndarray], Awaitable[np.ndarray]]


class Coalescer:
    """Send rows that arrive while earlier calls are in flight as one array, and hand each caller its answer.

    With nothing in flight a row goes out at once, so an idle service adds no delay; under load each call to the
    model service carries every row that queued meanwhile. The model service's own adaptive batching then joins
    calls from several entry workers. This spares one inter-process hop per request, which costs more than the
    prediction itself for these models.

    `duty` caps the share of time the model is kept busy under load: when several rows wait, a new call starts no
    sooner than (mean call time / duty) after the previous one started, unless a full batch is waiting. An
    ensemble that costs as much for 30 rows as for one then gets fewer, fuller calls under load (duty 0.5 adds at
    most one call time of waiting); a cheap model hardly waits at all.
    """

    def __init__(self, call: ModelCall, max_rows: int, max_in_flight: int, duty: float = 1.0) -> None:
        self._call, self._max_rows, self._max_in_flight, self._duty = call, max_rows, max_in_flight, duty
        self._queue: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        self._in_flight = 0
        self._last_start = 0.0
        self._call_seconds = 0.0  # moving average of one call's duration

    async def predict(self, row: np.ndarray) -> np.ndarray:
        """The model's answer for one row (1-D): its grade, or its row of probabilities."""
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.append((row, future))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            while self._queue:
                wait = self._last_start + self._call_seconds / self._duty - loop.time()
                # a lone row is never held back: waiting pays only when rows arrive faster than calls end
                if wait > 0 and 1 < len(self._queue) < self._max_rows:
                    await asyncio.sleep(wait)
                    if not self._queue:  # another call in flight took them meanwhile
                        break
                batch, self._queue = self._queue[: self._max_rows], self._queue[self._max_rows :]
                self._last_start = start = loop.time()
                try:
                    answers = await self._call(np.stack([row for row, _ in batch]))
                    self._call_seconds += 0.2 * (loop.time() - start - self._call_seconds)
                except Exception as exc:  # every waiting caller gets the failure, none hangs
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():  # a caller that went away
                        future.set_result(answer)
        finally:
            self._in_flight -= 1
