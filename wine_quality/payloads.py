"""The JSON shapes of the HTTP API, other than the wine sample itself (see schema.Wine)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, create_model
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from wine_quality.schema import EXAMPLE, Wine

ModelKindName = Literal["sklearn", "torch"]


# Interval and RowPrediction are TypedDicts: a 1,000-row answer is built from plain dicts and serialised by
# pydantic-core without a Python object per row (a BaseModel per row cost a third of a batch request).
class Interval(TypedDict):
    """A range that holds the true grade with the stated probability (calibrated on rows the model did not see)."""

    low: float
    high: float
    coverage: Annotated[float, Field(description="nominal share of true grades inside [low, high]")]


class Prediction(BaseModel):
    """One predicted grade, the model version that made it, and what it had not seen in training."""

    quality: float = Field(description="predicted grade on the 0-10 scale")
    interval: Interval
    model: str = Field(description="tag of the model version that answered")
    outside_training_range: list[str] = Field(
        description="features whose value lies outside the range the model was trained on (still predicted)"
    )


class RowPrediction(TypedDict):
    """One row's answer within a batch."""

    quality: float
    interval: Interval
    outside_training_range: list[str]


class BatchPrediction(BaseModel):
    """Grades for a batch, in the order the samples were sent."""

    model: str = Field(description="tag of the model version that answered")
    predictions: list[RowPrediction]


class BatchRequestBase(BaseModel):
    """Many samples and the model to predict them with."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"model": "sklearn", "samples": [cast(Any, EXAMPLE)]}}
    )

    model: ModelKindName
    samples: list[Wine]


def batch_request(max_rows: int) -> type[BatchRequestBase]:
    """The batch request shape, with the row limit taken from the settings."""
    fields: dict[str, Any] = {
        "model": (ModelKindName, Field(description="which model predicts: sklearn or torch")),
        "samples": (list[Wine], Field(min_length=1, max_length=max_rows, description=f"1 to {max_rows} samples")),
    }
    return create_model("BatchRequest", __base__=BatchRequestBase, **fields)


class ModelsDescription(BaseModel):
    """The served model versions and what they were trained on."""

    models: dict[str, dict[str, Any]]
