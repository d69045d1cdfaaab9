"""Upgrades the capture database to the newest migration, safely when several processes start at once."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, select

logger = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The key of the PostgreSQL advisory lock every starting process queues on (any fixed number: "wine" in ASCII).
LOCK_KEY = 0x77696E65


def alembic_config() -> Config:
    """Alembic's configuration, made in code: the bento carries the scripts, not an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The newest revision this code knows."""
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None, "no migration scripts found"
    return found


def upgrade(engine: Engine) -> str:
    """Bring the database to head, inside one transaction that first takes a lock; returns the revision it is at.

    PostgreSQL: a transaction-scoped advisory lock, so replicas starting together upgrade one after the other, and
    each later one finds the work done (PostgreSQL's DDL is transactional, so a crash half-way leaves nothing).
    SQLite: the database's own write lock, taken by BEGIN IMMEDIATE (tables.make_engine), has the same effect.
    A database already at a revision this code does not know (a newer release ran first) is left alone.
    """
    config = alembic_config()
    scripts = ScriptDirectory.from_config(config)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
        current = MigrationContext.configure(connection).get_current_revision()
        if current is not None and current not in {s.revision for s in scripts.walk_revisions()}:
            logger.warning("capture database at revision %s, newer than this code's %s: left as it is", current, head())
            return current
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        reached = MigrationContext.configure(connection).get_current_revision()
    if reached != current:
        logger.info("capture database upgraded from revision %s to %s", current, reached)
    assert reached is not None
    return reached
