"""The capture tables (SQLAlchemy Core, one definition for SQLite and PostgreSQL) and the engine that reaches them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    Engine,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    create_engine,
    event,
)

from wine_quality.capture.batch import FEATURE_COLUMNS

# Named constraints, so that a later migration can name what it alters on both databases.
metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)

ID_LENGTH = 36  # a UUID as text: time-ordered, so text order is time order on both databases

predictions = Table(
    "predictions",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("route", Text, nullable=False),
    Column("protocol", Text, nullable=False),
    Column("request_id", Text),
    Column("model_tag", Text, nullable=False),
    Column("runtime", Text, nullable=False),
    Column("model_kind", Text, nullable=False),
    Column("wine_type", Text, nullable=False),
    *(Column(name, Double, nullable=False) for name in FEATURE_COLUMNS),
    Column("grade", Double),
    # JSON null would be a value that SQL's IS NULL misses: a missing answer is stored as SQL NULL
    Column("probabilities", JSON(none_as_null=True)),
    Column("interval_low", Double),
    Column("interval_high", Double),
    Column("interval_coverage", Double),
    Column("outside_training_range", JSON(none_as_null=True), nullable=False),
    Index(None, "time"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", String(ID_LENGTH), ForeignKey(predictions.c.id, ondelete="CASCADE"), primary_key=True),
    Column("grade", SmallInteger, nullable=False),
    Column("received", DateTime(timezone=True), nullable=False),
    CheckConstraint("grade >= 0 AND grade <= 10", name="grade_range"),
)

SQLITE_BUSY_TIMEOUT_S = 30  # a writer waits this long for another process's write to finish
POSTGRES_CONNECT_TIMEOUT_S = 5  # a flush during an outage gives up this soon, and tries again next interval


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for a capture database (options: create_engine's); SQLite gets WAL, foreign keys and transactions
    that lock at BEGIN."""
    if not url.startswith("sqlite"):
        # pre-ping: after the server restarted, a pooled connection is found dead and replaced, not used to fail
        connect = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S} if url.startswith("postgresql+psycopg") else {}
        return create_engine(url, pool_pre_ping=True, connect_args=connect, **options)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, **options)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Python's sqlite3 would BEGIN only before DML and run DDL outside any transaction: it is told not to begin at
    # all, and _sqlite_begin does, so that migrations and feedback are one transaction each.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers of other processes do not block the writer
    # a commit is not synced to disk: a process's crash loses nothing committed, a power loss may lose the last
    # commits, never the file (SQLite's advice for WAL). The buffer of wines not yet written is a larger window, and a
    # sync per flush cost 12-15 % of the writer's CPU (python -m benchmarks.capture_flush --batch 1000)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock at once: two processes that both read, then write (two migrations, two
    # feedbacks for one wine) wait for each other instead of one failing with "database is locked" at its write
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def utc(moment: datetime) -> datetime:
    """A time read back as aware UTC: SQLite gives naive UTC, PostgreSQL the session's time zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
