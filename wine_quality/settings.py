"""One typed settings object, grouped by concern, read from WINE_* environment variables.

Each group is its own pydantic-settings model with the prefix `WINE_`, so a field keeps a flat environment name
(`batching.max_batch_size` is WINE_MAX_BATCH_SIZE); where a name would repeat its group's (`drift.enabled`), the field
names its variable (WINE_DRIFT). docs/settings.md is generated from these models.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PIN_FILE = "model-pins.json"
SQLITE_FILE = "capture.db"
# Seconds a stopping server gives the model services beyond the request timeout, so that they answer the last calls
# of the entry's accepted requests.
DRAIN_MARGIN_S = 5.0
_GROUP = SettingsConfigDict(env_prefix="WINE_", frozen=True, extra="ignore", populate_by_name=True)


class ModelSettings(BaseSettings):
    """Which model versions are served, and how they run."""

    model_config = _GROUP

    pins: Path = Field(
        PROJECT_ROOT / PIN_FILE, validation_alias="WINE_MODEL_PINS", description="pin file of served model tags"
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="served tag of a kind (name:version), wins over the pin file",
        json_schema_extra={"env": "WINE_<KIND>_MODEL"},
    )
    runtime: Literal["onnx", "native"] = Field("onnx", description="what the model services predict with")
    threads: int = Field(
        1, ge=1, validation_alias="WINE_MODEL_THREADS", description="intra-op threads of each model service's runtime"
    )
    interval_coverage: float = Field(0.9, gt=0, lt=1, description="coverage of the interval given with each grade")

    @model_validator(mode="before")
    @classmethod
    def _tags_from_environment(cls, data: Any) -> Any:
        """WINE_SKLEARN_MODEL, WINE_TORCH_MODEL, ...: one variable per registered kind."""
        from wine_quality.kinds import KINDS

        if isinstance(data, dict) and "tags" not in data:
            found = {k: os.environ.get(f"WINE_{k.upper()}_MODEL", "") for k in KINDS}
            data = {**data, "tags": {k: tag for k, tag in found.items() if tag}}
        return data


class BatchingSettings(BaseSettings):
    """Adaptive batching in each model service, and the joining of single rows in the entry."""

    model_config = _GROUP

    enabled: bool = Field(
        True, validation_alias="WINE_BATCHING", description="adaptive batching and coalescing on (off only to measure)"
    )
    coalesce: bool = Field(True, description="the entry joins concurrent single rows into one model call")
    max_batch_size: int = Field(128, ge=2, description="most rows one adaptive batch may hold")
    max_in_flight: int = Field(2, ge=1, description="concurrent calls from the entry to each model service")
    model_duty: float = Field(0.5, gt=0, le=1, description="most share of time the entry keeps a model service busy")
    max_latency_ms: int = Field(10_000, ge=1, description="a request expected to wait longer is refused with 503")


class RequestSettings(BaseSettings):
    """What one request may ask and how long it may take: the front door's limits."""

    model_config = _GROUP

    timeout_s: float = Field(
        30.0,
        gt=0,
        validation_alias="WINE_REQUEST_TIMEOUT_S",
        description="per-request timeout of every service (then 504); stopping servers drain for this long",
    )
    max_rows: int = Field(
        10_000, ge=1, validation_alias="WINE_MAX_ROWS_PER_REQUEST", description="most wines one request may send"
    )
    max_body_bytes: int = Field(8 * 2**20, ge=1024, description="larger request bodies get 413")
    max_concurrent_work: int = Field(
        96, ge=1, description="units of work (a request, plus one per 32 KiB of body) in progress before 503"
    )
    shed_after_ms: int = Field(
        500, ge=0, description="how long work may stand over max_concurrent_work (a burst) before requests get 503"
    )
    # HAProxy's usual `timeout http-request`. Keep it under the request timeout: a body stalled longer than that is
    # answered 504 by BentoML's request timeout before it can get 408.
    read_timeout_s: float = Field(
        10.0, gt=0, description="a request's headers, or a pause in its body, longer than this: 408, connection closed"
    )
    api_key: SecretStr | None = Field(
        None, description="when set, every route but probes, documents and the page needs `Authorization: Bearer`"
    )

    @property
    def drain_s(self) -> float:
        """The longest a server takes to stop after SIGTERM: the entry answers what it accepted, which may take the
        whole request timeout, and the model services answer its last calls. Kubernetes' grace period is this plus
        the pre-stop pause (tests/unit/test_k8s_manifests.py)."""
        return self.timeout_s + DRAIN_MARGIN_S


class ServerSettings(BaseSettings):
    """The services' processes, the entry's logs, and the protocols' defaults."""

    model_config = _GROUP

    entry_workers: int = Field(1, ge=1, description="processes of the entry service")
    model_workers: int = Field(
        1, ge=1, description="processes of each model service: with 2, one answers while the other restarts"
    )
    access_log: bool = Field(True, description="log every request to the entry service")
    tracing: bool = Field(
        False,
        description="an OpenTelemetry span for every request, exported as BentoML's `tracing` configuration says "
        "(off: no request makes a span, which saves about two fifths of the entry's CPU)",
    )
    invocations_model: Literal["sklearn", "torch"] = Field(
        "sklearn", description="model kind answering POST /invocations without ?model="
    )

    @property
    def bentoml_tracing(self) -> dict[str, Any]:
        """Every service's BentoML `tracing` configuration: with tracing off, every URL is excluded from spans."""
        return {} if self.tracing else {"excluded_urls": ".*"}


