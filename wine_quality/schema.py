"""The one definition of the wine features: names, order, units, physical bounds and an example."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Annotated, Any, Literal, Protocol, cast

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError


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

# The two wines of the data (a `type` column in the widely used combined file); a wine without a type is red.
WineType = Literal["red", "white"]
TYPES: tuple[WineType, ...] = ("red", "white")
TYPE_COLUMN = "type"
# What every model takes, in this order: the 11 features, then `white` (0.0 red, 1.0 white).
WHITE_INPUT = "white"
MODEL_INPUTS: tuple[str, ...] = (*FEATURE_NAMES, WHITE_INPUT)

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


# The one rule across fields: free SO2 is part of total SO2. Samples and whole data files are checked by it; JSON
# Schema cannot state it, so every wine schema's description does.
FREE_SO2, TOTAL_SO2 = "free sulfur dioxide", "total sulfur dioxide"
FREE_ABOVE_TOTAL = "free sulfur dioxide cannot exceed total sulfur dioxide"
FREE_INDEX, TOTAL_INDEX = FEATURE_NAMES.index(FREE_SO2), FEATURE_NAMES.index(TOTAL_SO2)
SO2_RULE = "Free sulfur dioxide cannot exceed total sulfur dioxide (a rule across fields, beyond JSON Schema)."
_BY_NAME = {f.name: f for f in FEATURES}
LOW = np.array([f.low for f in FEATURES])
HIGH = np.array([f.high for f in FEATURES])


def column_problems(columns: Sequence[str]) -> list[str]:
    """What keeps names from being the 11 features once each: missing, unknown and repeated names (empty if none)."""
    missing = [name for name in FEATURE_NAMES if name not in columns]
    unknown = [name for name in columns if name not in FEATURE_NAMES]
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    found = {"missing": missing, "unknown": unknown, "repeated": repeated}
    return [f"{what} {names}" for what, names in found.items() if names]


def bounds(name: str) -> Any:
    """A measurement's constraints: a finite JSON number within the feature's physical bounds, never coerced."""
    feature = _BY_NAME[name]
    return Field(
        ge=feature.low,
        le=feature.high,
        strict=True,
        allow_inf_nan=False,
        description=f"{feature.description} ({feature.unit})",
    )


def measurement(name: str) -> Any:
    """A wine's field for one measurement: its bounds, under the seed's JSON name, with the example's value."""
    return FieldInfo.merge_field_infos(bounds(name), Field(alias=name, json_schema_extra={"example": EXAMPLE[name]}))


class Wine(BaseModel):
    """One wine sample: the 11 measurements, keyed by the seed's JSON names, and its type. The SO2 rule is checked
    by whatever holds wines: `WineRequest` for one, `SAMPLES_CHECK` for a list (one Python call per list, not per
    wine: half the validation of 1,000 samples was that call)."""

    # strict: a string "7.4" or a boolean is refused rather than coerced; extra fields are refused, not dropped
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=False,
        frozen=True,
        json_schema_extra={
            "description": f"One wine sample: the 11 measurements, keyed by their names. {SO2_RULE}",
            "example": dict(EXAMPLE),
        },
    )

    fixed_acidity: Annotated[float, measurement("fixed acidity")]
    volatile_acidity: Annotated[float, measurement("volatile acidity")]
    citric_acid: Annotated[float, measurement("citric acid")]
    residual_sugar: Annotated[float, measurement("residual sugar")]
    chlorides: Annotated[float, measurement("chlorides")]
    free_sulfur_dioxide: Annotated[float, measurement("free sulfur dioxide")]
    total_sulfur_dioxide: Annotated[float, measurement("total sulfur dioxide")]
    density: Annotated[float, measurement("density")]
    pH: Annotated[float, measurement("pH")]  # noqa: N815 - the seed's name
    sulphates: Annotated[float, measurement("sulphates")]
    alcohol: Annotated[float, measurement("alcohol")]

    type: WineType = Field(
        "red", description="red or white: the wine's model, calibration and training ranges; red when left out"
    )

    def as_dict(self) -> dict[str, float]:
        """The sample keyed by the feature names, in schema order."""
        return {f.name: getattr(self, f.field) for f in FEATURES}

    def as_row(self) -> tuple[float, ...]:
        """The sample as floats in schema order."""
        return cast(tuple[float, ...], ROW_OF(self))

    def wines(self) -> Wines:
        """The sample as the data plane takes wines: one row [1, 11] and its type."""
        return Wines(np.array([ROW_OF(self)], dtype=np.float64), np.array([self.type == "white"]))


