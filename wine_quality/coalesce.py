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
    """

    def __init__(self, call: ModelCall, max_rows: int, max_in_flight: int) -> None:
        self._call, self._max_rows, self._max_in_flight = call, max_rows, max_in_flight
        self._queue: list[tuple[tuple[float, ...], asyncio.Future[float]]] = []
        self._in_flight = 0

    async def predict(self, row: tuple[float, ...]) -> float:
        """The model's answer for one row."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._queue.append((row, future))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max_rows], self._queue[self._max_rows :]
                try:
                    answers = await self._call(np.array([row for row, _ in batch]))
                except Exception as exc:  # every waiting caller gets the failure, none hangs
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), answer in zip(batch, answers.tolist(), strict=True):
                    if not future.done():  # a caller that went away
                        future.set_result(answer)
        finally:
            self._in_flight -= 1
