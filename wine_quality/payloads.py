"""The JSON shapes of the HTTP API, other than the wine sample itself (see schema.Wine)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from wine_quality.kinds import CLASSIFICATION_KINDS, REGRESSION_KINDS
from wine_quality.schema import EXAMPLE, FEATURE_NAMES, ROWS_CHECK, Wine, WineRow
from wine_quality.served import ServedModelInfo


# Interval and RowPrediction are TypedDicts: a 1,000-row answer is built from plain dicts and serialised by
# pydantic-core without a Python object per row (a BaseModel per row cost a third of a batch request).
class Interval(TypedDict):
    """A range that holds the true grade with the stated probability (calibrated on rows the model did not see)."""

    low: float
    high: float
    coverage: Annotated[float, Field(description="nominal share of true grades inside [low, high]")]


# what every answer names: the model version, and what ran it
ModelTag = Annotated[str, Field(description="tag of the model version that answered")]
RuntimeName = Annotated[
    str, Field(description="what predicted: onnx (ONNX Runtime) or native (the model's own library)")
]


class Prediction(BaseModel):
    """One predicted grade, the model version that made it, and what it had not seen in training."""

    quality: float = Field(description="predicted grade on the 0-10 scale")
    interval: Interval
    model: ModelTag
    runtime: RuntimeName
    outside_training_range: list[str] = Field(
        description="features whose value lies outside the range the model was trained on (still predicted)"
    )


class RowPrediction(TypedDict):
    """One row's answer within a batch."""

    quality: float
    interval: Interval
    outside_training_range: list[str]


class BatchPrediction(BaseModel):
    """Grades for a batch, in the order the rows were sent."""

    model: ModelTag
    runtime: RuntimeName
    predictions: list[RowPrediction]


# The two forms of a batch request, as JSON Schema can say it: exactly one of them, never a mix.
ONE_FORM: dict[str, Any] = {
    "oneOf": [
        {"required": ["samples"], "not": {"anyOf": [{"required": ["columns"]}, {"required": ["data"]}]}},
        {"required": ["columns", "data"], "not": {"required": ["samples"]}},
    ]
}
if TYPE_CHECKING:
    Columns = list[str]
else:  # the 11 names, in schema order: a JSON array of fixed items
    Columns = tuple[tuple(Literal[name] for name in FEATURE_NAMES)]


class BatchRequestBase(BaseModel):
    """Many wines and the model to grade them with: as `samples` (objects) or as `columns` and `data` (rows).

    Free sulfur dioxide cannot exceed total sulfur dioxide in any wine (a rule across fields, beyond JSON Schema).
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            **ONE_FORM,
            "example": {"model": "torch", "columns": list(FEATURE_NAMES), "data": [list(EXAMPLE.values())]},
        },
    )

    model: str
    samples: list[Wine] | None = None
    columns: Columns | None = None
    data: list[WineRow] | None = None

    @field_validator("columns", mode="before")
    @classmethod
    def _schema_order(cls, columns: Any) -> Any:
        if isinstance(columns, list) and columns != list(FEATURE_NAMES):
            missing = [c for c in FEATURE_NAMES if c not in columns]
            unknown = [c for c in columns if c not in FEATURE_NAMES]
            problems = [f"missing {missing}"] * bool(missing) + [f"unknown {unknown}"] * bool(unknown)
            raise ValueError(
                f"columns must be the 11 feature names in this order: {list(FEATURE_NAMES)}"
                + (f" ({'; '.join(problems)})" if problems else " (same names, other order)")
            )
        return columns

    @model_validator(mode="after")
    def _one_form(self) -> BatchRequestBase:
        if (self.samples is None) == (self.data is None):
            raise ValueError("send the wines either as `samples` or as `columns` and `data`: exactly one form")
        if (self.data is None) != (self.columns is None):
            raise ValueError("`columns` and `data` go together")
        return self

    def rows(self) -> np.ndarray:
        """The wines as a float array, one row each, features in schema order."""
        if self.data is not None:
            return np.array(self.data, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
        return np.array([wine.as_row() for wine in self.samples or []], dtype=np.float64)


class ClassifyRequestBase(BatchRequestBase):
    """Many wines to classify: as `samples` (objects) or as `columns` and `data` (rows); `model` may be left out."""

    model_config = ConfigDict(
        json_schema_extra={**ONE_FORM, "example": {"columns": list(FEATURE_NAMES), "data": [list(EXAMPLE.values())]}}
    )


def batch_request(max_rows: int, classify: bool = False) -> type[BatchRequestBase]:
    """The batch request shape, with the model names from the registry and the row limit from the settings:
    /predict_batch's (the regressors, named), or /classify_batch's (the classifier, by default)."""
    limit = Field(min_length=1, max_length=max_rows)
    kinds = CLASSIFICATION_KINDS if classify else REGRESSION_KINDS
    described = Field(description=f"which model {'classifies' if classify else 'grades'}: {', '.join(kinds)}")
    # each form's fields may be left out (default None) but are never null: a JSON null is refused like any non-list
    fields: dict[str, Any] = {
        "model": (Literal[kinds], Field(kinds[0], description=described.description) if classify else described),
        "samples": (
            Annotated[list[Wine], limit],
            Field(None, description=f"1 to {max_rows} wines as objects"),
        ),
        "columns": (
            Columns,
            Field(None, description="the 11 feature names in schema order, with `data`"),
        ),
        "data": (
            Annotated[list[WineRow], limit, ROWS_CHECK],
            Field(None, description=f"1 to {max_rows} rows of the 11 measurements, in `columns` order"),
        ),
    }
    if classify:
        return create_model("ClassifyBatchRequest", __base__=ClassifyRequestBase, **fields)
    return create_model("BatchRequest", __base__=BatchRequestBase, **fields)


GradeProbabilities = Annotated[
    dict[str, float], Field(description="grade (as text: JSON keys are strings) -> probability; they sum to 1")
]


class Classification(BaseModel):
    """One wine's probability of each grade the classifier saw in training, and of being good."""

    probabilities: GradeProbabilities
    good: float = Field(description="probability that the grade is good_threshold or above")
    good_threshold: int = Field(description="a good wine's lowest grade, as the model was trained")
    model: ModelTag
    runtime: RuntimeName
    outside_training_range: list[str] = Field(
        description="features whose value lies outside the range the model was trained on (still classified)"
    )


class RowClassification(TypedDict):
    """One row's probabilities within a batch."""

    probabilities: dict[str, float]
    good: float
    outside_training_range: list[str]


class BatchClassification(BaseModel):
    """Probabilities for a batch, in the order the rows were sent."""

    model: ModelTag
    runtime: RuntimeName
    good_threshold: int = Field(description="a good wine's lowest grade, as the model was trained")
    predictions: list[RowClassification]


class ModelsDescription(BaseModel):
    """The served model versions and what they were trained on."""

    models: dict[str, ServedModelInfo]
