"""Live accuracy: each model's recent predictions against the true grades tasters sent back.

Per model tag and wine type, over the `live_window` most recently graded wines that have a true grade (ordered by
when they were graded, not when the grade came back, so a late batch of old labels cannot push recent wines out):
mean absolute error and share within half a grade (wines with a predicted grade), interval coverage (wines with an
interval) and the multi-class Brier score (wines with probabilities: the classifier).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field
from sqlalchemy import Engine, func, select

from wine_quality.capture.tables import feedback, predictions


class LiveFigures(BaseModel):
    """One model's live accuracy on one wine type; a figure is null when no labelled wine in the window has it."""

    model: str = Field(description="the served tag, name:version")
    type: str = Field(description="red or white")
    labelled: int = Field(description="labelled wines in the window")
    mae: float | None = Field(description="mean absolute error of the predicted grades")
    within_half: float | None = Field(description="share of predicted grades within 0.5 of the true grade")
    interval_coverage: float | None = Field(description="share of true grades inside the predicted interval")
    brier: float | None = Field(description="multi-class Brier score of the grade probabilities (classifier)")


class LiveAccuracy(BaseModel):
    """Live accuracy of every model and wine type that has labelled wines."""

    window: int = Field(description="most recent labelled wines per model and type (WINE_LIVE_WINDOW)")
    computed: datetime = Field(description="when these figures were read from the database (UTC)")
    models: list[LiveFigures]


def measure(engine: Engine, window: int) -> LiveAccuracy:
    """Read each model's and type's newest `window` labelled wines and compute their figures."""
    p = predictions.c
    rank = func.row_number().over(partition_by=(p.model_tag, p.wine_type), order_by=(p.time.desc(), p.id.desc()))
    labelled = (
        select(
            p.model_tag,
            p.wine_type,
            p.grade,
            p.probabilities,
            p.interval_low,
            p.interval_high,
            feedback.c.grade.label("truth"),
            rank.label("rank"),
        )
        .join(feedback, feedback.c.id == p.id)
        .subquery()
    )
    query = select(labelled).where(labelled.c.rank <= window).order_by(labelled.c.model_tag, labelled.c.wine_type)
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    with engine.connect() as connection:
        for row in connection.execute(query):
            groups[(row.model_tag, row.wine_type)].append(row)
    return LiveAccuracy(
        window=window,
        computed=datetime.now(UTC),
        models=[figures(tag, kind, found) for (tag, kind), found in groups.items()],
    )


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def figures(model: str, wine_type: str, rows: list[Any]) -> LiveFigures:
    """The figures of one group of labelled rows (grade, probabilities, interval_low, interval_high, truth)."""
    truth = np.array([r.truth for r in rows], dtype=np.float64)
    graded = np.array([r.grade is not None for r in rows], dtype=bool)
    error = np.abs(np.array([r.grade for r in rows if r.grade is not None], dtype=np.float64) - truth[graded])
    inside = np.array(
        [r.interval_low <= r.truth <= r.interval_high for r in rows if None not in (r.interval_low, r.interval_high)],
        dtype=np.float64,
    )
    # sum over grades of (p - [grade is true])^2: a true grade the classifier never gives counts its 1 in full
    brier = np.array(
        [
            sum(v * v for v in r.probabilities.values()) - 2 * r.probabilities.get(str(r.truth), 0.0) + 1
            for r in rows
            if r.probabilities is not None
        ],
        dtype=np.float64,
    )
    return LiveFigures(
        model=model,
        type=wine_type,
        labelled=len(rows),
        mae=_mean(error),
        within_half=_mean((error <= 0.5).astype(np.float64)),
        interval_coverage=_mean(inside),
        brier=_mean(brier),
    )


class LiveCache:
    """The last measurement, kept `ttl_s` seconds so that frequent scrapes cost one query per interval."""

    def __init__(self, engine: Engine, window: int, ttl_s: float = 5.0) -> None:
        self.engine, self.window, self.ttl_s = engine, window, ttl_s
        self._lock = threading.Lock()  # concurrent scrapes wait for one query instead of each running it
        self._found: tuple[float, LiveAccuracy] | None = None

    def get(self) -> LiveAccuracy:
        """The figures, at most ttl_s old; database errors propagate (nothing is cached from a failure)."""
        with self._lock:
            if self._found is None or time.monotonic() - self._found[0] > self.ttl_s:
                self._found = (time.monotonic(), measure(self.engine, self.window))
            return self._found[1]


def families(report: LiveAccuracy) -> list[Any]:
    """The report as Prometheus gauge families labelled by model tag and wine type."""
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name: str, text: str) -> Any:
        return GaugeMetricFamily(name, text, labels=["model", "type"])

    made = {
        "mae": gauge("wine_live_mae", "Mean absolute error against tasters' grades, last labelled wines"),
        "within_half": gauge("wine_live_within_half", "Share of predicted grades within 0.5 of tasters' grades"),
        "interval_coverage": gauge("wine_live_interval_coverage", "Share of tasters' grades inside the interval"),
        "brier": gauge("wine_live_brier", "Multi-class Brier score of the grade probabilities"),
        "labelled": gauge("wine_live_labelled", "Labelled wines the live figures are computed over"),
    }
    for found in report.models:
        for name, family in made.items():
            value = getattr(found, name)
            if value is not None:
                family.add_metric([found.model, found.type], float(value))
    return list(made.values())


class _Fixed(Collector):
    """Families already made, as the collector prometheus_client's text writer reads."""

    def __init__(self, made: list[Any]) -> None:
        self.made = made

    def collect(self) -> Any:
        return self.made


def exposition(report: LiveAccuracy) -> str:
    """The gauges in Prometheus' text format, to append to /metrics."""
    from prometheus_client import generate_latest

    return generate_latest(_Fixed(families(report))).decode()
