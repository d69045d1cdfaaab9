"""Capture migrations: to head on SQLite and PostgreSQL, harmless when run again or by several processes at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect, text

from tests.capture_data import any_database  # noqa: F401  (fixture: database_url)
from tests.postgres import postgres_server  # noqa: F401  (fixture: postgres)
from wine_quality.capture.migrate import head, upgrade
from wine_quality.capture.settings import sqlalchemy_url
from wine_quality.capture.tables import FEATURE_COLUMNS, make_engine, metadata

ROOT = Path(__file__).resolve().parents[2]


def _version(url: str) -> list[str]:
    engine = make_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


def test_upgrade_makes_the_tables_the_code_describes(database_url: str) -> None:
    """After the upgrade the database has both tables with the columns of tables.py, at the head revision."""
    engine = make_engine(sqlalchemy_url(database_url))
    try:
        assert upgrade(engine) == head()
        found = inspect(engine)
        assert {"predictions", "feedback", "alembic_version"} <= set(found.get_table_names())
        for table in metadata.sorted_tables:
            assert [c["name"] for c in found.get_columns(table.name)] == [c.name for c in table.columns]
        assert set(FEATURE_COLUMNS) <= {c["name"] for c in found.get_columns("predictions")}
        assert found.get_indexes("predictions")[0]["column_names"] == ["time"]
        assert upgrade(engine) == head()  # a second upgrade finds nothing to do
    finally:
        engine.dispose()
    assert _version(database_url) == [head()]


def test_concurrent_upgrades_from_several_processes_are_harmless(database_url: str) -> None:
    """Four `python -m wine_quality.capture migrate` started together all succeed; the database is at head once."""
    command = [sys.executable, "-m", "wine_quality.capture", "--url", database_url, "migrate"]
    started = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    started += [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in started]
    assert [p.returncode for p in started] == [0] * 4, outputs
    assert sum("Running upgrade" in out for out in outputs) == 1, outputs  # one did the work, three found it done
    assert all(f"at revision {head()}" in out for out in outputs)
    assert _version(database_url) == [head()]


def test_a_database_ahead_of_the_code_is_left_alone(database_url: str) -> None:
    """A revision this code does not know (a newer release migrated first) is kept, and start-up goes on."""
    engine = make_engine(sqlalchemy_url(database_url))
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
        assert upgrade(engine) == "ffff"
    finally:
        engine.dispose()
