"""The one data plane behind every protocol: readiness, the served models, grading and classifying rows.

The JSON routes, the Open Inference Protocol (V2), MLflow's scoring protocol, /monitoring and the page are thin
adapters: each parses its own shape into rows, asks the data plane, and formats the answer. Every graded or
classified wine passes here, so each gets its id, is captured (wine_quality/capture) and monitored whatever route it
came by, and readiness means one thing everywhere. It is the only caller of the model services.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np

from wine_quality.capture.batch import CaptureBatch
from wine_quality.capture.ids import new_ids
from wine_quality.card import good_probability
from wine_quality.kinds import KINDS
from wine_quality.model_calls import ModelClient
from wine_quality.monitoring import Monitor, exposition
from wine_quality.payloads import ModelsDescription
from wine_quality.request_ids import request_id
from wine_quality.schema import Wines
from wine_quality.served import ServedModel, served_models
from wine_quality.settings import Settings
from wine_quality.store import ModelStoreError

if TYPE_CHECKING:  # imported where capture is on, in the entry only: SQLAlchemy is heavy
    from wine_quality.capture.store import Capture


@dataclass(frozen=True)
class Origin:
    """Where rows came from: the route and protocol that received them."""

    route: str
    protocol: str  # json, v2, mlflow, page


@dataclass(frozen=True)
class Graded:
    """Grades for rows, with everything an answer needs, in any protocol."""

    served: ServedModel
    ids: list[str]  # time-ordered, unique across processes and replicas: what feedback names
    wines: Wines
    quality: np.ndarray
    low: np.ndarray
    high: np.ndarray
    outside_training_range: list[list[str]]


@dataclass(frozen=True)
class Classified:
    """Probabilities for rows, with everything an answer needs."""

    served: ServedModel
    ids: list[str]
    wines: Wines
    grades: list[str]  # the column of each probability: the grades the classifier saw in training
    probabilities: np.ndarray  # [N, grades]
    good: np.ndarray  # the probability of a grade at or above good_threshold
    good_threshold: int
    outside_training_range: list[list[str]]


class DataPlane:
    """Grades and classifies rows with the served models, through their model services."""

    def __init__(
        self,
        served: dict[str, ServedModel],
        clients: dict[str, ModelClient],
        settings: Settings,
        capture: Capture | None = None,
    ) -> None:
        self.served, self.clients, self.settings, self.capture = served, clients, settings, capture
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
        capture = None
        if settings.capture.enabled:
            from wine_quality.capture.store import Capture  # SQLAlchemy: the entry's alone

            capture = Capture(settings.capture)
        return cls(served_models(settings), clients, settings, capture)

    def close(self) -> None:
        """Write what capture holds (on shutdown: every answered wine reaches the database)."""
        if self.capture is not None:
            self.capture.close()

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
        text = await anyio.to_thread.run_sync(exposition, self.monitor, ready, self.served)
        if self.capture is not None:
            text += await anyio.to_thread.run_sync(self.capture.exposition)
        return text

    async def grade(self, kind: str, wines: Wines, origin: Origin) -> Graded:
        """Grades, intervals and out-of-range flags for checked wines, each by its type's calibration and ranges."""
        served = self.served[kind]
        quality = np.asarray(await self.clients[kind].predict(wines.model_input()), dtype=np.float64)
        low, high = served.intervals(quality, wines.white)
        outside = served.outside_training_range(wines.rows, wines.white)
        interval = {"interval_low": low, "interval_high": high, "interval_coverage": served.coverage}
        ids = self._keep(served, wines, origin, quality, outside, grades=quality, **interval)
        return Graded(served, ids, wines, quality, low, high, outside)

    async def classify(self, wines: Wines, origin: Origin) -> Classified:
        """The probability of each grade, and of a good wine, for checked wines."""
        served = self.served[self.classifier]
        output = np.asarray(await self.clients[self.classifier].predict(wines.model_input()), dtype=np.float64)
        probabilities = output.reshape(len(wines), len(self._grades))
        outside = served.outside_training_range(wines.rows, wines.white)
        # drift of the expected grade, as the classifier's reference holds
        expected = probabilities @ self._classes
        ids = self._keep(
            served, wines, origin, expected, outside, probabilities=probabilities, grade_labels=self._grades
        )
        good = good_probability(probabilities, self._classes, self._good_threshold)
        return Classified(served, ids, wines, self._grades, probabilities, good, self._good_threshold, outside)

    def _keep(
        self,
        served: ServedModel,
        wines: Wines,
        origin: Origin,
        expected: np.ndarray,
        outside: list[list[str]],
        **outputs: Any,
    ) -> list[str]:
        """Every answered wine passes here: watched for drift (by its grade, or expected grade), given its id, and
        captured with what the model answered; the ids."""
        if self.monitor is not None:
            self.monitor.observe(served.kind, wines, expected, outside)
        ids = new_ids(len(wines))
        if self.capture is not None:
            self.capture.record(
                CaptureBatch(
                    ids=ids,
                    route=origin.route,
                    protocol=origin.protocol,
                    request_id=request_id.get(),
                    model_tag=served.tag,
                    runtime=served.runtime,
                    kind=served.kind,
                    features=wines.rows,
                    wine_types=wines.one_type or wines.types,  # one type: stored once for the batch
                    outside=outside,
                    **outputs,
                )
            )
        return ids
