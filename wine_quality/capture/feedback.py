"""Tasters' true grades for captured wines: checked as a whole, stored all or nothing, idempotent."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from wine_quality.capture.errors import ConflictingFeedback, InvalidFeedback, UnknownPredictions
from wine_quality.capture.tables import ID_LENGTH, feedback, predictions, utc
from wine_quality.schema import TARGET_HIGH, TARGET_LOW

CHUNK = 500  # ids per IN (...) list: far under SQLite's limit of bound parameters


class StoredFeedback(BaseModel):
    """One true grade as the database holds it after the call."""

    id: str = Field(description="the captured wine's id")
    grade: int = Field(ge=TARGET_LOW, le=TARGET_HIGH, description="the true grade")
    received: datetime = Field(description="when that grade was first received (UTC)")
    new: bool = Field(description="false when the same grade had been received before (a resend)")


def checked(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The items as id -> grade, in order; InvalidFeedback names every bad item (one id twice with two grades too)."""
    grades: dict[str, int] = {}
    problems = []
    for position, (wine, grade) in enumerate(items):
        if not isinstance(wine, str) or isinstance(grade, bool) or not isinstance(grade, int):
            problems.append(f"item {position}: an id (text) and a grade (integer) are needed, not {wine!r}, {grade!r}")
        elif not TARGET_LOW <= grade <= TARGET_HIGH:
            problems.append(f"item {position} ({wine}): grade {grade} is not from {TARGET_LOW} to {TARGET_HIGH}")
        elif grades.setdefault(wine, grade) != grade:
            problems.append(f"item {position}: {wine} is sent twice, with grades {grades[wine]} and {grade}")
    if problems:
        raise InvalidFeedback("; ".join(problems) + "; nothing was stored")
    return grades


def store(engine: Engine, grades: dict[str, int], now: datetime) -> list[StoredFeedback]:
    """Store the grades in one transaction, or none of them (UnknownPredictions, ConflictingFeedback)."""
    try:
        return _store(engine, grades, now)
    except IntegrityError:
        # another process stored a grade for one of these ids between our read and our insert (PostgreSQL's read
        # committed; SQLite's BEGIN IMMEDIATE cannot interleave): once more, that grade is now seen and judged
        return _store(engine, grades, now)


def _store(engine: Engine, grades: dict[str, int], now: datetime) -> list[StoredFeedback]:
    with engine.begin() as connection:
        known, before = _lookup(connection, list(grades))
        unknown = [wine for wine in grades if wine not in known]
        conflicts = {w: (before[w][0], g) for w, g in grades.items() if w in before and before[w][0] != g}
        if unknown:
            raise UnknownPredictions(unknown, conflicts)
        if conflicts:
            raise ConflictingFeedback([], conflicts)
        fresh = [{"id": w, "grade": g, "received": now} for w, g in grades.items() if w not in before]
        if fresh:
            connection.execute(feedback.insert(), fresh)
    return [
        StoredFeedback(id=w, grade=g, received=utc(before[w][1]) if w in before else now, new=w not in before)
        for w, g in grades.items()
    ]


def _lookup(connection: Connection, ids: list[str]) -> tuple[set[str], dict[str, tuple[int, datetime]]]:
    """Which ids are captured wines, and the grades already received for any of them."""
    known: set[str] = set()
    before: dict[str, tuple[int, datetime]] = {}
    # text that cannot be a stored id is unknown without asking (PostgreSQL refuses a NUL byte with an error)
    ids = [wine for wine in ids if len(wine) <= ID_LENGTH and "\x00" not in wine]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        known.update(connection.scalars(select(predictions.c.id).where(predictions.c.id.in_(chunk))))
        query = select(feedback.c.id, feedback.c.grade, feedback.c.received).where(feedback.c.id.in_(chunk))
        before.update({row.id: (row.grade, row.received) for row in connection.execute(query)})
    return known, before
