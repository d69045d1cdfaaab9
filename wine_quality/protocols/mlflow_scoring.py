"""MLflow's scoring protocol, as `mlflow models serve` speaks it: POST /invocations, GET /ping and /health.

A request is JSON with exactly one of `dataframe_split`, `dataframe_records`, `instances` or `inputs`, or CSV with a
header row (`text/csv`); columns carry the dataset's names ("fixed acidity", ...), in any order. The answer is
`{"predictions": [grade, ...], "ids": [...]}` in row order. The model is the `?model=` query parameter's kind, else the
WINE_INVOCATIONS_MODEL setting's (default sklearn). Errors are MLflow's `{"error_code": ..., "message": ...}`.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

import numpy as np
import pydantic_core
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError, WithJsonSchema

from wine_quality.dataplane import Origin
from wine_quality.protocols.base import (
    ProtocolError,
    checked,
    error_responses,
    graded,
    inline_schema,
    plane,
    protocol_route,
)
from wine_quality.schema import EXAMPLE, FEATURE_NAMES, TYPE_COLUMN, Wine, Wines, column_problems, first_error

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
ERROR_CODES = {400: "BAD_REQUEST", 415: "BAD_REQUEST", 503: "TEMPORARILY_UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
KindName = Literal["sklearn", "torch"]  # the regressors (tests/unit/test_model_services.py: as the registry says)

# a row as an object: the schema states what is checked (the 11 names, each within its bounds, an optional type)
_WINE = Wine.model_json_schema(by_alias=True)
Cell = StrictFloat | StrictStr  # a measurement, or a wine's type
Record = Annotated[
    dict[str, Cell],
    WithJsonSchema({k: _WINE[k] for k in ("type", "properties", "required", "additionalProperties")}),
]
Rows = Annotated[list[Record], Field(min_length=1)]
Columns = Annotated[dict[str, list[StrictFloat] | list[StrictStr]], Field(min_length=1)]
Table = Annotated[Rows | Columns, Field(union_mode="left_to_right")]
# exactly one of the four inputs, as JSON Schema says it (a request with two is refused, so the schema says so too)
ONE_INPUT: dict[str, Any] = {
    "oneOf": [
        {"required": [name], "not": {"anyOf": [{"required": [other]} for other in FORMATS if other != name]}}
        for name in FORMATS
    ]
}


class SplitFrame(BaseModel):
    """pandas' `split` orientation: column names, rows of values, and an optional index (not used)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    columns: list[str] | None = None
    data: Annotated[list[list[Cell]], Field(min_length=1)]
    index: list[StrictInt | StrictStr] | None = None


class ScoringRequest(BaseModel):
    """A JSON scoring request: exactly one of the four input fields; `params` only empty (the models take none)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            **ONE_INPUT,
            "example": {"dataframe_split": {"columns": list(EXAMPLE), "data": [list(EXAMPLE.values())]}},
        },
    )
    # each may be left out (default None) but is never null: a JSON null is refused like any other wrong type
    dataframe_split: SplitFrame = Field(None)  # type: ignore[assignment]
    dataframe_records: Rows = Field(None, description="one object per row, keyed by column name")  # type: ignore[arg-type]
    instances: Table = Field(None, description="rows as objects, or an object of columns")  # type: ignore[assignment]
    inputs: Table = Field(None, description="an object of columns, or rows as objects")  # type: ignore[assignment]
    params: dict[str, Any] | None = None


class Predictions(BaseModel):
    """The grades, in the order of the rows sent, and each wine's id beside them (MLflow's clients read
    `predictions` and leave other keys alone)."""

    predictions: list[float]
    ids: list[str] = Field(
        description="each wine's id, in the same order: send it with the taster's grade to /feedback"
    )


class MlflowError(BaseModel):
    """MLflow's error shape."""

    error_code: str
    message: str


