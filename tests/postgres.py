"""The PostgreSQL fixture of the capture tests: harness/postgres.py's throw-away server, once per test module.

from tests.postgres import postgres_server  # noqa: F401  (the fixture is named `postgres`)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from harness.postgres import DATABASE, OWNER, PACKAGES, PREFIX, USER, Postgres, PostgresUnavailable, binaries

__all__ = [
    "DATABASE",
    "OWNER",
    "PACKAGES",
    "PREFIX",
    "USER",
    "Postgres",
    "PostgresUnavailable",
    "binaries",
    "postgres_server",
    "wait_until",
]


@pytest.fixture(scope="module", name="postgres")
def postgres_server() -> Iterator[Postgres]:
    """A PostgreSQL server for this test module (skipped, with the reason, where none can be had)."""
    try:
        server = Postgres()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.remove()


def wait_until(check: Callable[[], object], timeout_s: float = 30.0, every_s: float = 0.05) -> None:
    """Poll `check()` until it is true, failing past the deadline: tests wait for a state, not for a fixed time."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {check}")
        time.sleep(every_s)
