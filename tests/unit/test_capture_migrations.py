"""Capture migrations: to head on SQLite and PostgreSQL, harmless when run again or by several processes at once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from tests.capture_data import any_database  # noqa: F401  (fixture: database_url)
from tests.postgres import postgres_server  # noqa: F401  (fixture: postgres)
from wine_quality.capture.batch import FEATURE_COLUMNS
from wine_quality.capture.migrate import head, upgrade
from wine_quality.capture.tables import make_engine, metadata
from wine_quality.settings import sqlalchemy_url

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(sqlalchemy_url(url))
    try:
        yield engine
    finally:
        engine.dispose()


def _version(url: str) -> list[str]:
    with _engine(url) as engine, engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))]


def test_upgrade_makes_the_tables_the_code_describes(database_url: str) -> None:
    """After the upgrade the database has both tables with the columns of tables.py, at the head revision."""
    with _engine(database_url) as engine:
        assert upgrade(engine) == head()
        found = inspect(engine)
        assert {"predictions", "feedback", "alembic_version"} <= set(found.get_table_names())
        for table in metadata.sorted_tables:
            assert [c["name"] for c in found.get_columns(table.name)] == [c.name for c in table.columns]
        assert set(FEATURE_COLUMNS) <= {c["name"] for c in found.get_columns("predictions")}
        assert found.get_indexes("predictions")[0]["column_names"] == ["time"]
        assert upgrade(engine) == head()  # a second upgrade finds nothing to do
    assert _version(database_url) == [head()]


def test_the_migrations_build_exactly_the_tables_of_tables_py(database_url: str) -> None:
    """Alembic's autogenerate compares the migrated database with tables.py and finds nothing to add or change."""
    with _engine(database_url) as engine:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []


def test_concurrent_upgrades_from_several_processes_are_harmless(database_url: str) -> None:
    """Four `python -m wine_quality.capture migrate` started together all succeed; the database is at head once."""
    command = [sys.executable, "-m", "wine_quality.capture", "--url", database_url, "migrate"]
    started = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in started]
    assert [p.returncode for p in started] == [0] * 4, outputs
    assert sum("Running upgrade" in out for out in outputs) == 1, outputs  # one did the work, three found it done
    assert all(f"at revision {head()}" in out for out in outputs)
    assert _version(database_url) == [head()]


def test_a_database_ahead_of_the_code_is_left_alone(database_url: str) -> None:
    """A revision this code does not know (a newer release migrated first) is kept, and start-up goes on."""
    with _engine(database_url) as engine:
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
        assert upgrade(engine) == "ffff"
