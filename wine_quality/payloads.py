"""The JSON shapes of the HTTP API, other than the wine sample itself (see schema.Wine)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from wine_quality.schema import (
    EXAMPLE,
    FEATURE_NAMES,
    ROW_OF,
    ROWS_CHECK,
    SAMPLES_CHECK,
    SO2_RULE,
    TYPE_COLUMN,
    TYPES,
    Wine,
    WineRow,
    Wines,
    WineType,
    column_problems,
)
from wine_quality.served import ServedModel, ServedModelInfo
from wine_quality.settings import get_settings

if TYPE_CHECKING:  # the data plane builds its models' descriptions from this module: no import cycle at run time
    from wine_quality.dataplane import Classified, Graded


# Interval and RowPrediction are TypedDicts: a 1,000-row answer is built from plain dicts and serialised by
# pydantic-core without a Python object per row (a BaseModel per row cost a third of a batch request).
class Interval(TypedDict):
    """A range that holds the true grade with the stated probability (calibrated on rows the model did not see)."""

    low: float
    high: float
    coverage: Annotated[float, Field(description="nominal share of true grades inside [low, high]")]


# what every answer names: the wine's id, the model version, and what ran it
WineId = Annotated[
    str, Field(description="the wine's id (time-ordered, unique): send it with the taster's grade to POST /feedback")
]
ModelTag = Annotated[str, Field(description="tag of the model version that answered")]
AnsweredType = Annotated[WineType, Field(description="the type the wine was graded as: as sent, red when left out")]
RuntimeName = Annotated[
    str, Field(description="what predicted: onnx (ONNX Runtime) or native (the model's own library)")
]


class Prediction(BaseModel):
    """One predicted grade, the model version that made it, and what it had not seen in training."""

    id: WineId
    type: AnsweredType
    quality: float = Field(description="predicted grade on the 0-10 scale")
    interval: Interval
    model: ModelTag
    runtime: RuntimeName
    outside_training_range: list[str] = Field(
        description="features whose value lies outside the range the model was trained on (still predicted)"
    )

    @classmethod
    def of(cls, graded: Graded) -> Prediction:
        """The answer for the one wine graded."""
        (row,) = _rows(graded)
        return cls.model_construct(**row, **_answered_by(graded.served))


class RowPrediction(TypedDict):
    """One row's answer within a batch."""

    id: WineId
    type: AnsweredType
    quality: float
    interval: Interval
    outside_training_range: list[str]


class BatchPrediction(BaseModel):
    """Grades for a batch, in the order the rows were sent."""

    model: ModelTag
    runtime: RuntimeName
    predictions: list[RowPrediction]

    @classmethod
    def of(cls, graded: Graded) -> BatchPrediction:
        """The answers for a batch, in order."""
        return cls.model_construct(predictions=_rows(graded), **_answered_by(graded.served))


def _answered_by(served: ServedModel) -> dict[str, Any]:
    """What every answer says of the model that made it: its tag and what ran it."""
    return {"model": served.tag, "runtime": served.runtime}


def _rows(graded: Graded) -> list[RowPrediction]:
    # built from checked values: model_construct skips validating them a second time
    coverage = graded.served.coverage
    g = graded
    answers = zip(
        g.ids, g.wines.types, g.quality.tolist(), g.low.tolist(), g.high.tolist(), g.outside_training_range, strict=True
    )
    return [
        {
            "id": i,
            "type": t,
            "quality": q,
            "interval": {"low": lo, "high": hi, "coverage": coverage},
            "outside_training_range": o,
        }
        for i, t, q, lo, hi, o in answers
    ]


# The two forms of a batch request, as JSON Schema can say it: exactly one of them, never a mix.
ONE_FORM: dict[str, Any] = {
    "oneOf": [
        {"required": ["samples"], "not": {"anyOf": [{"required": ["columns"]}, {"required": ["data"]}]}},
        {"required": ["columns", "data"], "not": {"required": ["samples"]}},
    ]
}
FORMS = ("samples", "columns", "data")
# Read once, when the service is defined: the row limit is part of the request's schema.
MAX_ROWS = get_settings().requests.max_rows


TYPED_COLUMNS = [*FEATURE_NAMES, TYPE_COLUMN]


def _check_columns(columns: list[str]) -> list[str]:
    if columns not in (list(FEATURE_NAMES), TYPED_COLUMNS):
        named = columns[:-1] if columns[-1:] == [TYPE_COLUMN] else columns
        problems = "; ".join(column_problems(named)) or "same names, other order"
        raise ValueError(
            f"columns must be the 11 feature names in this order, then {TYPE_COLUMN!r} if the rows carry each "
            f"wine's type: {TYPED_COLUMNS} ({problems})"
        )
    return columns


