"""What every protocol adapter shares: the data plane of the running service, its error shape, its schemas."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
from bentoml.exceptions import BentoMLException
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from wine_quality.dataplane import DataPlane, Graded, Origin
from wine_quality.schema import TYPES, InvalidRows, Wines, check_rows, first_error


def plane(request: Request) -> DataPlane:
    """The running entry service's data plane, which it puts in the routes app's state when it starts."""
    found: DataPlane = request.app.state.dataplane
    return found


class ProtocolError(Exception):
    """A request a protocol refuses: the status and the message its error shape carries."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def checked(rows: np.ndarray, max_rows: int, types: list[str] | None = None, where: str = "") -> Wines:
    """Rows [N, 11] parsed by a protocol, and their types if it sent them, checked as the JSON routes check theirs:
    count, bounds, the SO2 rule, red or white."""
    if not 1 <= len(rows) <= max_rows:
        raise ProtocolError(f"{where}{len(rows)} rows; send 1 to {max_rows} in one request")
    wrong = [f"row {i}, type: {t!r} is not one of {list(TYPES)}" for i, t in enumerate(types or []) if t not in TYPES]
    if wrong:
        raise ProtocolError(where + "; ".join(wrong[:3]) + (f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""))
    try:
        return Wines.of(check_rows(rows), types)
    except InvalidRows as exc:
        raise ProtocolError(f"{where}{exc}") from None


Refusal = Callable[[Exception], Response | None]  # an exception a route raised -> its answer, or None to re-raise


def answering(refusal: Refusal, direct: bool = False) -> type[APIRoute]:
    """A route class whose exceptions `refusal` turns into answers (those it returns None for propagate).

    `direct`: for endpoints that take only the request and their path's parameters as text, and return a Response.
    The endpoint is then called with them as they are, without FastAPI's dependency solving and response handling,
    which were a quarter of the entry's CPU for a V2 inference of one wine; FastAPI still documents the route from
    the same endpoint."""

    class AnsweringRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = self._direct if direct else super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    return await handle(request)
                except Exception as exc:
                    answer = refusal(exc)
                    if answer is None:
                        raise
                    return answer

            return handler

        async def _direct(self, request: Request) -> Response:
            answer: Response = await self.endpoint(request=request, **request.path_params)
            return answer

    return AnsweringRoute


def protocol_route(error_body: Callable[[str, int], dict[str, Any]], direct: bool = False) -> type[APIRoute]:
    """A route class that answers a ProtocolError, and FastAPI's own validation errors, in the protocol's error shape.

    FastAPI answers its own validation errors with 422 by default; a protocol's clients expect a 400. `direct`: see
    `answering`.
    """

    def refusal(exc: Exception) -> Response | None:
        if isinstance(exc, RequestValidationError):
            return JSONResponse(error_body(first_error(exc), 400), status_code=400)
        if isinstance(exc, ProtocolError):
            return JSONResponse(error_body(exc.message, exc.status), status_code=exc.status)
        return None

    return answering(refusal, direct)


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


async def graded(data_plane: DataPlane, kind: str, wines: Wines, origin: Origin) -> Graded:
    """Grades from the data plane; a refusal of the model service (overloaded, timed out) keeps its status."""
    try:
        return await data_plane.grade(kind, wines, origin)
    except BentoMLException as exc:
        raise ProtocolError(str(exc), int(exc.error_code)) from exc


def error_responses(model: type[BaseModel], statuses: dict[int | str, str]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries of a route's error statuses, all in one error shape.

    "4XX" too: FastAPI documents a 422 for any route with parameters unless a 4XX range is declared, and these
    routes answer every client error in the protocol's shape, never a 422.
    """
    described: dict[int | str, str] = {"4XX": "a client error, in this protocol's error shape", **statuses}
    return {status: {"model": model, "description": description} for status, description in described.items()}