def _error_body(message: str, status: int) -> dict[str, Any]:
    return {"error_code": ERROR_CODES.get(status, "BAD_REQUEST"), "message": message}


router = APIRouter(tags=["MLflow scoring protocol"], route_class=protocol_route(_error_body))
SCORING_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_schema(ScoringRequest)},
            "text/csv": {
                "schema": {"type": "string"},
                "example": ",".join(EXAMPLE) + "\n" + ",".join(str(v) for v in EXAMPLE.values()) + "\n",
            },
        },
    }
}
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": Predictions, "description": "one grade per row, in order"},
    **error_responses(
        MlflowError,
        {
            400: "a wrong, missing or repeated column, a value that is not a number or outside the feature's "
            "physical bounds, or no format field: the message names it",
            415: "a content type other than application/json or text/csv (UTF-8)",
            503: "the model service is overloaded",
            504: "the model service timed out",
        },
    ),
}


def _columns_problem(columns: list[str]) -> str | None:
    features = [c for c in columns if c != TYPE_COLUMN]
    problems = column_problems(features) + [f"repeated [{TYPE_COLUMN!r}]"] * (len(columns) - len(features) > 1)
    if not problems:
        return None
    hint = " (an unnamed first column is pandas' index: write the frame with index=False)" if "" in columns else ""
    return (
        f"columns must be the 11 feature names {list(FEATURE_NAMES)}, in any order, and {TYPE_COLUMN!r} if the "
        f"wines are not all red: {'; '.join(problems)}{hint}"
    )


Parsed = tuple[np.ndarray, list[str] | None]  # the 11 measurements in schema order, and the types if sent


def _table(names: list[str], rows: list[list[Any]], where: str, text: bool = False) -> Parsed:
    """Rows of values under column names (the features in any order, and `type` if sent), as the measurements in
    schema order and the types. Values are numbers, or with `text` (CSV) numbers written as text. Rows are named from
    0 in JSON (an index into the list) and from 1 in CSV (the header is row 0, as a spreadsheet shows it)."""
    first = 1 if text else 0
    problem = _columns_problem(names)
    if problem:
        raise ProtocolError(f"{where}: {problem}")
    for i, row in enumerate(rows):
        if len(row) != len(names):
            raise ProtocolError(f"{where} row {i + first}: {len(row)} values for {len(names)} columns")
    order = [names.index(name) for name in FEATURE_NAMES]
    values = np.empty((len(rows), len(order)))
    for i, row in enumerate(rows):
        for k, j in enumerate(order):
            number = _number(row[j], text)
            if number is None:
                raise ProtocolError(f"{where} row {i + first}, column {names[j]!r}: {row[j]!r} is not a number")
            values[i, k] = number
    if TYPE_COLUMN not in names:
        return values, None
    at = names.index(TYPE_COLUMN)
    return values, [str(row[at]) for row in rows]


def _number(cell: Any, text: bool) -> float | None:
    """A cell's number: a JSON number, or with `text` a number written as text (CSV); None for anything else."""
    if isinstance(cell, float | int) and not isinstance(cell, bool):
        return float(cell)
    if text and isinstance(cell, str):
        try:
            return float(cell)
        except ValueError:
            return None
    return None


def _from_records(records: list[Record], where: str) -> Parsed:
    typed = [{TYPE_COLUMN: "red", **record} for record in records]  # a wine without a type is red
    names = [*FEATURE_NAMES, TYPE_COLUMN]
    for i, record in enumerate(typed):
        if record.keys() != set(names):
            raise ProtocolError(f"{where}[{i}]: {_columns_problem(list(record))}")
    parsed = _table(names, [[record[name] for name in names] for record in typed], where)
    return parsed if any(TYPE_COLUMN in record for record in records) else (parsed[0], None)


def _from_columns(table: Columns, where: str) -> Parsed:
    if len({len(values) for values in table.values()}) > 1:
        raise ProtocolError(f"{where}: every column needs the same number of values")
    names = list(table)
    return _table(names, [list(row) for row in zip(*table.values(), strict=True)], where)


