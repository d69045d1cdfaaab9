"""The one definition of the wine features: names, order, units, physical bounds and an example."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class Feature:
    """One physicochemical measurement, as named in the data files and in the JSON payloads."""

    name: str  # the seed's JSON name and the CSV header, spaces included
    field: str  # the Python attribute name
    unit: str
    low: float  # physically possible range, inclusive: a value outside it is refused, not predicted
    high: float
    description: str


FEATURES: tuple[Feature, ...] = (
    Feature("fixed acidity", "fixed_acidity", "g(tartaric acid)/dm3", 0.0, 100.0, "non-volatile acids"),
    Feature("volatile acidity", "volatile_acidity", "g(acetic acid)/dm3", 0.0, 20.0, "acetic acid"),
    Feature("citric acid", "citric_acid", "g/dm3", 0.0, 20.0, "citric acid"),
    Feature("residual sugar", "residual_sugar", "g/dm3", 0.0, 1000.0, "sugar left after fermentation"),
    Feature("chlorides", "chlorides", "g(sodium chloride)/dm3", 0.0, 20.0, "salt"),
    Feature("free sulfur dioxide", "free_sulfur_dioxide", "mg/dm3", 0.0, 2000.0, "free form of SO2"),
    Feature("total sulfur dioxide", "total_sulfur_dioxide", "mg/dm3", 0.0, 2000.0, "free and bound SO2"),
    Feature("density", "density", "g/cm3", 0.5, 1.5, "density"),
    Feature("pH", "pH", "pH", 0.0, 14.0, "acidity on the pH scale"),
    Feature("sulphates", "sulphates", "g(potassium sulphate)/dm3", 0.0, 20.0, "potassium sulphate"),
    Feature("alcohol", "alcohol", "% vol", 0.0, 100.0, "alcohol by volume"),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
TARGET = "quality"
TARGET_LOW, TARGET_HIGH = 0, 10

# The first row of the red file: the seed README's curl payload (its answer there: 5.06 and 5.15).
EXAMPLE: dict[str, float] = {
    "fixed acidity": 7.4,
    "volatile acidity": 0.7,
    "citric acid": 0.0,
    "residual sugar": 1.9,
    "chlorides": 0.076,
    "free sulfur dioxide": 11.0,
    "total sulfur dioxide": 34.0,
    "density": 0.9978,
    "pH": 3.51,
    "sulphates": 0.56,
    "alcohol": 9.4,
}


# The one rule across fields: free SO2 is part of total SO2. Samples and whole data files are checked by it.
FREE_SO2, TOTAL_SO2 = "free sulfur dioxide", "total sulfur dioxide"
FREE_ABOVE_TOTAL = "free sulfur dioxide cannot exceed total sulfur dioxide"
_ROW = attrgetter(*(f.field for f in FEATURES))
FREE_INDEX, TOTAL_INDEX = FEATURE_NAMES.index(FREE_SO2), FEATURE_NAMES.index(TOTAL_SO2)
_FREE_FIELD, _TOTAL_FIELD = FEATURES[FREE_INDEX].field, FEATURES[TOTAL_INDEX].field


class _WineBase(BaseModel):
    # strict: a string "7.4" or a boolean is refused rather than coerced; extra fields are refused, not dropped
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False, frozen=True)

    @model_validator(mode="after")
    def _consistent(self) -> _WineBase:
        if getattr(self, _FREE_FIELD) > getattr(self, _TOTAL_FIELD):
            raise ValueError(FREE_ABOVE_TOTAL)
        return self

    def as_dict(self) -> dict[str, float]:
        """The sample keyed by the feature names, in schema order."""
        return {f.name: getattr(self, f.field) for f in FEATURES}

    def as_row(self) -> tuple[float, ...]:
        """The sample as floats in schema order."""
        return cast(tuple[float, ...], _ROW(self))


def measurement(feature: Feature) -> Any:
    """The type of one measurement: a finite JSON number within the feature's physical bounds, never coerced."""
    return Annotated[
        float,
        Field(
            ge=feature.low,
            le=feature.high,
            strict=True,
            allow_inf_nan=False,
            description=f"{feature.description} ({feature.unit})",
        ),
    ]


def _field(feature: Feature) -> Any:
    return (
        Annotated[
            measurement(feature), Field(alias=feature.name, json_schema_extra={"example": EXAMPLE[feature.name]})
        ],
        ...,
    )


if TYPE_CHECKING:  # the fields are made from FEATURES below; type checkers see the base class

    class Wine(_WineBase):
        """One wine sample."""

else:
    Wine = create_model(
        "Wine",
        __base__=_WineBase,
        __doc__="One wine sample: the 11 measurements, keyed by the seed's JSON names.",
        **{f.field: _field(f) for f in FEATURES},
    )
    Wine.model_config["json_schema_extra"] = {"example": EXAMPLE}
    Wine.model_rebuild(force=True)


def _checked_rows(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Rows validated in one pass of pydantic-core; the errors, and the SO2 rule, name row and feature.

    A validator per row would cost a Python call per row (half the validation of 1,000 rows); here Python runs once
    per request, and walks the errors only when there are some.
    """
    try:
        rows = handler(value)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = error["loc"]
            where = f"row {loc[0]}" if loc and isinstance(loc[0], int) else "rows"
            if len(loc) > 1 and isinstance(loc[1], int):
                where += f", {FEATURE_NAMES[loc[1]]}"
            problems.append(f"{where}: {error['msg']}")
        raise PydanticCustomError("wine_rows", "{problems}", {"problems": "; ".join(problems)}) from None
    broken = [i for i, row in enumerate(rows) if row[FREE_INDEX] > row[TOTAL_INDEX]]
    if broken:
        problem = "; ".join(f"row {i}: {FREE_ABOVE_TOTAL}" for i in broken)
        raise PydanticCustomError("wine_rows", "{problems}", {"problems": problem})
    return rows


if TYPE_CHECKING:
    WineRow = tuple[float, ...]
else:  # the 11 measurements in schema order, each with its own bounds
    WineRow = tuple[tuple(measurement(f) for f in FEATURES)]
# Validate a list of rows with this: `Annotated[list[WineRow], ..., ROWS_CHECK]`
ROWS_CHECK = WrapValidator(_checked_rows)
