"""Settings of payload capture: where graded wines are kept, how often they are written, for how long."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wine_quality.settings import PROJECT_ROOT

SQLITE_FILE = "capture.db"

# The environment variable of each field (CaptureSettings.from_environment reads them).
ENVIRONMENT: dict[str, str] = {
    "enabled": "WINE_CAPTURE",
    "url": "WINE_CAPTURE_URL",
    "directory": "WINE_CAPTURE_DIR",
    "flush_interval_s": "WINE_CAPTURE_FLUSH_INTERVAL_S",
    "buffer_rows": "WINE_CAPTURE_BUFFER_ROWS",
    "retention_days": "WINE_CAPTURE_RETENTION_DAYS",
    "live_window": "WINE_LIVE_WINDOW",
}
# Schemes people write for PostgreSQL, and the SQLAlchemy driver we install for it (psycopg 3).
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_POSTGRES_DRIVER = "postgresql+psycopg://"


class CaptureSettings(BaseModel):
    """Payload capture and feedback; the environment names are in ENVIRONMENT (WINE_CAPTURE_URL, ...)."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = Field(True, description="keep every graded wine and accept feedback (WINE_CAPTURE)")
    url: str | None = Field(
        None,
        description="database URL, e.g. postgresql://user@host/db; default: a SQLite file in `directory`",
    )
    directory: Path = Field(PROJECT_ROOT / "var", description="folder of the default SQLite file, made if missing")
    flush_interval_s: float = Field(1.0, gt=0, le=3600, description="seconds between two writes of the buffer")
    buffer_rows: int = Field(
        100_000, ge=1, description="most rows kept in memory while the database is slow or away; more are dropped"
    )
    retention_days: float | None = Field(
        365, gt=0, description="older wines and their feedback are deleted (none, off or never: kept for ever)"
    )
    live_window: int = Field(500, ge=1, description="live accuracy is measured over this many labelled wines")

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

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> CaptureSettings:
        """The settings from WINE_CAPTURE* and WINE_LIVE_WINDOW; an unset or empty variable keeps the default."""
        env = os.environ if environ is None else environ
        given = {field: env[name] for field, name in ENVIRONMENT.items() if env.get(name, "").strip()}
        return cls.model_validate(given)


def sqlalchemy_url(url: str) -> str:
    """postgresql://... and postgres://... as SQLAlchemy's psycopg URL; any other URL as it is."""
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return _POSTGRES_DRIVER + url[len(scheme) :]
    return url
