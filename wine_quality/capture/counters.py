"""The capture writer's Prometheus counters, made once per process (in the worker, for BentoML's multiprocess files)."""

from __future__ import annotations

from functools import cache
from typing import Any

DROP_REASONS = ("overflow", "rejected", "shutdown")


@cache
def dropped_rows() -> Any:
    """wine_capture_dropped_rows_total{reason}: made once per process (in the worker, for multiprocess files)."""
    from prometheus_client import Counter

    counter = Counter("wine_capture_dropped_rows", "Captured wines that were never written, by reason", ["reason"])
    for reason in DROP_REASONS:  # every series exists from the start, so that rate() and alerts see a zero
        counter.labels(reason)
    return counter


@cache
def written_rows() -> Any:
    """wine_capture_written_rows_total: how many captured wines reached the database."""
    from prometheus_client import Counter

    return Counter("wine_capture_written_rows", "Captured wines written to the capture database")
