"""The routes beside BentoML's own APIs, as one FastAPI app; the entry service puts its data plane in its state."""

from __future__ import annotations

from fastapi import FastAPI, Request

from wine_quality.payloads import ModelsDescription
from wine_quality.protocols import feedback, mlflow_scoring, monitoring, v2
from wine_quality.protocols.base import plane


async def models(request: Request) -> ModelsDescription:
    """The served model versions: tag, creation time, metrics, features, training data checksum, runtime."""
    return plane(request).description


def make_routes() -> FastAPI:
    """The app: V2 under /v2, MLflow's /invocations, /ping and /health, /monitoring, /feedback and /models."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(v2.router)
    app.include_router(mlflow_scoring.router)
    app.include_router(monitoring.router)
    app.include_router(feedback.router)
    # one route, three methods: the document names each method's operation apart (models_get, models_head, ...)
    app.add_api_route(
        "/models", models, methods=["GET", "HEAD", "POST"], response_model=ModelsDescription, operation_id="models"
    )
    return app