def _from_split(frame: SplitFrame) -> Parsed:
    where = "dataframe_split"
    if frame.columns is None:
        raise ProtocolError(f"{where}: `columns` is missing: name the 11 features {list(FEATURE_NAMES)}")
    if frame.index is not None and len(frame.index) != len(frame.data):
        raise ProtocolError(f"{where}: {len(frame.index)} index labels for {len(frame.data)} rows")
    return _table(frame.columns, frame.data, where)


def json_rows(body: bytes) -> Parsed:
    """The rows of a JSON scoring request, in schema order, and their types if sent."""
    try:
        request = ScoringRequest.model_validate_json(body)
    except ValidationError as exc:
        raise ProtocolError(first_error(exc)) from None
    present = [name for name in FORMATS if name in request.model_fields_set]  # a null counts: it was sent
    if len(present) != 1:
        raise ProtocolError(f"send exactly one of {', '.join(FORMATS)}; got {present or 'none'}")
    if request.params:
        raise ProtocolError(f"params: these models take no parameters, got {sorted(request.params)}")
    where, value = present[0], getattr(request, present[0])
    if value is None:
        raise ProtocolError(f"{where}: null is not a table of wines")
    if isinstance(value, SplitFrame):
        return _from_split(value)
    return _from_records(value, where) if isinstance(value, list) else _from_columns(value, where)


def csv_rows(body: bytes) -> Parsed:
    """The rows of a CSV scoring request: a header row of column names, then one line per wine."""
    try:
        lines = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ProtocolError(f"the body is not UTF-8 CSV: {exc}") from None
    if not lines:
        raise ProtocolError("the CSV is empty: send a header row of the 11 feature names, then one row per wine")
    return _table(lines[0], [line for line in lines[1:] if line], "CSV", text=True)


def scoring_rows(body: bytes, content_type: str | None, max_rows: int) -> Wines:
    """The rows of a scoring request by its content type, checked like every sample this service grades."""
    mime, *options = [part.strip() for part in (content_type or "").split(";")]
    settings = dict(option.partition("=")[::2] for option in options)
    if set(settings) - {"charset"} or settings.get("charset", "utf-8").lower() != "utf-8":
        raise ProtocolError(f"Content-Type {content_type!r}: only a utf-8 charset is accepted", 415)
    if mime == "application/json":
        values, types = json_rows(body)
    elif mime == "text/csv":
        values, types = csv_rows(body)
    else:
        raise ProtocolError(f"Content-Type {content_type!r}: send application/json or text/csv", 415)
    return checked(values, max_rows, types)


ModelQuery = Annotated[
    KindName | None,
    Query(description="the model kind that answers; default: the WINE_INVOCATIONS_MODEL setting (sklearn)"),
]


@router.post("/invocations", response_model=None, responses=ANSWERS, openapi_extra=SCORING_BODY)
async def invocations(request: Request, model: ModelQuery = None) -> Response:
    """Grade wines sent as MLflow's scoring server takes them (JSON formats or CSV); answer their grades."""
    data_plane = plane(request)
    settings = data_plane.settings
    wines = scoring_rows(await request.body(), request.headers.get("content-type"), settings.requests.max_rows)
    result = await graded(
        data_plane, model or settings.server.invocations_model, wines, Origin("/invocations", "mlflow")
    )
    answer = {"predictions": result.quality.tolist(), "ids": result.ids}
    return Response(pydantic_core.to_json(answer), media_type="application/json")


@router.get("/ping", responses={503: {"description": "a model service is not ready"}})
@router.get("/health", responses={503: {"description": "a model service is not ready"}})
async def ping(request: Request) -> JSONResponse:
    """Health check of the scoring protocol: 200 once the server is ready, as /readyz says."""
    ok = await plane(request).ready()
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)
