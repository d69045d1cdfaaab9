"""The classes written out by hand (model services, wines, requests, settings) say what the registries say."""

from __future__ import annotations

import typing

import numpy as np

from wine_quality.kinds import KINDS, REGRESSION_KINDS
from wine_quality.payloads import BatchRequest, ClassifyBatchRequest
from wine_quality.protocols.mlflow_scoring import KindName
from wine_quality.schema import FEATURES, Wine, WineRow
from wine_quality.settings import ServerSettings


def _literal(annotation: object) -> tuple[object, ...]:
    return typing.get_args(annotation)


def test_there_is_one_model_service_per_registered_kind(trained: object) -> None:
    """Each kind of the registry has its model service, named after it, serving that kind."""
    from wine_quality.model_service import MODEL_SERVICES

    assert list(MODEL_SERVICES) == list(KINDS)
    for kind, service in MODEL_SERVICES.items():
        assert service.name == f"wine_quality_{kind}"
        assert service.inner.kind == kind


def test_the_wine_lists_the_features_in_schema_order() -> None:
    """Wine's fields are the schema's features, in order, each under its JSON name and with its bounds, then its
    type (red when left out)."""
    fields = list(Wine.model_fields.items())
    assert [(name, info.alias) for name, info in fields] == [(f.field, f.name) for f in FEATURES] + [("type", None)]
    assert Wine.model_fields["type"].default == "red"
    schema = Wine.model_json_schema(by_alias=True)["properties"]
    assert [(schema[f.name]["minimum"], schema[f.name]["maximum"]) for f in FEATURES] == [
        (f.low, f.high) for f in FEATURES
    ]


def test_a_row_has_the_bounds_of_the_features_in_order() -> None:
    """WineRow's items are the features' bounds, position by position."""
    from pydantic import TypeAdapter

    items = TypeAdapter(WineRow).json_schema()["prefixItems"]
    assert [(i["minimum"], i["maximum"]) for i in items] == [(f.low, f.high) for f in FEATURES]


def test_the_named_model_kinds_are_the_registry_s() -> None:
    """The kinds a request may name are the registry's: regressors for grades, the classifier for probabilities."""
    classifiers = tuple(k for k in KINDS if k not in REGRESSION_KINDS)
    assert _literal(BatchRequest.model_fields["model"].annotation) == REGRESSION_KINDS
    assert _literal(ClassifyBatchRequest.model_fields["model"].annotation) == classifiers
    assert _literal(KindName) == REGRESSION_KINDS
    assert _literal(ServerSettings.model_fields["invocations_model"].annotation) == REGRESSION_KINDS


def test_a_batch_gives_its_rows_in_order_whatever_its_form() -> None:
    """`samples` and `columns`/`data` of the same wines give the same array, and the same types."""
    rows = np.array([[f.low + (f.high - f.low) / (i + 2) for f in FEATURES] for i in range(3)])
    rows[:, 5] = rows[:, 6] / 2  # free SO2 within total
    samples = [dict(zip([f.name for f in FEATURES], row, strict=True)) for row in rows.tolist()]
    by_sample = BatchRequest.model_validate({"model": "sklearn", "samples": samples})
    by_column = BatchRequest.model_validate(
        {"model": "sklearn", "columns": [f.name for f in FEATURES], "data": rows.tolist()}
    )
    assert np.array_equal(by_sample.wines().rows, rows) and np.array_equal(by_column.wines().rows, rows)
    assert by_sample.wines().types == by_column.wines().types == ["red"] * 3
    typed = BatchRequest.model_validate(
        {
            "model": "sklearn",
            "columns": [*(f.name for f in FEATURES), "type"],
            "data": [[*r, "white"] for r in rows.tolist()],
        }
    )
    assert np.array_equal(typed.wines().rows, rows) and typed.wines().types == ["white"] * 3
