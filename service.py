"""The Bento service: one service per model, each with adaptive batching, behind one JSON entry service."""

from __future__ import annotations

import gc
import inspect
import os
from typing import TYPE_CHECKING, Any

import bentoml
import numpy as np
from bentoml.models import BentoModel

from wine_quality.coalesce import Coalescer
from wine_quality.payloads import (
    BatchPrediction,
    BatchRequestBase,
    Interval,
    ModelsDescription,
    Prediction,
    RowPrediction,
    batch_request,
)
from wine_quality.registry import ModelStoreError, Predictor, ServedModel, load_predictor, served_models
from wine_quality.routes import GetJSON
from wine_quality.schema import Wine
from wine_quality.settings import get_settings
from wine_quality.ui import ui_app

SETTINGS = get_settings()
try:
    # Resolved once, from pins: a model saved later does not replace the served one.
    SERVED: dict[str, ServedModel] = served_models(SETTINGS)
except ModelStoreError as exc:
    raise SystemExit(f"wine-quality: cannot serve: {exc}") from None

if TYPE_CHECKING:
    BatchRequest = BatchRequestBase
else:  # the row limit comes from the settings
    BatchRequest = batch_request(SETTINGS.max_rows_per_request)

# Upstream #5540: a caller recycling its client session mid-flight fails requests; never recycle.
STEADY_CONNECTION = {"max_requests": 2**62, "max_age": 1e12}
MODEL_SERVICE = {
    "workers": 1,
    "traffic": {"timeout": SETTINGS.request_timeout_s},
    "logging": {"access": {"enabled": False}},
}
BATCHING = {"batchable": SETTINGS.batching, "batch_dim": 0, "max_batch_size": SETTINGS.max_batch_size}


class ModelService:
    """What each model service does; subclasses name the model kind and its pinned store entry."""

    kind: str
    bento_model: Any
    predictor: Predictor

    @bentoml.api(**BATCHING, max_latency_ms=SETTINGS.max_latency_ms)
    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Adaptive batching joins concurrent single-row calls into one array."""
        return self.predictor(rows)

    @bentoml.api
    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """A whole batch request, predicted in one call."""
        return self.predictor(rows)


@bentoml.service(name="wine_quality_sklearn", runner_connection=STEADY_CONNECTION, **MODEL_SERVICE)
class SklearnModel(ModelService):
    kind = "sklearn"
    bento_model = BentoModel(SERVED["sklearn"].tag)

    def __init__(self) -> None:
        self.predictor = load_predictor(self.kind, self.bento_model)
        gc.freeze()


@bentoml.service(name="wine_quality_torch", runner_connection=STEADY_CONNECTION, **MODEL_SERVICE)
class TorchModel(ModelService):
    kind = "torch"
    bento_model = BentoModel(SERVED["torch"].tag)

    def __init__(self) -> None:
        # OpenMP reads this when torch loads; set_num_threads alone leaves BentoML's worker threads spinning
        os.environ.setdefault("OMP_NUM_THREADS", str(SETTINGS.torch_threads))
        import torch  # only this service's process pays for torch

        torch.set_num_threads(SETTINGS.torch_threads)
        self.predictor = load_predictor(self.kind, self.bento_model)
        gc.freeze()


class JsonAPI:
    """The HTTP JSON API; a subclass says how rows reach a model."""

    async def predict_one(self, kind: str, row: tuple[float, ...]) -> float:
        raise NotImplementedError

    async def predict_many(self, kind: str, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    async def _one(self, kind: str, wine: Wine) -> Prediction:
        row = wine.as_row()
        served = SERVED[kind]
        quality = await self.predict_one(kind, row)
        low, high = served.intervals(np.array([quality]))
        return Prediction(
            quality=quality,
            interval=Interval(low=float(low[0]), high=float(high[0]), coverage=served.coverage),
            model=served.tag,
            outside_training_range=served.outside_training_range(np.array([row]))[0],
        )

    @bentoml.api(route="/predict")
    async def predict(self, wine: Wine, /) -> Prediction:
        """Grade one wine with the scikit-learn model (the seed's payload)."""
        return await self._one("sklearn", wine)

    @bentoml.api(route="/predict_net")
    async def predict_net(self, wine: Wine, /) -> Prediction:
        """Grade one wine with the PyTorch model (the seed's payload)."""
        return await self._one("torch", wine)

    @bentoml.api(route="/predict_batch")
    async def predict_batch(self, request: BatchRequest, /) -> BatchPrediction:
        """Grade many wines with the chosen model, in one call to that model's service."""
        rows = np.array([wine.as_row() for wine in request.samples])
        qualities = await self.predict_many(request.model, rows)
        served = SERVED[request.model]
        outside = served.outside_training_range(rows)
        lows, highs = served.intervals(qualities)
        coverage = served.coverage
        predictions: list[RowPrediction] = [
            {"quality": q, "interval": {"low": lo, "high": hi, "coverage": coverage}, "outside_training_range": o}
            for q, lo, hi, o in zip(qualities.tolist(), lows.tolist(), highs.tolist(), outside, strict=True)
        ]
        # built from checked values: model_construct skips validating them a second time
        return BatchPrediction.model_construct(model=served.tag, predictions=predictions)

    @bentoml.api(route="/models")
    async def models(self) -> ModelsDescription:
        """The served model versions: tag, creation time, metrics, features, training data checksum (also GET)."""
        return MODELS


ENTRY_SERVICE = {
    "traffic": {"timeout": SETTINGS.request_timeout_s},
    "logging": {"access": {"enabled": SETTINGS.access_log}},
}


@bentoml.service(name="wine_quality", workers=SETTINGS.entry_workers, **ENTRY_SERVICE)
@bentoml.asgi_app(ui_app, path="/ui")
class WineQuality(JsonAPI):
    """Predict a wine's quality grade (0-10) from its 11 physicochemical measurements."""

    sklearn = bentoml.depends(SklearnModel)
    torch = bentoml.depends(TorchModel)

    def __init__(self) -> None:
        self.coalescers: dict[str, Coalescer] = {}
        gc.freeze()

    async def predict_one(self, kind: str, row: tuple[float, ...]) -> float:
        if not SETTINGS.batching:  # one call per request: the baseline the benchmark compares batching with
            return float((await getattr(self, kind).to_async.predict(np.array([row])))[0])
        if kind not in self.coalescers:  # made on first use: dependency clients exist only once the server runs
            call = getattr(self, kind).to_async.predict
            self.coalescers[kind] = Coalescer(
                call, SETTINGS.max_batch_size, SETTINGS.max_in_flight, SETTINGS.model_duty
            )
        return await self.coalescers[kind].predict(row)

    async def predict_many(self, kind: str, rows: np.ndarray) -> np.ndarray:
        return await getattr(self, kind).to_async.predict_rows(rows)  # type: ignore[no-any-return]


def fix_signatures(*services: Any) -> None:
    """Give each API function a fixed signature: BentoML 1.4 re-inspects it on every call (~10 % of a request)."""
    for service in services:
        for api in service.apis.values():
            api.func.__signature__ = inspect.signature(api.func)


def finish_entry(service: Any) -> None:
    """Fixed signatures, and GET /models beside the POST API."""
    fix_signatures(service)
    service.add_asgi_middleware(GetJSON, path="/models", body=MODELS.model_dump_json().encode())


MODELS = ModelsDescription(models={kind: served.describe() for kind, served in SERVED.items()})
fix_signatures(SklearnModel, TorchModel)
finish_entry(WineQuality)
