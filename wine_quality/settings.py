"""One typed settings object, read from WINE_* environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PIN_FILE = "model-pins.json"


class Settings(BaseSettings):
    """Serving and training settings; every field can be set as WINE_<FIELD> in the environment."""

    model_config = SettingsConfigDict(env_prefix="WINE_", frozen=True, populate_by_name=True)

    # Which model versions are served: WINE_<KIND>_MODEL=name:version wins; otherwise the pin file training writes.
    model_pins: Path = Field(
        PROJECT_ROOT / PIN_FILE,
        validation_alias=AliasChoices("WINE_MODEL_PINS", "WINE_MODELS_LOCK", "model_pins"),
        description="pin file of served model tags (WINE_MODELS_LOCK is the old name)",
    )
    model_tags: dict[str, str] = Field(default_factory=dict, description="served tag per kind, from WINE_<KIND>_MODEL")

    runtime: Literal["onnx", "native"] = Field("onnx", description="what the model services predict with")
    model_threads: int = Field(
        1,
        ge=1,
        validation_alias=AliasChoices("WINE_MODEL_THREADS", "WINE_TORCH_THREADS", "model_threads"),
        description="intra-op threads of each model service's runtime",
    )

    # Adaptive batching of each model service, and coalescing of single rows in the entry service.
    batching: bool = Field(True, description="adaptive batching and coalescing on (off only to measure them)")
    coalesce: bool = Field(True, description="the entry joins concurrent single rows into one model call")
    max_batch_size: int = Field(128, ge=2, description="most rows one adaptive batch may hold")
    max_in_flight: int = Field(2, ge=1, description="concurrent calls from the entry to each model service")
    model_duty: float = Field(0.5, gt=0, le=1, description="most share of time the entry keeps a model service busy")
    max_latency_ms: int = Field(10_000, ge=1, description="a request expected to wait longer is refused with 503")
    # Requests to /predict_batch.
    max_rows_per_request: int = Field(10_000, ge=1, description="most samples one /predict_batch call may send")
    # POST /invocations (MLflow's scoring protocol): the model kind that answers when the request names none.
    invocations_model: str = Field("sklearn", description="kind answering /invocations without ?model=")
    # Training with --track: where MLflow records runs when MLFLOW_TRACKING_URI is unset (train/tracking.py).
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; default sqlite:///<project>/mlflow.db")

    entry_workers: int = Field(1, ge=1, description="processes of the entry service")
    access_log: bool = Field(True, description="log every request to the entry service")
    interval_coverage: float = Field(0.9, gt=0, lt=1, description="coverage of the interval given with each grade")
    request_timeout_s: float = Field(30.0, gt=0, description="per-request timeout of every service (then 504)")

    # The front door (wine_quality/guard.py).
    api_key: SecretStr | None = Field(None, description="when set, every route but probes and documents needs it")
    max_body_bytes: int = Field(8 * 2**20, ge=1024, description="larger request bodies get 413")
    max_concurrent_work: int = Field(
        96, ge=1, description="units of work (a request, plus one per 32 KiB of body) in progress before 503"
    )
    shed_after_ms: int = Field(
        500, ge=0, description="how long work may stand over max_concurrent_work (a burst) before requests get 503"
    )
    # HAProxy's usual `timeout http-request`. Keep it under request_timeout_s: a body stalled longer than that is
    # answered 504 by BentoML's request timeout before it can get 408.
    read_timeout_s: float = Field(
        10.0, gt=0, description="a request's headers, or a pause in its body, longer than this: 408, connection closed"
    )

    # Drift monitoring (wine_quality/monitoring.py): recent rows against the training distributions on /metrics.
    drift: bool = Field(True, description="track drift of inputs and predictions (off only to measure its cost)")
    drift_window: int = Field(
        1000, ge=10, le=1_000_000, description="most recent rows per model the drift is measured over"
    )
    drift_max_age_s: float = Field(3600.0, gt=0, description="rows older than this leave the drift window")
    drift_min_rows: int = Field(100, ge=1, description="fewer rows in the window: no drift figures yet")
    monitor_log: bool = Field(False, description="also log every graded row with bentoml.monitor (files)")

    @model_validator(mode="before")
    @classmethod
    def _tags_from_environment(cls, data: Any) -> Any:
        """WINE_SKLEARN_MODEL, WINE_TORCH_MODEL, ...: one variable per registered kind."""
        from wine_quality.kinds import KINDS

        if isinstance(data, dict) and "model_tags" not in data:
            tags = {
                k: os.environ[f"WINE_{k.upper()}_MODEL"] for k in KINDS if os.environ.get(f"WINE_{k.upper()}_MODEL")
            }
            data = {**data, "model_tags": tags}
        return data


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, built once per process."""
    return Settings()
