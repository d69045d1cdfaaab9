"""POST /classify and /classify_batch against the real server: probabilities that sum to 1, equal to the model's."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from harness.traffic import samples
from tests.integration.test_service import JSON, direct, real_rows, without_ids
from wine_quality.schema import EXAMPLE, FEATURE_NAMES

pytestmark = pytest.mark.integration


def test_the_seed_payload_gets_a_probability_per_grade_and_of_a_good_wine(
    client: httpx.Client, trained: dict[str, dict[str, object]]
) -> None:
    """Every grade seen in training gets a probability, they sum to 1, P(good) is the sum from grade 7 up, and they
    equal what the saved classifier gives when called directly."""
    answer = client.post("/classify", content=json.dumps(EXAMPLE), headers=JSON)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    tag = str(trained["classifier"]["tag"])
    assert (data["model"], data["runtime"], data["good_threshold"]) == (tag, "onnx", 7)
    assert list(data["probabilities"]) == ["3", "4", "5", "6", "7", "8", "9"]  # the grades of both files
    probabilities = np.array(list(data["probabilities"].values()))
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-9) and np.all(probabilities >= 0)
    good = sum(p for grade, p in data["probabilities"].items() if int(grade) >= 7)
    assert data["good"] == pytest.approx(good, abs=1e-12)
    np.testing.assert_allclose(probabilities, direct("classifier", tag, [EXAMPLE])[0], rtol=0, atol=1e-9)
    assert data["probabilities"]["5"] == max(probabilities)  # this wine was graded 5
    assert data["outside_training_range"] == []


def test_a_batch_is_classified_in_order_like_single_wines(
    client: httpx.Client, trained: dict[str, dict[str, object]]
) -> None:
    """Rows as samples or as columns and data, with or without `"model": "classifier"`, get each row's single answer;
    the whole batch is one call to the classifier's service."""
    rows = real_rows(20)
    answer = client.post("/classify_batch", json={"samples": rows})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["model"] == trained["classifier"]["tag"] and data["good_threshold"] == 7
    batch = np.array([list(p["probabilities"].values()) for p in data["predictions"]])
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    assert len({tuple(np.round(p, 6)) for p in batch}) > 2  # different wines, different answers: order can fail
    singles = np.array([list(client.post("/classify", json=r).json()["probabilities"].values()) for r in rows[:5]])
    np.testing.assert_allclose(batch[:5], singles, rtol=0, atol=1e-9)
    np.testing.assert_allclose(batch, direct("classifier", str(data["model"]), rows), rtol=0, atol=1e-9)
    columns = {
        "model": "classifier",
        "columns": list(FEATURE_NAMES),
        "data": [[r[n] for n in FEATURE_NAMES] for r in rows],
    }
    again = client.post("/classify_batch", json=columns).json()
    assert without_ids(again) == without_ids(data)  # the columnar form answers the same, each wine a new id
    assert len({p["id"] for p in again["predictions"] + data["predictions"]}) == 2 * len(rows)


@pytest.mark.parametrize(
    ("route", "body", "where"),
    [
        ("/classify", {k: v for k, v in EXAMPLE.items() if k != "pH"}, "pH"),
        ("/classify", {**EXAMPLE, "alcohol": -1}, "alcohol"),
        ("/classify", {**EXAMPLE, "colour": 1.0}, "colour"),
        ("/classify_batch", {"model": "sklearn", "samples": [EXAMPLE]}, "model"),
        ("/classify_batch", {"samples": []}, "samples"),
        ("/predict_batch", {"model": "classifier", "samples": [EXAMPLE]}, "model"),
    ],
    ids=["missing field", "negative", "extra field", "a regressor", "no rows", "classifier on predict_batch"],
)
def test_bad_input_gets_a_400_naming_the_field(client: httpx.Client, route: str, body: object, where: str) -> None:
    """Malformed wines and model names are refused with 400 and the field at fault, never a 5xx."""
    answer = client.post(route, json=body)
    assert answer.status_code == 400, answer.text
    assert any(where in e["loc"] for e in answer.json()["detail"]), answer.json()


def test_classified_wines_reach_the_drift_monitor(client: httpx.Client) -> None:
    """Wines sent to /classify and /classify_batch are watched like graded ones: each wine with an alcohol above the
    training range counts once on the classifier's out-of-range counter, which the drift monitor keeps."""

    def counted() -> float:
        found = samples(client.get("/metrics").text, "wine_outside_training_range_total")
        return found.get(("alcohol", "classifier", "red"), 0.0)

    strong = {**EXAMPLE, "alcohol": 16.0}
    before = counted()
    assert client.post("/classify", content=json.dumps(strong), headers=JSON).status_code == 200
    batch = {"columns": list(FEATURE_NAMES), "data": [list(strong.values())] * 3}
    assert client.post("/classify_batch", json=batch).status_code == 200
    assert counted() == before + 4