class WineRequest(Wine):
    """One wine sample as a request's whole body (the seed's payload): the 11 measurements, keyed by their names."""

    @model_validator(mode="after")
    def _consistent(self) -> WineRequest:
        if self.free_sulfur_dioxide > self.total_sulfur_dioxide:
            raise ValueError(FREE_ABOVE_TOTAL)
        return self


def _checked_samples(samples: list[Wine]) -> list[Wine]:
    """The SO2 rule over a list of wines, each breach where `WineRequest` would put it: at the wine's index."""
    broken = [i for i, s in enumerate(samples) if s.free_sulfur_dioxide > s.total_sulfur_dioxide]
    if broken:
        error = ValueError(FREE_ABOVE_TOTAL)
        details: list[InitErrorDetails] = [
            {"type": "value_error", "loc": (i,), "input": samples[i], "ctx": {"error": error}} for i in broken
        ]
        raise ValidationError.from_exception_data("samples", details)
    return samples


# Validate a list of wines with this: `Annotated[list[Wine], ..., SAMPLES_CHECK]` (only samples that are each
# valid are checked against the rule: a list with both kinds of problem is answered with the others)
SAMPLES_CHECK = AfterValidator(_checked_samples)


@dataclass(frozen=True)
class Wines:
    """Checked wines as the data plane takes them, from any protocol: their measurements and their types."""

    rows: np.ndarray  # [N, 11] float64, schema order
    white: np.ndarray  # [N] bool: white wines (the others are red)

    @classmethod
    def of(cls, rows: np.ndarray, types: Sequence[str] | None = None) -> Wines:
        """Rows and their types ("red" or "white" each, checked by the caller); none given: every wine is red."""
        white = np.zeros(len(rows), dtype=bool) if types is None else np.array([t == "white" for t in types])
        return cls(rows, white)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def one_type(self) -> WineType | None:
        """The type of every wine when they are all of one (nearly every request), else None."""
        parts = by_type(self.white)
        return parts[0][0] if len(parts) == 1 else None

    @property
    def types(self) -> list[WineType]:
        """Each wine's type, in order."""
        one = self.one_type
        if one is not None:  # nearly every request
            return [one] * len(self.white)
        return ["white" if w else "red" for w in self.white.tolist()]

    def model_input(self) -> np.ndarray:
        """What every model takes (MODEL_INPUTS): the 11 measurements, then 1.0 for a white wine, 0.0 for red."""
        return np.column_stack([self.rows, self.white.astype(np.float64)])


# A sample's 11 measurements as a tuple in schema order (one C call: what `Wine.as_row` returns)
ROW_OF = attrgetter(*(f.field for f in FEATURES))
_ALL = slice(None)


def by_type(white: np.ndarray) -> list[tuple[WineType, slice | np.ndarray]]:
    """Each type with rows among these, and which rows are of it: a boolean mask, or every row (a slice, which
    indexes without copying) when all the rows are of one type, as nearly every request's are."""
    n_white = int(np.count_nonzero(white))
    if n_white == 0:
        return [("red", _ALL)]
    if n_white == len(white):
        return [("white", _ALL)]
    white = np.asarray(white, dtype=bool)
    return [("red", ~white), ("white", white)]


