"""What every protocol router shares: the physical checks on a whole array of rows, its error shape, its schemas."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
from bentoml.exceptions import BentoMLException
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from wine_quality.grading import Graded, Grader
from wine_quality.protocols import current_grader
from wine_quality.schema import FEATURE_NAMES, FEATURES, FREE_ABOVE_TOTAL, FREE_INDEX, TOTAL_INDEX

LOW = np.array([f.low for f in FEATURES])
HIGH = np.array([f.high for f in FEATURES])


def grader_of(request: Request) -> Grader:
    """The running service's Grader: what `current_grader` gives (the service overrides it), called right here.

    Not `Depends(current_grader)`: FastAPI runs a plain function dependency in its thread pool, and that hand-off,
    with the dependency solving around it, cost a single-row request about 0.2 ms of the entry process's CPU.
    """
    provider: Callable[[], Grader] = request.app.dependency_overrides.get(current_grader, current_grader)
    return provider()


_SHOWN = 3  # a 1,000-row request with every value wrong names the first few, and how many there are


class ProtocolError(Exception):
    """A request a protocol refuses: the status and the message its error shape carries."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def _more(count: int) -> str:
    return f" (and {count - _SHOWN} more)" if count > _SHOWN else ""


def row_problems(rows: np.ndarray, label: Callable[[int], str] = lambda i: f"row {i}") -> str | None:
    """What makes rows [N, 11] impossible wines, with the same bounds and SO2 rule as /predict; None if nothing.

    Checked on the whole array at once: a 1,000-row request costs a few numpy comparisons, not 11,000 objects.
    """
    bad = ~((rows >= LOW) & (rows <= HIGH))  # NaN compares false: refused with the infinities
    if bad.any():
        where = np.argwhere(bad)
        shown = "; ".join(
            f"{label(int(r))}, {FEATURE_NAMES[c]}: {float(rows[r, c])!r} is not within its physical bounds "
            f"[{FEATURES[c].low:g}, {FEATURES[c].high:g}] {FEATURES[c].unit}"
            for r, c in where[:_SHOWN]
        )
        return shown + _more(len(where))
    above = np.flatnonzero(rows[:, FREE_INDEX] > rows[:, TOTAL_INDEX])
    if len(above):
        return "; ".join(f"{label(int(r))}: {FREE_ABOVE_TOTAL}" for r in above[:_SHOWN]) + _more(len(above))
    return None


def pydantic_problem(exc: ValidationError | RequestValidationError) -> str:
    """The first validation error as one line naming where and what: `inputs.0.shape: Field required`."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if not str(part).startswith(("list[", "dict[")))
    return f"{where or 'body'}: {first['msg']}"


def protocol_route(error_body: Callable[[str, int], dict[str, Any]]) -> type[APIRoute]:
    """A route class that answers a ProtocolError, and FastAPI's own validation errors, in the protocol's error shape.

    FastAPI answers its own validation errors with 422 by default; a protocol's clients expect a 400.
    """

    class ProtocolRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    return await handle(request)
                except RequestValidationError as exc:
                    return JSONResponse(error_body(pydantic_problem(exc), 400), status_code=400)
                except ProtocolError as exc:
                    return JSONResponse(error_body(exc.message, exc.status), status_code=exc.status)

            return handler

    return ProtocolRoute


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` written in place: for a request body declared in `openapi_extra`."""
    schema = model.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve({**defs[ref.removeprefix("#/$defs/")], **{k: v for k, v in node.items() if k != "$ref"}})
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


async def graded(grader: Grader, kind: str, rows: np.ndarray) -> Graded:
    """Grades from the kind's model service; a refusal there (overloaded, timed out) keeps its status."""
    try:
        return await grader.grade(kind, rows)
    except BentoMLException as exc:
        raise ProtocolError(str(exc), int(exc.error_code)) from exc


async def service_ready(grader: Grader, kind: str) -> bool:
    """Whether the kind's model service answers its readiness probe."""
    is_ready = getattr(grader.services[kind], "is_ready", None)
    if is_ready is None:  # the model service runs in this process: ready once made
        return True
    try:
        return bool(await is_ready(5))
    except Exception:  # a probe that cannot reach the model service has its answer: not ready
        return False


def error_responses(model: type[BaseModel], statuses: dict[int | str, str]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries of a route's error statuses, all in one error shape.

    "4XX" too: FastAPI documents a 422 for any route with parameters unless a 4XX range is declared, and these
    routes answer every client error in the protocol's shape, never a 422.
    """
    described: dict[int | str, str] = {"4XX": "a client error, in this protocol's error shape", **statuses}
    return {status: {"model": model, "description": description} for status, description in described.items()}
