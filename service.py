"""The Bento service: one model service per served model, each with adaptive batching, behind one JSON entry service.

BentoML imports this module in every serving process. What only the entry needs (its data plane, monitoring, the
protocols' FastAPI routes) is imported in the entry's `__init__`, so a model service loads its model and little else.
"""

from __future__ import annotations

import gc
from typing import cast

import bentoml

from wine_quality import bentoml_fixes, http_protocol
from wine_quality.dataplane import DataPlane, Origin
from wine_quality.drain import refuse_new_connections_on_sigterm
from wine_quality.guard import Guard
from wine_quality.kinds import REGRESSION_KINDS, protocol_name
from wine_quality.lazy_app import LazyApp
from wine_quality.openapi_doc import OpenAPIDocument
from wine_quality.payloads import (
    BatchClassification,
    BatchPrediction,
    BatchRequest,
    Classification,
    ClassifyBatchRequest,
    Prediction,
)
from wine_quality.pins import pinned_tag
from wine_quality.request_ids import RequestIds
from wine_quality.schema import WineRequest
from wine_quality.served import served_models
from wine_quality.settings import get_settings
from wine_quality.store import ModelStoreError
from wine_quality.ui import ui_app

SETTINGS = get_settings()
try:  # every patched target as its patch expects it (docs/patches.md), else refuse to start, naming the package
    bentoml_fixes.check()
    http_protocol.check()
except RuntimeError as exc:
    raise SystemExit(f"wine-quality: cannot serve: {exc}") from None
bentoml_fixes.apply()
http_protocol.apply(SETTINGS.requests.read_timeout_s)  # read timeouts, one write per response
try:  # the model services name their pinned versions: a missing pin or model stops the server here, in one line
    from wine_quality.model_service import ClassifierModel, SklearnModel, TorchModel
except ModelStoreError as exc:
    raise SystemExit(f"wine-quality: cannot serve: {exc}") from None
# V2, MLflow's scoring protocol, /monitoring and /models: a FastAPI app that only the entry process builds.
ROUTES = LazyApp("wine_quality.protocols.app:make_routes")
PREDICT, PREDICT_NET, PREDICT_BATCH = (
    Origin("/predict", "json"),
    Origin("/predict_net", "json"),
    Origin("/predict_batch", "json"),
)
CLASSIFY, CLASSIFY_BATCH = Origin("/classify", "json"), Origin("/classify_batch", "json")


@bentoml.service(
    name="wine_quality",
    workers=SETTINGS.server.entry_workers,
    traffic={"timeout": SETTINGS.requests.timeout_s},
    logging={"access": {"enabled": SETTINGS.server.access_log}},
    tracing=SETTINGS.server.bentoml_tracing,
)
@bentoml.asgi_app(ROUTES, path="/")
@bentoml.asgi_app(ui_app, path="/ui")
class WineQuality:
    """Predict a wine's quality grade (0-10) from its 11 physicochemical measurements."""

    sklearn = bentoml.depends(SklearnModel)
    torch = bentoml.depends(TorchModel)
    classifier = bentoml.depends(ClassifierModel)

    @bentoml.on_deployment
    @staticmethod
    def check_models() -> None:
        """Before any worker starts: refuse, in one line, a pinned model that is missing or does not fit."""
        try:
            served_models(SETTINGS)
        except ModelStoreError as exc:
            raise SystemExit(f"wine-quality: cannot serve: {exc}") from None

    def __init__(self) -> None:
        services = {"sklearn": self.sklearn, "torch": self.torch, "classifier": self.classifier}
        self.plane = DataPlane.start(services, SETTINGS)
        ROUTES.app.state.dataplane = self.plane  # what the protocols' routes answer from
        refuse_new_connections_on_sigterm()  # then uvicorn answers what it accepted, and exits
        gc.freeze()  # what start-up made stays out of every later garbage collection

    @bentoml.on_shutdown
    def close(self) -> None:
        """After the last answer: write what capture still holds, so that every answered wine is in the database."""
        self.plane.close()

    async def __is_ready__(self) -> bool:
        """/readyz: 503 while a model service is down (crashed, restarting), 200 once all answer."""
        return await self.plane.ready()

    async def __metrics__(self, content: str) -> str:
        """/metrics: BentoML's metrics, then readiness and the drift of every entry worker's recent rows."""
        return content + await self.plane.metrics()

    @bentoml.api(route=PREDICT.route)
    async def predict(self, wine: WineRequest, /) -> Prediction:
        """Grade one wine with the scikit-learn model (the seed's payload). People can use the page at [/ui](./ui)."""
        return Prediction.of(await self.plane.grade("sklearn", wine.wines(), PREDICT))

    @bentoml.api(route=PREDICT_NET.route)
    async def predict_net(self, wine: WineRequest, /) -> Prediction:
        """Grade one wine with the PyTorch model (the seed's payload)."""
        return Prediction.of(await self.plane.grade("torch", wine.wines(), PREDICT_NET))

    @bentoml.api(route=PREDICT_BATCH.route)
    async def predict_batch(self, request: BatchRequest, /) -> BatchPrediction:
        """Grade many wines with the chosen model, in one call to that model's service."""
        return BatchPrediction.of(await self.plane.grade(request.model, request.wines(), PREDICT_BATCH))

    @bentoml.api(route=CLASSIFY.route)
    async def classify(self, wine: WineRequest, /) -> Classification:
        """The probability of each grade seen in training, and of a good wine, for one wine (the seed's payload)."""
        return Classification.of(await self.plane.classify(wine.wines(), CLASSIFY))

    @bentoml.api(route=CLASSIFY_BATCH.route)
    async def classify_batch(self, request: ClassifyBatchRequest, /) -> BatchClassification:
        """Probabilities for many wines, in one call to the classifier's model service."""
        return BatchClassification.of(await self.plane.classify(request.wines(), CLASSIFY_BATCH))


# The front door (API key, body limit, JSON only, load shedding), and an OpenAPI document that declares it all.
# (`cast`: mypy does not apply class decorators, and @bentoml.service made a Service of the class.)
SERVICE = cast("bentoml.Service[WineQuality]", WineQuality)
JSON_ROUTES = frozenset({*(api.route for api in SERVICE.apis.values()), "/feedback"})
SERVICE.add_asgi_middleware(
    Guard,
    api_key=SETTINGS.requests.api_key.get_secret_value() if SETTINGS.requests.api_key else None,
    max_body_bytes=SETTINGS.requests.max_body_bytes,
    max_work=SETTINGS.requests.max_concurrent_work,
    shed_after_s=SETTINGS.requests.shed_after_ms / 1000,
    json_routes=JSON_ROUTES,
)
SERVICE.add_asgi_middleware(RequestIds)
SERVICE.add_asgi_middleware(
    OpenAPIDocument,
    api_key_required=SETTINGS.requests.api_key is not None,
    json_routes=JSON_ROUTES,
    # V2's {name} and {version}: the served regressors' protocol names and store versions
    path_values={
        "name": [protocol_name(kind) for kind in REGRESSION_KINDS],
        "version": sorted({pinned_tag(kind, SETTINGS.models).partition(":")[2] for kind in REGRESSION_KINDS}),
    },
    mounted=lambda: ROUTES.app,
)
