"""One typed settings object, read from WINE_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SKLEARN_MODEL_NAME = "wine_quality_sklearn"
TORCH_MODEL_NAME = "wine_quality_torch"


class Settings(BaseSettings):
    """Serving and training settings; every field can be set as WINE_<FIELD> in the environment."""

    model_config = SettingsConfigDict(env_prefix="WINE_", frozen=True)

    # Which model versions are served: an explicit tag wins; otherwise the pin file that training writes.
    models_lock: Path = Field(PROJECT_ROOT / "models.lock.json", description="pin file of served model tags")
    sklearn_model: str | None = Field(None, description="served scikit-learn model tag, e.g. name:version")
    torch_model: str | None = Field(None, description="served torch model tag, e.g. name:version")

    # Adaptive batching of each model service, and coalescing of single rows in the entry service.
    batching: bool = Field(True, description="adaptive batching on (off only to measure what it brings)")
    max_batch_size: int = Field(128, ge=2, description="most rows one adaptive batch may hold")
    max_in_flight: int = Field(2, ge=1, description="concurrent calls from the entry to each model service")
    model_duty: float = Field(0.5, gt=0, le=1, description="most share of time the entry keeps a model service busy")
    max_latency_ms: int = Field(10_000, ge=1, description="a request expected to wait longer is refused with 503")
    # Requests to /predict_batch.
    max_rows_per_request: int = Field(10_000, ge=1, description="most samples one /predict_batch call may send")

    entry_workers: int = Field(1, ge=1, description="processes of the entry service")
    access_log: bool = Field(True, description="log every request to the entry service")
    interval_coverage: float = Field(0.9, gt=0, lt=1, description="coverage of the interval given with each grade")
    torch_threads: int = Field(1, ge=1, description="intra-op threads of the torch service")
    request_timeout_s: float = Field(30.0, gt=0, description="per-request timeout of every service")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, built once per process."""
    return Settings()
