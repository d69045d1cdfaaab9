"""A PostgreSQL outage: wines recorded while the server is down are written when it is back; overflow is counted."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from tests.capture_data import count, dropped, regression_batch, settings
from tests.postgres import (
    Postgres,
    postgres_server,  # noqa: F401  (fixture: postgres)
    wait_until,
)
from wine_quality.capture.errors import CaptureUnavailable
from wine_quality.capture.store import Capture

pytestmark = pytest.mark.slow
OUTAGE_S = 6.0  # how long the server stays down while wines keep coming


def test_nothing_is_lost_while_the_database_is_down(postgres: Postgres) -> None:
    """Wines recorded before, during and after a 6 s outage are all in the database once it is back."""
    url = postgres.database("outage")
    rng = np.random.default_rng(1)
    recorded = 0
    with Capture(settings(url, flush_interval_s=0.1)) as capture:

        def record(n: int) -> None:
            nonlocal recorded
            capture.record(regression_batch(rng, n))
            recorded += n

        record(10)
        wait_until(lambda: count(capture) == 10)
        postgres.stop()
        try:
            failed_at = None
            outage_ends = time.monotonic() + OUTAGE_S
            while time.monotonic() < outage_ends:  # traffic goes on for the whole outage
                record(3)
                time.sleep(0.02)
                if failed_at is None and capture.writer.down:
                    failed_at = time.monotonic()
            assert failed_at is not None, "the writer never noticed the outage"
            assert capture.writer.held == recorded - 10  # all kept in memory
            with pytest.raises(CaptureUnavailable):
                capture.feedback([("x", 5)])
            assert capture.exposition() == ""  # /metrics still answers, without live figures
        finally:
            postgres.start()
        record(7)
        wait_until(lambda: capture.writer.held == 0)
        assert count(capture) == recorded
    print(f"\n{recorded} wines recorded around a {OUTAGE_S:.0f} s outage, all written")


def test_overflow_beyond_the_buffer_is_counted_and_logged(postgres: Postgres, caplog: pytest.LogCaptureFixture) -> None:
    """With a 50-row bound and the server down, 200 recorded wines keep 50 and count 150 dropped, logged."""
    url = postgres.database("overflow")
    rng = np.random.default_rng(2)
    before = dropped("overflow")
    with Capture(settings(url, flush_interval_s=0.1, buffer_rows=50)) as capture:
        postgres.stop()
        try:
            with caplog.at_level(logging.WARNING, logger="wine_quality.capture.writer"):
                for n in (30, 15, 40, 115):
                    capture.record(regression_batch(rng, n))
                assert capture.writer.held == 50 and dropped("overflow") == before + 150
                wait_until(lambda: "150 rows dropped" in caplog.text)
        finally:
            postgres.start()
        wait_until(lambda: capture.writer.held == 0)
        assert count(capture) == 50


def test_a_database_unreachable_at_start_up_is_migrated_and_written_once_back(postgres: Postgres) -> None:
    """Capture opened while the server is down starts all the same: what it records waits in memory, and once the
    server is back the writer makes the tables and writes every row."""
    url = postgres.database("startup")
    postgres.stop()
    try:
        capture = Capture(settings(url, flush_interval_s=0.1))
        rng = np.random.default_rng(3)
        for n in (5, 7):
            capture.record(regression_batch(rng, n))
        wait_until(lambda: capture.writer.down)  # a write has failed: the rows stay
        assert capture.writer.held == 12
    finally:
        postgres.start()
    with capture:
        wait_until(lambda: capture.writer.held == 0)
        assert count(capture) == 12
