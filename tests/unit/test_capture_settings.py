"""Capture settings: their environment names, the PostgreSQL driver, the default SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from wine_quality.settings import CaptureSettings, SettingsError, env_names, read_settings, sqlalchemy_url


def test_defaults_keep_a_sqlite_file_under_the_project(monkeypatch: pytest.MonkeyPatch) -> None:
    """Capture is on, writes every second, keeps 100,000 rows at most in memory and a year of wines."""
    monkeypatch.delenv("WINE_CAPTURE_DIR", raising=False)  # tests/conftest.py points it at the session's folder
    s = CaptureSettings()
    assert (s.enabled, s.url, s.flush_interval_s, s.buffer_rows, s.live_window) == (True, None, 1.0, 100_000, 500)
    assert s.retention_days == 365 and s.directory.name == "var"


def test_every_setting_comes_from_its_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """WINE_CAPTURE, WINE_CAPTURE_URL, ..., WINE_LIVE_WINDOW are read as text, like the rest of the settings."""
    env = {
        "WINE_CAPTURE": "false",
        "WINE_CAPTURE_URL": "postgresql://wine@db.example/capture",
        "WINE_CAPTURE_DIR": str(tmp_path),
        "WINE_CAPTURE_FLUSH_INTERVAL_S": "0.25",
        "WINE_CAPTURE_BUFFER_ROWS": "1000",
        "WINE_CAPTURE_RETENTION_DAYS": "30",
        "WINE_LIVE_WINDOW": "50",
    }
    assert set(env) == set(env_names(CaptureSettings))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = CaptureSettings()
    assert s == CaptureSettings(
        enabled=False,
        url="postgresql://wine@db.example/capture",
        directory=tmp_path,
        flush_interval_s=0.25,
        buffer_rows=1000,
        retention_days=30,
        live_window=50,
    )
    assert s.database_url() == "postgresql+psycopg://wine@db.example/capture"


def test_empty_variables_keep_defaults_and_off_keeps_wines_for_ever(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty variable is unset; WINE_CAPTURE_RETENTION_DAYS=off means no deletion."""
    monkeypatch.setenv("WINE_CAPTURE_URL", " ")
    monkeypatch.setenv("WINE_CAPTURE_RETENTION_DAYS", "off")
    s = CaptureSettings()
    assert s.url is None and s.retention_days is None


def test_bad_values_are_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zero flush interval or buffer, a negative retention are refused, naming the variable."""
    for name, value in (("WINE_CAPTURE_FLUSH_INTERVAL_S", "0"), ("WINE_CAPTURE_BUFFER_ROWS", "0")):
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(SettingsError, match=f"{name}='0'"):
                read_settings()


def test_postgresql_urls_get_the_psycopg_driver() -> None:
    """postgresql:// and postgres:// use psycopg 3; a URL naming its driver, or SQLite's, is left as it is."""
    assert (
        sqlalchemy_url("postgresql://u:p@h:5433/db?sslmode=require")
        == "postgresql+psycopg://u:p@h:5433/db?sslmode=require"
    )
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert sqlalchemy_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_the_default_database_is_a_sqlite_file_in_a_folder_made_for_it(tmp_path: Path) -> None:
    """Without a URL the database is capture.db in WINE_CAPTURE_DIR, which is created."""
    folder = tmp_path / "a" / "b"
    url = CaptureSettings(directory=folder).database_url()
    assert url == f"sqlite:///{folder / 'capture.db'}" and folder.is_dir()
