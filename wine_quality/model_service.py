"""One BentoML service per served model kind: adaptive batching in front of the model's runtime."""

from __future__ import annotations

import gc
from typing import Any

import bentoml
import numpy as np
from bentoml.models import BentoModel

from wine_quality.drain import entry_workers_alive, hold_sigterm_while
from wine_quality.runtimes import Predictor
from wine_quality.served import ServedModel
from wine_quality.settings import Settings, get_settings

_SETTINGS = get_settings()
# Upstream #5540: a caller recycling its client session mid-flight fails requests; never recycle.
STEADY_CONNECTION = {"max_requests": 2**62, "max_age": 1e12}


class ModelService:
    """What every model service does; `model_service` makes one subclass per served model."""

    served: ServedModel
    bento_model: Any  # BentoModel(tag): so that `bentoml build` packs exactly the served version
    predict_rows: Predictor

    def __init__(self) -> None:
        self.predict_rows = self.served.predictor(_SETTINGS.model_threads)
        # on SIGTERM, keep answering until the entry service has answered what it accepted
        hold_sigterm_while(entry_workers_alive, max_wait=_SETTINGS.request_timeout_s + 5)
        gc.freeze()  # what loading made stays out of every later garbage collection

    @bentoml.api(
        batchable=_SETTINGS.batching,
        batch_dim=0,
        max_batch_size=_SETTINGS.max_batch_size,
        max_latency_ms=_SETTINGS.max_latency_ms,
    )
    async def predict_batched(self, rows: np.ndarray) -> np.ndarray:
        """Grades for rows; adaptive batching joins concurrent calls into one array first.

        Run on the event loop: a batch of single wines takes tens of microseconds in ONNX Runtime, less than handing
        it to a worker thread and back.
        """
        return self.predict_rows(rows)

    @bentoml.api
    def predict_direct(self, rows: np.ndarray) -> np.ndarray:
        """Grades for a whole batch request, predicted in one call as it came (in a worker thread: big batches take
        milliseconds, and ONNX Runtime releases the GIL, so the service keeps answering meanwhile)."""
        return self.predict_rows(rows)


def model_service(served: ServedModel, settings: Settings) -> Any:
    """The BentoML service that serves one model: its own process, named after its kind."""
    cls = type(
        f"{served.kind.capitalize()}Model",
        (ModelService,),
        {"served": served, "bento_model": BentoModel(served.tag), "__doc__": f"The {served.kind} model service."},
    )
    return bentoml.service(
        name=f"wine_quality_{served.kind}",
        workers=1,
        runner_connection=STEADY_CONNECTION,
        traffic={"timeout": settings.request_timeout_s},
        logging={"access": {"enabled": False}},
    )(cls)


def model_dependencies(services: dict[str, Any]) -> type:
    """A base class for the entry service with one `bentoml.depends` attribute per model kind."""
    return type("ModelDependencies", (), {kind: bentoml.depends(service) for kind, service in services.items()})