class DriftSettings(BaseSettings):
    """Drift monitoring: the recent rows of each model against its training distributions."""

    model_config = _GROUP

    enabled: bool = Field(
        True, validation_alias="WINE_DRIFT", description="track drift of inputs and predictions (off only to measure)"
    )
    window: int = Field(
        1000, ge=10, le=1_000_000, validation_alias="WINE_DRIFT_WINDOW", description="most recent rows per model"
    )
    max_age_s: float = Field(
        3600.0, gt=0, validation_alias="WINE_DRIFT_MAX_AGE_S", description="rows older than this leave the window"
    )
    min_rows: int = Field(
        100, ge=1, validation_alias="WINE_DRIFT_MIN_ROWS", description="fewer rows in the window: no figures yet"
    )
    monitor_log: bool = Field(False, description="also log every graded row with bentoml.monitor (files)")


class CaptureSettings(BaseSettings):
    """Payload capture and feedback: where graded wines are kept, how often they are written, for how long."""

    model_config = _GROUP

    enabled: bool = Field(
        True, validation_alias="WINE_CAPTURE", description="keep every graded wine and accept feedback"
    )
    url: str | None = Field(
        None,
        validation_alias="WINE_CAPTURE_URL",
        description="database URL, e.g. postgresql://user@host/db; default: a SQLite file in WINE_CAPTURE_DIR",
    )
    directory: Path = Field(
        PROJECT_ROOT / "var",
        validation_alias="WINE_CAPTURE_DIR",
        description="folder of the default SQLite file (capture.db), made if missing",
    )
    flush_interval_s: float = Field(
        1.0, gt=0, le=3600, validation_alias="WINE_CAPTURE_FLUSH_INTERVAL_S", description="seconds between two writes"
    )
    buffer_rows: int = Field(
        100_000,
        ge=1,
        validation_alias="WINE_CAPTURE_BUFFER_ROWS",
        description="most rows kept in memory while the database is slow or away; more are dropped, and counted",
    )
    retention_days: float | None = Field(
        365,
        gt=0,
        validation_alias="WINE_CAPTURE_RETENTION_DAYS",
        description="older wines and their feedback are deleted (none, off or never: kept for ever)",
    )
    live_window: int = Field(
        500,
        ge=1,
        validation_alias="WINE_LIVE_WINDOW",
        description="live accuracy is measured over this many labelled wines",
    )

    @field_validator("retention_days", mode="before")
    @classmethod
    def _forever(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in ("none", "off", "never") else value

    @field_validator("url", mode="before")
    @classmethod
    def _blank_url(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    def database_url(self) -> str:
        """The SQLAlchemy URL: PostgreSQL URLs get the psycopg driver; no URL is the SQLite file (folder made)."""
        if self.url is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{self.directory.resolve() / SQLITE_FILE}"
        return sqlalchemy_url(self.url)


def sqlalchemy_url(url: str) -> str:
    """postgresql://... and postgres://... as SQLAlchemy's psycopg URL (the driver installed); any other as it is."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


class TrainingSettings(BaseSettings):
    """Training's own settings."""

    model_config = _GROUP

    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI of `--track`; default sqlite:///<project>/mlflow.db"
    )


class Settings(BaseModel):
    """Every setting of serving and training, by concern (each group reads its own variables)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: ModelSettings = Field(default_factory=ModelSettings)
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    requests: RequestSettings = Field(default_factory=RequestSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)


GROUPS = tuple(Settings.model_fields.values())


def env_name(group: Any, field: str) -> str:
    """The environment variable of a group's field: the one it names, else WINE_<FIELD>."""
    info = group.model_fields[field]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if isinstance(extra.get("env"), str):
        return str(extra["env"])
    return info.validation_alias if isinstance(info.validation_alias, str) else f"WINE_{field.upper()}"


def env_names(group: Any) -> list[str]:
    """Every environment variable of a settings group, in field order."""
    return [env_name(group, field) for field in group.model_fields]


class SettingsError(ValueError):
    """A setting the environment gives a value it cannot take: the message names the variable."""


def read_settings() -> Settings:
    """The settings from the environment; a bad value is a SettingsError naming its WINE_ variable."""
    try:
        return Settings()
    except ValidationError as exc:
        groups: dict[str, Any] = {getattr(f.annotation, "__name__", ""): f.annotation for f in GROUPS}
        group = groups.get(exc.title)
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = env_name(group, field) if group is not None and field in group.model_fields else field
            problems.append(f"{name}={error['input']!r}: {error['msg']}")
        raise SettingsError("; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, built once per process."""
    return read_settings()
