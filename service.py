"""The Bento service: one model service per served model, each with adaptive batching, behind one JSON entry service."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import anyio
import bentoml
from fastapi import FastAPI

from wine_quality import bentoml_fixes, http_protocol
from wine_quality.classifying import Classifier
from wine_quality.drain import refuse_new_connections_on_sigterm
from wine_quality.grading import Grader
from wine_quality.guard import Guard
from wine_quality.kinds import CLASSIFICATION_KINDS, REGRESSION_KINDS
from wine_quality.model_service import model_dependencies, model_service
from wine_quality.monitoring import exposition
from wine_quality.openapi_doc import OpenAPIDocument
from wine_quality.payloads import (
    BatchClassification,
    BatchPrediction,
    BatchRequestBase,
    Classification,
    ModelsDescription,
    Prediction,
    batch_request,
)
from wine_quality.protocols import current_grader, mlflow_scoring, v2
from wine_quality.protocols.monitoring import router as monitoring_router
from wine_quality.schema import Wine
from wine_quality.served import ServedModel, served_models
from wine_quality.settings import get_settings
from wine_quality.store import ModelStoreError
from wine_quality.ui import ui_app

bentoml_fixes.apply()
http_protocol.apply(get_settings().read_timeout_s)  # read timeouts, one write per response
SETTINGS = get_settings()
try:
    # Resolved once, from pins: a model saved later does not replace the served one.
    SERVED: dict[str, ServedModel] = served_models(SETTINGS)
except ModelStoreError as exc:
    raise SystemExit(f"wine-quality: cannot serve: {exc}") from None

MODEL_SERVICES = {kind: model_service(served, SETTINGS) for kind, served in SERVED.items()}
MODELS = ModelsDescription(models={kind: served.info() for kind, served in SERVED.items()})
GRADED = {kind: SERVED[kind] for kind in REGRESSION_KINDS}  # what /predict*, V2 and /invocations grade with
(CLASSIFIER,) = CLASSIFICATION_KINDS
if TYPE_CHECKING:
    BatchRequest = BatchRequestBase
    ClassifyBatchRequest = BatchRequestBase
else:  # the model names come from the registry, the row limit from the settings
    BatchRequest = batch_request(SETTINGS.max_rows_per_request)
    ClassifyBatchRequest = batch_request(SETTINGS.max_rows_per_request, classify=True)

# Routes beside BentoML's APIs (GET routes, other protocols): BentoML mounts this app after its own routes and puts
# its paths in the OpenAPI document.
routes = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
routes.include_router(v2.router)  # Open Inference Protocol (V2): /v2/...
routes.include_router(mlflow_scoring.router)  # MLflow's scoring protocol: /invocations, /ping, /health
routes.include_router(monitoring_router)  # drift against the training data: GET /monitoring


@bentoml.service(
    name="wine_quality",
    workers=SETTINGS.entry_workers,
    traffic={"timeout": SETTINGS.request_timeout_s},
    logging={"access": {"enabled": SETTINGS.access_log}},
)
@bentoml.asgi_app(routes, path="/")
@bentoml.asgi_app(ui_app, path="/ui")
class WineQuality(model_dependencies(MODEL_SERVICES)):  # type: ignore[misc]
    """Predict a wine's quality grade (0-10) from its 11 physicochemical measurements."""

    def __init__(self) -> None:
        # the Grader reaches every model service (and its readiness covers them all); it grades with the regressors
        self.grader = Grader(GRADED, {kind: getattr(self, kind) for kind in SERVED}, SETTINGS)
        self.classifying = Classifier(self.grader, SERVED[CLASSIFIER])  # not `self.classifier`: the dependency
        routes.dependency_overrides[current_grader] = lambda: self.grader  # the protocol routers grade through it
        refuse_new_connections_on_sigterm()  # then uvicorn answers what it accepted, and exits
        gc.freeze()  # what start-up made stays out of every later garbage collection

    async def __is_ready__(self) -> bool:
        """/readyz: 503 while a model service is down (crashed, restarting), 200 once all answer."""
        return await self.grader.ready()

    async def __metrics__(self, content: str) -> str:
        """/metrics: BentoML's metrics, then readiness and the drift of every entry worker's recent rows."""
        ready = await self.grader.ready()  # the drift is computed in a thread: the event loop keeps answering
        return content + await anyio.to_thread.run_sync(exposition, self.grader.monitor, ready)

    @bentoml.api(route="/predict")
    async def predict(self, wine: Wine, /) -> Prediction:
        """Grade one wine with the scikit-learn model (the seed's payload). People can use the page at [/ui](./ui)."""
        return await self.grader.one("sklearn", wine.as_row())

    @bentoml.api(route="/predict_net")
    async def predict_net(self, wine: Wine, /) -> Prediction:
        """Grade one wine with the PyTorch model (the seed's payload)."""
        return await self.grader.one("torch", wine.as_row())

    @bentoml.api(route="/predict_batch")
    async def predict_batch(self, request: BatchRequest, /) -> BatchPrediction:
        """Grade many wines with the chosen model, in one call to that model's service."""
        return await self.grader.many(request.model, request.rows())

    @bentoml.api(route="/classify")
    async def classify(self, wine: Wine, /) -> Classification:
        """The probability of each grade seen in training, and of a good wine, for one wine (the seed's payload)."""
        return await self.classifying.one(wine.as_row())

    @bentoml.api(route="/classify_batch")
    async def classify_batch(self, request: ClassifyBatchRequest, /) -> BatchClassification:
        """Probabilities for many wines, in one call to the classifier's model service."""
        return await self.classifying.many(request.rows())

    @routes.api_route("/models", methods=["GET", "HEAD", "POST"], response_model=ModelsDescription)
    async def models(self) -> ModelsDescription:
        """The served model versions: tag, creation time, metrics, features, training data checksum, runtime."""
        return MODELS


# The front door (API key, body limit, JSON only, load shedding), and an OpenAPI document that declares it all.
JSON_ROUTES = frozenset(api.route for api in WineQuality.apis.values())
WineQuality.add_asgi_middleware(
    Guard,
    api_key=SETTINGS.api_key.get_secret_value() if SETTINGS.api_key else None,
    max_body_bytes=SETTINGS.max_body_bytes,
    max_work=SETTINGS.max_concurrent_work,
    shed_after_s=SETTINGS.shed_after_ms / 1000,
    json_routes=JSON_ROUTES,
)
WineQuality.add_asgi_middleware(
    OpenAPIDocument,
    api_key_required=SETTINGS.api_key is not None,
    json_routes=JSON_ROUTES,
    # the V2 routes' {name} and {version}: the served models' names and store versions
    path_values={
        "name": [v2.model_name(kind) for kind in SERVED],
        "version": sorted({served.tag.split(":")[1] for served in SERVED.values()}),
    },
)
