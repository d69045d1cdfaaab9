"""POST /feedback: the tasters' true grades of wines graded earlier, named by the ids their answers carried.

One grade (`{"id": ..., "quality": 6}`) or a list of them, up to the row limit. A list is stored all or nothing, in one
transaction: an unknown id is a 404 naming every unknown id, another grade already received for an id a 409 naming
each (the same grade again is accepted, so a corrected list can be sent again whole), and nothing of that list is
stored. The data plane's capture does the work (wine_quality/capture); with capture off this route answers 503.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator
from starlette.exceptions import HTTPException

from wine_quality.capture.errors import (
    CaptureUnavailable,
    ConflictingFeedback,
    FeedbackRejected,
    InvalidFeedback,
    UnknownPredictions,
)
from wine_quality.payloads import MAX_ROWS
from wine_quality.protocols.base import answering, plane
from wine_quality.schema import TARGET_HIGH, TARGET_LOW, first_error


class TasterGrade(BaseModel):
    """A wine's true grade, as a tasting panel gave it."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"example": {"id": "0193...", "quality": 6}}
    )

    id: str = Field(min_length=1, max_length=64, description="the wine's id, from the answer that graded it")
    quality: int = Field(ge=TARGET_LOW, le=TARGET_HIGH, description="the true grade, an integer from 0 to 10")

    @field_validator("quality", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        """6.0 is the integer 6, as JSON Schema's `integer` says; 6.5, "6" and true are still refused."""
        return int(value) if isinstance(value, float) and value.is_integer() else value


# A rule across items that JSON Schema cannot state, so the description does (as the wines' SO2 rule)
ONE_GRADE_EACH = "An id may come twice only with the same grade: one wine given two grades is refused (400)."
Grades = Annotated[
    list[TasterGrade], Field(min_length=1, max_length=MAX_ROWS, description=f"Tasters' grades. {ONE_GRADE_EACH}")
]
# One grade or a list: the body's JSON type says which, so a bad item is named once, in its own form's terms.
Body = Annotated[
    Annotated[TasterGrade, Tag("one")] | Annotated[Grades, Tag("list")],
    Discriminator(lambda value: "list" if isinstance(value, list) else "one"),
]


class Stored(BaseModel):
    """A true grade as it is stored."""

    id: str
    quality: int
    received: datetime = Field(description="when the grade was first received")
    new: bool = Field(description="false when the same grade had been received before (sent again: accepted)")


class FeedbackAnswer(BaseModel):
    """What was stored, in the order sent."""

    stored: list[Stored]


class FeedbackProblem(BaseModel):
    """Feedback that could not be stored, and why: nothing of the request was stored."""

    error: str
    unknown: list[str] = Field(default_factory=list, description="ids of no graded wine")
    conflicts: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="id -> {stored, sent}: another grade was already received for it"
    )
    detail: list[dict[str, Any]] | None = Field(None, description="for a malformed body: pydantic's errors")


def _problem(status: int, error: str, **extra: Any) -> JSONResponse:
    return JSONResponse(FeedbackProblem(error=error, **extra).model_dump(exclude_defaults=True), status_code=status)


def _rejected(status: int, exc: FeedbackRejected) -> JSONResponse:
    conflicts = {i: {"stored": old, "sent": new} for i, (old, new) in exc.conflicts.items()}
    return _problem(status, str(exc), unknown=exc.unknown, conflicts=conflicts)


def _refusal(exc: Exception) -> Response | None:
    """A malformed body is a 400 (the JSON routes' shape); capture's refusals keep their status."""
    if isinstance(exc, RequestValidationError):
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return _problem(400, first_error(exc), detail=detail)
    if isinstance(exc, HTTPException):  # a body FastAPI cannot read (not UTF-8): Starlette's error, in our shape
        return _problem(exc.status_code, f"the body cannot be read as JSON: {exc.detail}")
    if isinstance(exc, InvalidFeedback):
        return _problem(400, str(exc))
    if isinstance(exc, UnknownPredictions | ConflictingFeedback):
        return _rejected(404 if isinstance(exc, UnknownPredictions) else 409, exc)
    if isinstance(exc, CaptureUnavailable):
        return _problem(503, str(exc))
    return None


router = APIRouter(tags=["Feedback"], route_class=answering(_refusal))
ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": FeedbackProblem,
        "description": "a malformed body: a grade out of 0-10, a missing id, a list too long",
    },
    404: {
        "model": FeedbackProblem,
        "description": "an id of no graded wine (the list names every one); nothing stored",
    },
    409: {"model": FeedbackProblem, "description": "another grade was received before for an id; nothing stored"},
    503: {"model": FeedbackProblem, "description": "the capture database is unreachable, or capture is off"},
}


# a plain function: FastAPI runs it in a thread, and storing waits on the database
@router.post("/feedback", response_model=FeedbackAnswer, responses=ANSWERS)
def feedback(body: Body, request: Request) -> FeedbackAnswer | JSONResponse:
    """Store the tasters' true grades of wines graded earlier: one `{"id", "quality"}` or a list of them."""
    capture = plane(request).capture
    if capture is None:
        return _problem(503, "feedback needs payload capture, which is off (WINE_CAPTURE=false)")
    grades = [body] if isinstance(body, TasterGrade) else body
    stored = capture.feedback([(g.id, g.quality) for g in grades])
    return FeedbackAnswer(stored=[Stored(id=s.id, quality=s.grade, received=s.received, new=s.new) for s in stored])
