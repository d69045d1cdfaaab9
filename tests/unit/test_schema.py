"""The feature schema: names, order, bounds and the refusal of impossible samples."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from train.data import RED
from wine_quality.schema import EXAMPLE, FEATURE_NAMES, FEATURES, Wine, WineRequest


def test_feature_names_follow_the_data_files_header() -> None:
    """The schema's order is the order of the CSV columns (quality excluded)."""
    header = RED.read_text().splitlines()[0].split(",")
    assert list(FEATURE_NAMES) == header[:-1]


def test_example_is_the_seed_payload_and_valid() -> None:
    """The example sample validates and round-trips to the same values in schema order."""
    wine = Wine.model_validate(EXAMPLE)
    assert wine.as_row() == tuple(EXAMPLE[name] for name in FEATURE_NAMES)
    assert wine.as_dict() == EXAMPLE


def test_openapi_schema_uses_the_seed_names() -> None:
    """The JSON schema lists every feature under its name with spaces, with bounds, all required; then the optional
    type, red or white."""
    schema = Wine.model_json_schema(by_alias=True)
    assert list(schema["properties"]) == [*FEATURE_NAMES, "type"]
    assert set(schema["required"]) == set(FEATURE_NAMES)
    assert schema["properties"]["type"]["enum"] == ["red", "white"] and schema["properties"]["type"]["default"] == "red"
    assert schema["properties"]["pH"]["maximum"] == 14.0


def test_whole_numbers_are_accepted_as_measurements() -> None:
    """A JSON integer such as 11 is a valid measurement."""
    assert Wine.model_validate({**EXAMPLE, "free sulfur dioxide": 11}).as_dict()["free sulfur dioxide"] == 11.0


def _errors(sample: dict[str, object]) -> list[tuple[tuple[object, ...], str]]:
    with pytest.raises(ValidationError) as info:
        WineRequest.model_validate(sample)
    return [(tuple(e["loc"]), e["msg"]) for e in info.value.errors()]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pH", -0.1, "greater than or equal to 0"),
        ("pH", 14.5, "less than or equal to 14"),
        ("alcohol", math.nan, "finite number"),
        ("density", math.inf, "finite number"),
        ("alcohol", "9.4", "valid number"),
        ("alcohol", True, "valid number"),
        ("chlorides", None, "valid number"),
    ],
)
def test_it_refuses_an_impossible_or_mistyped_value(field: str, value: object, message: str) -> None:
    """Each bad value is refused, naming the field and the problem."""
    errors = _errors({**EXAMPLE, field: value})
    assert len(errors) == 1
    assert errors[0][0] == (field,)
    assert message in errors[0][1]


def test_it_refuses_a_missing_field() -> None:
    """A sample without alcohol names alcohol as missing."""
    sample = dict(EXAMPLE)
    del sample["alcohol"]
    assert _errors(sample) == [(("alcohol",), "Field required")]


def test_it_refuses_an_extra_field_rather_than_dropping_it() -> None:
    """An unknown field (here the Python name instead of the JSON name) is refused, not ignored."""
    errors = _errors({**EXAMPLE, "fixed_acidity": 7.4})
    assert errors == [(("fixed_acidity",), "Extra inputs are not permitted")]


def test_it_refuses_more_free_than_total_sulfur_dioxide() -> None:
    """Free SO2 is part of total SO2, so it cannot be larger."""
    errors = _errors({**EXAMPLE, "free sulfur dioxide": 40.0, "total sulfur dioxide": 34.0})
    assert "free sulfur dioxide cannot exceed total sulfur dioxide" in errors[0][1]


def test_bounds_contain_every_value_in_the_shipped_data() -> None:
    """The physical bounds are wide enough for every real wine in the data."""
    from train.data import WHITE, load_wines

    for path in (RED, WHITE):
        frame = load_wines(path)
        for f in FEATURES:
            assert f.low <= frame[f.name].min() and frame[f.name].max() <= f.high
