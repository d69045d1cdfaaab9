"""The entry service's work: send rows to the right model service and build the answers around its grades.

A call to a model service whose process died, or whose connection broke, is retried until the supervisor has
restarted it (wine_quality/model_calls.py), within the request timeout: a crashed model worker costs a client time,
not an error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from wine_quality.coalesce import Coalescer
from wine_quality.model_calls import ModelCall, until_answered
from wine_quality.monitoring import Monitor
from wine_quality.payloads import BatchPrediction, Prediction, RowPrediction
from wine_quality.served import ServedModel
from wine_quality.settings import Settings


@dataclass(frozen=True)
class Graded:
    """Grades for rows, with everything an answer needs, in any protocol."""

    served: ServedModel
    quality: np.ndarray
    low: np.ndarray
    high: np.ndarray
    outside_training_range: list[list[str]]


READY_PROBE_S = 1.0


class Grader:
    """Grades wines with the served models, through their model services."""

    def __init__(self, served: dict[str, ServedModel], services: dict[str, Any], settings: Settings) -> None:
        self.served, self.services, self.settings = served, services, settings
        self._coalescers: dict[str, Coalescer] = {}
        # every graded row goes through grade(): the drift monitor sees all traffic, whatever the protocol
        self.monitor = Monitor(served, settings) if settings.drift else None

    def _resilient(self, kind: str, endpoint: str) -> ModelCall:
        """The model service's endpoint, retried with backoff while its process is down, up to the request timeout."""
        call: ModelCall = getattr(self.services[kind].to_async, endpoint)
        return until_answered(call, self.settings.request_timeout_s, f"{kind} model service")

    def _coalescer(self, kind: str) -> Coalescer:
        # made on first use: the clients of the model services exist only once the server runs
        if kind not in self._coalescers:
            s = self.settings
            call = self._resilient(kind, "predict_batched")
            self._coalescers[kind] = Coalescer(call, s.max_batch_size, s.max_in_flight, s.model_duty)
        return self._coalescers[kind]

    async def predict(self, kind: str, rows: np.ndarray) -> np.ndarray:
        """The kind's model service's output (grades, or a classifier's probabilities): a single row through the
        batching path, many rows in one call."""
        if len(rows) > 1:
            return await self._resilient(kind, "predict_direct")(rows)
        if self.settings.batching and self.settings.coalesce:
            return np.array([await self._coalescer(kind).predict(tuple(rows[0].tolist()))])
        # one call per request (adaptive batching in the model service may still join them)
        return await self._resilient(kind, "predict_batched")(rows)

    async def ready(self) -> bool:
        """Whether every model service answers its readiness probe within a second (a dead one does not)."""

        async def probe(kind: str) -> bool:
            try:
                return bool(await asyncio.wait_for(self.services[kind].is_ready(), READY_PROBE_S))
            except Exception:  # noqa: BLE001 - a probe that fails in any way means not ready
                return False

        return all(await asyncio.gather(*(probe(kind) for kind in self.services)))

    async def grade(self, kind: str, rows: np.ndarray) -> Graded:
        """Grades, intervals and out-of-range flags for rows of the 11 features in schema order."""
        served = self.served[kind]
        quality = np.asarray(await self.predict(kind, rows), dtype=np.float64)
        low, high = served.intervals(quality)
        outside = served.outside_training_range(rows)
        if self.monitor is not None:
            self.monitor.observe(kind, rows, quality, outside)
        return Graded(served, quality, low, high, outside)

    async def one(self, kind: str, row: tuple[float, ...]) -> Prediction:
        """One wine's answer; concurrent single rows share a call to the model service."""
        g = await self.grade(kind, np.array([row]))
        return Prediction(
            quality=float(g.quality[0]),
            interval={"low": float(g.low[0]), "high": float(g.high[0]), "coverage": g.served.coverage},
            model=g.served.tag,
            runtime=g.served.runtime,
            outside_training_range=g.outside_training_range[0],
        )

    async def many(self, kind: str, rows: np.ndarray) -> BatchPrediction:
        """A batch's answers, in order, from one call to the model service."""
        g = await self.grade(kind, rows)
        coverage = g.served.coverage
        answers = zip(g.quality.tolist(), g.low.tolist(), g.high.tolist(), g.outside_training_range, strict=True)
        predictions: list[RowPrediction] = [
            {"quality": q, "interval": {"low": lo, "high": hi, "coverage": coverage}, "outside_training_range": o}
            for q, lo, hi, o in answers
        ]
        # built from checked values: model_construct skips validating them a second time
        return BatchPrediction.model_construct(model=g.served.tag, runtime=g.served.runtime, predictions=predictions)
