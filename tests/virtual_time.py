"""Run a coroutine on an event loop whose clock only moves when every task waits: sleeps cost no real time."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _Clock:
    now = 0.0


class _SkippingSelector(selectors.DefaultSelector):
    """When the loop would block until its next timer, jump the clock there instead of waiting."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("deadlock: every task waits and no timer is due")
        self.clock.now += max(timeout, 0.0)
        return super().select(0)


def run_in_virtual_time(coro: Coroutine[Any, Any, T]) -> tuple[T, float]:
    """The coroutine's result and the virtual seconds it took."""
    clock = _Clock()
    loop = asyncio.SelectorEventLoop(_SkippingSelector(clock))
    loop.time = lambda: clock.now  # type: ignore[method-assign]
    try:
        return loop.run_until_complete(coro), clock.now
    finally:
        loop.close()
