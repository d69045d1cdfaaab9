"""The entry process's coalescer: concurrent rows share one model call, each caller gets its own answer.

The tests run in virtual time (tests/virtual_time.py): a model call "takes" 10 ms and rows arrive 1 ms apart on the
event loop's clock, whatever the machine's speed, so the counts they assert are exact.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.virtual_time import run_in_virtual_time
from wine_quality.coalesce import Coalescer

CALL_S = 0.010


class FakeModel:
    """Stands in for a model service: answers the row sum after 10 ms, records the size of every call."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail

    async def __call__(self, rows: np.ndarray) -> np.ndarray:
        self.calls.append(len(rows))
        await asyncio.sleep(CALL_S)
        if self.fail:
            raise RuntimeError("model service down")
        return rows.sum(axis=1)


def test_concurrent_rows_are_joined_and_answered_in_place() -> None:
    """100 rows sent at once cost a handful of calls, and each caller gets the answer for its own row."""
    model = FakeModel()

    async def run() -> list[float]:
        coalescer = Coalescer(model, max_rows=64, max_in_flight=2)
        return await asyncio.gather(*(coalescer.predict(np.array([float(i), 1.0])) for i in range(100)))

    answers, _ = run_in_virtual_time(run())
    assert answers == [i + 1.0 for i in range(100)]
    # all 100 are queued before the first call leaves: two calls, the first full
    assert model.calls == [64, 36]


def test_a_lone_row_is_sent_at_once() -> None:
    """With nothing in flight, a row is not held back waiting for company: it costs one call's time, no more."""
    model = FakeModel()

    async def run() -> float:
        return await Coalescer(model, max_rows=64, max_in_flight=1).predict(np.array([2.0, 3.0]))

    answer, seconds = run_in_virtual_time(run())
    assert answer == 5.0 and model.calls == [1] and seconds == pytest.approx(CALL_S)


def test_a_failed_call_fails_every_waiting_caller() -> None:
    """When the model call fails, every row in it gets the error; none hangs."""

    async def run() -> list[object]:
        coalescer = Coalescer(FakeModel(fail=True), max_rows=8, max_in_flight=1)
        return await asyncio.gather(*(coalescer.predict(np.array([1.0])) for _ in range(20)), return_exceptions=True)

    results, _ = run_in_virtual_time(run())
    assert len(results) == 20 and all(isinstance(r, RuntimeError) for r in results)


@pytest.mark.parametrize("in_flight", [1, 3])
def test_calls_in_flight_never_exceed_the_limit(in_flight: int) -> None:
    """At most max_in_flight calls run at once, and the limit is reached under load."""
    running, peak = 0, 0

    async def model(rows: np.ndarray) -> np.ndarray:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1
        return rows[:, 0]

    async def run() -> None:
        coalescer = Coalescer(model, max_rows=4, max_in_flight=in_flight)
        await asyncio.gather(*(coalescer.predict(np.array([1.0])) for _ in range(50)))

    run_in_virtual_time(run())
    assert peak == in_flight


@pytest.mark.parametrize(("duty", "most_calls"), [(1.0, 35), (0.5, 24)])
def test_duty_spaces_calls_into_fuller_batches_and_never_sends_an_empty_one(duty: float, most_calls: int) -> None:
    """Rows arriving every millisecond for 150 ms, calls of 10 ms, two in flight: at duty 0.5 calls start no sooner
    than 20 ms apart, so there are fewer and fuller ones than at duty 1; none is empty, every row is answered."""
    model = FakeModel()

    async def run() -> list[float]:
        coalescer = Coalescer(model, max_rows=64, max_in_flight=2, duty=duty)

        async def arrive(i: int) -> float:
            await asyncio.sleep(i * 0.001)
            return await coalescer.predict(np.array([float(i)]))

        return await asyncio.gather(*(arrive(i) for i in range(150)))

    answers, seconds = run_in_virtual_time(run())
    assert answers == [float(i) for i in range(150)]
    assert min(model.calls) >= 1 and sum(model.calls) == 150
    assert len(model.calls) <= most_calls, model.calls
    assert seconds < 0.150 + 4 * CALL_S / duty  # the last rows wait at most a couple of spaced calls
