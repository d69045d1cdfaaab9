"""The entry service's work: send rows to the right model service and build the answers around its grades."""

from __future__ import annotations

from typing import Any

import numpy as np

from wine_quality.coalesce import Coalescer
from wine_quality.payloads import BatchPrediction, Prediction, RowPrediction
from wine_quality.served import ServedModel
from wine_quality.settings import Settings


class Grader:
    """Grades wines with the served models, through their model services."""

    def __init__(self, served: dict[str, ServedModel], services: dict[str, Any], settings: Settings) -> None:
        self.served, self.services, self.settings = served, services, settings
        self._coalescers: dict[str, Coalescer] = {}

    def _coalescer(self, kind: str) -> Coalescer:
        # made on first use: the clients of the model services exist only once the server runs
        if kind not in self._coalescers:
            call = self.services[kind].to_async.predict_batched
            s = self.settings
            self._coalescers[kind] = Coalescer(call, s.max_batch_size, s.max_in_flight, s.model_duty)
        return self._coalescers[kind]

    async def one(self, kind: str, row: tuple[float, ...]) -> Prediction:
        """One wine's answer; concurrent single rows share a call to the model service."""
        served = self.served[kind]
        if self.settings.batching and self.settings.coalesce:
            quality = await self._coalescer(kind).predict(row)
        else:  # one call per request (adaptive batching in the model service may still join them)
            quality = float((await self.services[kind].to_async.predict_batched(np.array([row])))[0])
        low, high = served.intervals(np.array([quality]))
        return Prediction(
            quality=quality,
            interval={"low": float(low[0]), "high": float(high[0]), "coverage": served.coverage},
            model=served.tag,
            runtime=served.runtime,
            outside_training_range=served.outside_training_range(np.array([row]))[0],
        )

    async def many(self, kind: str, rows: np.ndarray) -> BatchPrediction:
        """A batch's answers, in order, from one call to the model service."""
        served = self.served[kind]
        qualities: np.ndarray = await self.services[kind].to_async.predict_direct(rows)
        outside = served.outside_training_range(rows)
        lows, highs = served.intervals(qualities)
        coverage = served.coverage
        predictions: list[RowPrediction] = [
            {"quality": q, "interval": {"low": lo, "high": hi, "coverage": coverage}, "outside_training_range": o}
            for q, lo, hi, o in zip(qualities.tolist(), lows.tolist(), highs.tolist(), outside, strict=True)
        ]
        # built from checked values: model_construct skips validating them a second time
        return BatchPrediction.model_construct(model=served.tag, runtime=served.runtime, predictions=predictions)