# the 11 names, in schema order, and "type" after them when the rows carry it: a JSON array of fixed items
Columns = Annotated[
    list[str],
    AfterValidator(_check_columns),
    WithJsonSchema(
        {
            "type": "array",
            "prefixItems": [{"const": name, "type": "string"} for name in TYPED_COLUMNS],
            "minItems": len(FEATURE_NAMES),
            "maxItems": len(TYPED_COLUMNS),
            "description": f"the 11 feature names in schema order, then {TYPE_COLUMN!r} if the rows end with it",
        }
    ),
]
Samples = Annotated[
    list[Wine], Field(min_length=1, max_length=MAX_ROWS, description=f"1 to {MAX_ROWS} wines"), SAMPLES_CHECK
]


def _batch_schema(description: str, example: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """The batch request's JSON schema: exactly one form; each form's fields may be left out but are never null."""

    def amend(schema: dict[str, Any]) -> None:
        for name in FORMS:
            field = schema["properties"][name]
            (sent,) = [option for option in field.pop("anyOf") if option.get("type") != "null"]
            field.pop("default", None)
            schema["properties"][name] = {**sent, **field}
        row = schema["properties"]["data"]["items"]  # a row may end with the wine's type, as `columns` says
        row["prefixItems"].append({"enum": list(TYPES), "description": f"the wine's type: {TYPE_COLUMN_RULE}"})
        row["maxItems"] = len(TYPED_COLUMNS)
        schema.update(ONE_FORM, description=f"{description} {SO2_RULE}", example=example)

    return amend


# A rule across fields that JSON Schema cannot state (a row's length follows `columns`), so the description does
TYPE_COLUMN_RULE = "a row ends with its type exactly when `columns` ends with 'type'"
ROWS_NOT_COLUMNS = "row {row}: {values} values for {columns} columns: " + TYPE_COLUMN_RULE


class TypedRows(list[tuple[float, ...]]):
    """`data` as validated: each row's 11 measurements, and each row's type when `columns` ends with "type"."""

    def __init__(self, rows: list[tuple[float, ...]], types: list[WineType] | None) -> None:
        super().__init__(rows)
        self.types = types


class _TypesSetApart(list[Any]):
    """Rows whose type column `_typed_rows` has already set apart."""


def _typed_rows(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> TypedRows:
    """With `columns` ending in "type", each row's last value is its type: checked apart from the measurements.

    A field's validator, not the model's: a model validator that sees the raw body makes pydantic turn all of the
    body's JSON into Python first, which doubled the cost of 1,000 `samples`."""
    if isinstance(value, _TypesSetApart):  # BentoML's copy of the request model runs a field's validators twice
        return TypedRows(handler(value), None)
    columns = info.data.get("columns")
    if columns != TYPED_COLUMNS or not isinstance(value, list):
        try:
            return TypedRows(handler(value), None)
        except ValidationError:  # rows of 12 values for 11 columns fail as too long: said in the columns' terms
            if columns is not None and isinstance(value, list):
                long = [i for i, row in enumerate(value) if isinstance(row, list) and len(row) == len(TYPED_COLUMNS)]
                if long:
                    problem = {"row": long[0], "values": 12, "columns": 11}
                    raise PydanticCustomError("wine_rows", ROWS_NOT_COLUMNS, problem) from None
            raise
    short = [i for i, row in enumerate(value) if not isinstance(row, list) or len(row) != len(TYPED_COLUMNS)]
    if short:
        row = value[short[0]]
        values = len(row) if isinstance(row, list) else "not a list of"
        raise PydanticCustomError("wine_rows", ROWS_NOT_COLUMNS, {"row": short[0], "values": values, "columns": 12})
    types = [row[-1] for row in value]
    bad = [i for i, t in enumerate(types) if t not in TYPES]
    if bad:
        shown = "; ".join(f"row {i}, type: {types[i]!r} is not one of {list(TYPES)}" for i in bad[:3])
        raise PydanticCustomError("wine_rows", "{problems}", {"problems": shown})
    return TypedRows(handler(_TypesSetApart(row[:-1] for row in value)), types)


Rows = Annotated[
    list[WineRow],
    Field(min_length=1, max_length=MAX_ROWS, description=f"1 to {MAX_ROWS} rows of the 11 measurements"),
    ROWS_CHECK,
    WrapValidator(_typed_rows),
]


class _Batch(BaseModel):
    """What both batch requests share: the wines as `samples` (objects) or as `columns` and `data` (rows).

    No validator here sees the raw body (see `_typed_rows`): a JSON null for a form is refused after the fields."""

    model_config = ConfigDict(extra="forbid")

    samples: Samples | None = None
    columns: Columns | None = None
    data: Rows | None = None

    @model_validator(mode="after")
    def _one_form(self) -> _Batch:
        nulls = [name for name in FORMS if name in self.model_fields_set and getattr(self, name) is None]
        if nulls:  # left out is fine; a JSON null is refused like any other non-list
            null_list = PydanticCustomError("list_type", "Input should be a valid list")
            details: list[InitErrorDetails] = [{"type": null_list, "loc": (name,), "input": None} for name in nulls]
            raise ValidationError.from_exception_data(type(self).__name__, details)
        if (self.samples is None) == (self.data is None):
            raise ValueError("send the wines either as `samples` or as `columns` and `data`: exactly one form")
        if (self.data is None) != (self.columns is None):
            raise ValueError("`columns` and `data` go together")
        return self

    def wines(self) -> Wines:
        """The wines as the data plane takes them: a float array, one row each in schema order, and their types."""
        if self.data is not None:
            types = self.data.types if isinstance(self.data, TypedRows) else None
            return Wines.of(np.array(self.data, dtype=np.float64).reshape(-1, len(FEATURE_NAMES)), types)
        samples = self.samples or []
        rows = np.array(list(map(ROW_OF, samples)), dtype=np.float64)
        return Wines.of(rows, [wine.type for wine in samples])


class BatchRequest(_Batch):
    """Many wines and the model to grade them with."""

    model_config = ConfigDict(
        json_schema_extra=_batch_schema(
            "Many wines and the model to grade them with: as `samples` (objects) or as `columns` and `data` (rows).",
            {"model": "torch", "columns": list(FEATURE_NAMES), "data": [list(EXAMPLE.values())]},
        )
    )

    model: Literal["sklearn", "torch"] = Field(description="which model grades: sklearn or torch")


class ClassifyBatchRequest(_Batch):
    """Many wines to classify."""

    model_config = ConfigDict(
        json_schema_extra=_batch_schema(
            "Many wines to classify: as `samples` (objects) or as `columns` and `data` (rows); `model` is optional.",
            {"columns": list(FEATURE_NAMES), "data": [list(EXAMPLE.values())]},
        )
    )

    model: Literal["classifier"] = Field("classifier", description="which model classifies: classifier")


GradeProbabilities = Annotated[
    dict[str, float], Field(description="grade (as text: JSON keys are strings) -> probability; they sum to 1")
]


class Classification(BaseModel):
    """One wine's probability of each grade the classifier saw in training, and of being good."""

    id: WineId
    type: AnsweredType
    probabilities: GradeProbabilities
    good: float = Field(description="probability that the grade is good_threshold or above")
    good_threshold: int = Field(description="a good wine's lowest grade, as the model was trained")
    model: ModelTag
    runtime: RuntimeName
    outside_training_range: list[str] = Field(
        description="features whose value lies outside the range the model was trained on (still classified)"
    )

    @classmethod
    def of(cls, classified: Classified) -> Classification:
        """The answer for the one wine classified."""
        (row,) = _classifications(classified)
        return cls.model_construct(**row, good_threshold=classified.good_threshold, **_answered_by(classified.served))


class RowClassification(TypedDict):
    """One row's probabilities within a batch."""

    id: WineId
    type: AnsweredType
    probabilities: dict[str, float]
    good: float
    outside_training_range: list[str]


class BatchClassification(BaseModel):
    """Probabilities for a batch, in the order the rows were sent."""

    model: ModelTag
    runtime: RuntimeName
    good_threshold: int = Field(description="a good wine's lowest grade, as the model was trained")
    predictions: list[RowClassification]

    @classmethod
    def of(cls, classified: Classified) -> BatchClassification:
        """The answers for a batch, in order."""
        return cls.model_construct(
            good_threshold=classified.good_threshold,
            predictions=_classifications(classified),
            **_answered_by(classified.served),
        )


def _classifications(classified: Classified) -> list[RowClassification]:
    c = classified
    answers = zip(
        c.ids, c.wines.types, c.probabilities.tolist(), c.good.tolist(), c.outside_training_range, strict=True
    )
    return [
        {
            "id": i,
            "type": t,
            "probabilities": dict(zip(c.grades, p, strict=True)),
            "good": g,
            "outside_training_range": o,
        }
        for i, t, p, g, o in answers
    ]


class ModelsDescription(BaseModel):
    """The served model versions and what they were trained on."""

    models: dict[str, ServedModelInfo]
