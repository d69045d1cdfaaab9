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


def _checks(annotation: object) -> list[str]:
    """The names of the checks an optional field's annotation holds (its `Annotated` member's metadata)."""
    (member,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    return [type(m).__name__ for m in typing.get_args(member)[1:]]


def test_the_batch_checks_run_twice_in_bentoml_s_copy() -> None:
    """BentoML's request model over ours (upstream report 7 of docs/patches.md) holds each check of `samples` and
    `data` twice; through it, batches parse to the same wines and bad rows are refused with the same words.

    The first assertion is the canary: once BentoML keeps the metadata once, it fails, and the note on the batch
    checks running twice (payloads._typed_rows, schema._checked_rows) can go."""
    from _bentoml_sdk.io_models import ensure_io_descriptor
    from pydantic import ValidationError

    copy = ensure_io_descriptor(BatchRequest)
    for field in ("samples", "data"):
        ours, theirs = (_checks(m.model_fields[field].annotation) for m in (BatchRequest, copy))
        assert ours and sorted(theirs) == sorted(ours * 2)
    names = [f.name for f in FEATURES]
    row = [f.low + (f.high - f.low) / 3 for f in FEATURES]
    row[5] = row[6] / 2  # free SO2 within total
    typed = {"model": "torch", "columns": [*names, "type"], "data": [[*row, "white"], [*row, "red"]]}
    for model in (BatchRequest, copy):
        wines = model.model_validate(typed).wines()
        assert wines.types == ["white", "red"] and np.array_equal(wines.rows, np.array([row, row]))
    bad = {"model": "torch", "columns": names, "data": [row, [*row, "white"]]}
    said = []
    for model in (BatchRequest, copy):
        try:
            model.model_validate(bad)
        except ValidationError as exc:
            said.append(exc.errors()[0]["msg"])
    assert len(said) == 2 and said[0] == said[1] and said[0].startswith("row 1: 12 values for 11 columns")
