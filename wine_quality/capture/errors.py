"""What capture and feedback raise, typed so that the HTTP layer maps each to its status (404, 409, 422, 503)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class CaptureError(Exception):
    """Base of every capture error."""


class CaptureUnavailable(CaptureError):
    """The capture database cannot be reached now (HTTP 503); nothing was stored."""


class InvalidFeedback(CaptureError, ValueError):
    """A feedback item is malformed: its grade is not an integer from 0 to 10 (HTTP 422); nothing was stored."""


class FeedbackRejected(CaptureError):
    """Some items of a feedback list cannot be stored, so none was: the ids, by reason."""

    def __init__(self, unknown: list[str], conflicts: dict[str, tuple[int, int]]) -> None:
        self.unknown = unknown  # ids of no captured wine
        self.conflicts = conflicts  # id -> (grade stored before, grade sent now)
        parts = []
        if unknown:
            parts.append(f"no captured wine has the id {', '.join(unknown)}")
        if conflicts:
            listed = ", ".join(f"{i} (stored {old}, sent {new})" for i, (old, new) in conflicts.items())
            parts.append(f"another grade was already received for {listed}")
        super().__init__("; ".join(parts) + "; nothing was stored")


class UnknownPredictions(FeedbackRejected):
    """Some ids are of no captured wine (HTTP 404); the message also names any conflicts in the same list."""


class ConflictingFeedback(FeedbackRejected):
    """Every id is known, but some already have another true grade (HTTP 409)."""


def transient(exc: BaseException) -> bool:
    """Whether a database error may pass by itself (server away, locked, pool exhausted): then rows are kept."""
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )
