"""The one data plane behind every protocol: readiness, the served models, grading and classifying rows.

The JSON routes, the Open Inference Protocol (V2), MLflow's scoring protocol, /monitoring and the page are thin
adapters: each parses its own shape into rows, asks the data plane, and formats the answer. Every graded or
classified wine passes here, so monitoring sees all traffic whatever route it came by, and readiness means one
thing everywhere. It is the only caller of the model services.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np

from wine_quality.card import good_probability
from wine_quality.kinds import KINDS
from wine_quality.model_calls import ModelClient
from wine_quality.monitoring import Monitor, exposition
from wine_quality.payloads import ModelsDescription
from wine_quality.served import ServedModel, served_models
from wine_quality.settings import Settings
from wine_quality.store import ModelStoreError


@dataclass(frozen=True)
class Origin:
    """Where rows came from: the route and protocol that received them."""

    route: str
    protocol: str  # json, v2, mlflow


@dataclass(frozen=True)
class Graded:
    """Grades for rows, with everything an answer needs, in any protocol."""

    served: ServedModel
    rows: np.ndarray
    quality: np.ndarray
    low: np.ndarray
    high: np.ndarray
    outside_training_range: list[list[str]]


@dataclass(frozen=True)
class Classified:
    """Probabilities for rows, with everything an answer needs."""

    served: ServedModel
    rows: np.ndarray
    grades: list[str]  # the column of each probability: the grades the classifier saw in training
    probabilities: np.ndarray  # [N, grades]
    good: np.ndarray  # the probability of a grade at or above good_threshold
    good_threshold: int
    outside_training_range: list[list[str]]


class DataPlane:
    """Grades and classifies rows with the served models, through their model services."""

    def __init__(self, served: dict[str, ServedModel], clients: dict[str, ModelClient], settings: Settings) -> None:
        self.served, self.clients, self.settings = served, clients, settings
        self.monitor = Monitor(served, settings.drift) if settings.drift.enabled else None
        (self.classifier,) = (kind for kind in served if KINDS[kind].task == "classification")
        found = served[self.classifier].card.classification
        if found is None:
            raise ModelStoreError(f"model {served[self.classifier].tag} has no classification section")
        self._grades = [str(c) for c in found.classes]
        self._classes = np.array(found.classes, dtype=np.float64)
        self._good_threshold = found.good_threshold
        self.description = ModelsDescription(models={kind: s.info() for kind, s in served.items()})

    @classmethod
    def start(cls, services: dict[str, Any], settings: Settings) -> DataPlane:
        """The entry's data plane over its model services (BentoML's dependency proxies), with the pinned models."""
        clients = {kind: ModelClient(kind, proxy, settings) for kind, proxy in services.items()}
        return cls(served_models(settings), clients, settings)

    async def ready(self) -> bool:
        """Whether every model service answers its readiness probe: /readyz, V2's and MLflow's health routes."""
        return all(await asyncio.gather(*(client.ready() for client in self.clients.values())))

    async def model_ready(self, kind: str) -> bool:
        """Whether one model's service answers its readiness probe."""
        return await self.clients[kind].ready()

    async def metrics(self) -> str:
        """Prometheus text of the entry's own gauges: readiness, and the drift of every entry worker's recent rows
        (computed in a thread: the event loop keeps answering)."""
        ready = await self.ready()
        return await anyio.to_thread.run_sync(exposition, self.monitor, ready)

    async def grade(self, kind: str, rows: np.ndarray, origin: Origin) -> Graded:
        """Grades, intervals and out-of-range flags for checked rows of the 11 features in schema order."""
        served = self.served[kind]
        quality = np.asarray(await self.clients[kind].predict(rows), dtype=np.float64)
        white = np.zeros(len(rows), dtype=bool)  # every wine red until rows carry their type
        low, high = served.intervals(quality, white)
        outside = served.outside_training_range(rows, white)
        if self.monitor is not None:
            self.monitor.observe(kind, rows, quality, outside)
        return Graded(served, rows, quality, low, high, outside)

    async def classify(self, rows: np.ndarray, origin: Origin) -> Classified:
        """The probability of each grade, and of a good wine, for checked rows."""
        served = self.served[self.classifier]
        output = np.asarray(await self.clients[self.classifier].predict(rows), dtype=np.float64)
        probabilities = output.reshape(len(rows), len(self._grades))
        outside = served.outside_training_range(rows, np.zeros(len(rows), dtype=bool))  # red until rows carry a type
        if self.monitor is not None:  # drift of the expected grade, as the classifier's reference holds
            self.monitor.observe(self.classifier, rows, probabilities @ self._classes, outside)
        good = good_probability(probabilities, self._classes, self._good_threshold)
        return Classified(served, rows, self._grades, probabilities, good, self._good_threshold, outside)