# One wine as a row: the 11 measurements in schema order, each with its own bounds (a JSON array of fixed items).
WineRow = tuple[
    Annotated[float, bounds("fixed acidity")],
    Annotated[float, bounds("volatile acidity")],
    Annotated[float, bounds("citric acid")],
    Annotated[float, bounds("residual sugar")],
    Annotated[float, bounds("chlorides")],
    Annotated[float, bounds("free sulfur dioxide")],
    Annotated[float, bounds("total sulfur dioxide")],
    Annotated[float, bounds("density")],
    Annotated[float, bounds("pH")],
    Annotated[float, bounds("sulphates")],
    Annotated[float, bounds("alcohol")],
]
_SHOWN = 3  # a 1,000-row request with every value wrong names the first few problems, and how many there are


def _listed(problems: list[str]) -> str:
    more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
    return "; ".join(problems[:_SHOWN]) + more


def _checked_rows(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Rows validated in one pass of pydantic-core; the errors, and the SO2 rule, name row and feature.

    A validator per row would cost a Python call per row (half the validation of 1,000 rows); here Python runs once
    per request, and walks the errors only when there are some.
    """
    try:
        rows = handler(value)
    except ValidationError as exc:
        errors = exc.errors()
        if [error["type"] for error in errors] == ["wine_rows"]:  # already worded by this check, applied twice
            raise PydanticCustomError("wine_rows", "{problems}", errors[0]["ctx"]) from None
        problems = []
        for error in errors:
            indices = [part for part in error["loc"] if isinstance(part, int)]  # past a union's branch name, if any
            where = f"row {indices[0]}" if indices else "rows"
            if len(indices) > 1:
                where += f", {FEATURE_NAMES[indices[1]]}"
            problems.append(f"{where}: {error['msg']}")
        raise PydanticCustomError("wine_rows", "{problems}", {"problems": _listed(problems)}) from None
    broken = [f"row {i}: {FREE_ABOVE_TOTAL}" for i, row in enumerate(rows) if row[FREE_INDEX] > row[TOTAL_INDEX]]
    if broken:
        raise PydanticCustomError("wine_rows", "{problems}", {"problems": _listed(broken)})
    return rows


# Validate a list of rows with this: `Annotated[list[WineRow], ..., ROWS_CHECK]`
ROWS_CHECK = WrapValidator(_checked_rows)
_ROWS: TypeAdapter[list[WineRow]] = TypeAdapter(Annotated[list[WineRow], ROWS_CHECK])


class ValidationErrors(Protocol):
    """pydantic's ValidationError, or FastAPI's RequestValidationError: a list of errors with locations."""

    def errors(self) -> Sequence[Any]: ...


def first_error(exc: ValidationErrors) -> str:
    """A validation error as one line: where its first problem is, and what (`inputs.0.shape: Field required`)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if not str(part).startswith(("list[", "dict[")))
    return f"{where or 'body'}: {first['msg']}"


class InvalidRows(ValueError):
    """Rows that are not possible wines; the message is the one the JSON routes give for the same rows."""


def check_rows(rows: np.ndarray) -> np.ndarray:
    """Rows [N, 11] in schema order from any protocol, checked as the JSON rows are, with the same messages.

    The bounds are checked on the whole array at once (a 1,000-row request costs a few numpy comparisons); only rows
    that fail are handed to the JSON rows' validator, which words the problem.
    """
    within = (rows >= LOW) & (rows <= HIGH)  # NaN compares false: refused with the infinities
    if within.all() and not (rows[:, FREE_INDEX] > rows[:, TOTAL_INDEX]).any():
        return rows
    try:
        _ROWS.validate_python([tuple(row) for row in rows.tolist()], strict=False)
    except ValidationError as exc:
        raise InvalidRows(exc.errors()[0]["msg"]) from None
    raise AssertionError("rows the numpy check refuses must fail validation")  # pragma: no cover
