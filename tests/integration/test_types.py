"""Red and white wines through every JSON route and MLflow's scoring protocol of the real server (V2: test_protocols,
the page: test_ui_types, drift per type: test_monitoring)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from train.data import RED, WHITE, load_wines
from wine_quality.schema import EXAMPLE, FEATURE_NAMES

pytestmark = pytest.mark.integration
ROUTES = {"sklearn": "/predict", "torch": "/predict_net"}


def wines(path: Path, n: int) -> list[dict[str, float]]:
    """n distinct wines of a data file, their measurements only, from its middle (typical of its type)."""
    frame = load_wines(path)[list(FEATURE_NAMES)].drop_duplicates()
    middle = len(frame) // 2
    return [{k: float(v) for k, v in row.items()} for row in frame.iloc[middle : middle + n].to_dict("records")]


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_the_seed_s_wine_is_red_and_answers_as_before(client: httpx.Client, kind: str) -> None:
    """The seed's payload has no type: it is graded as red, the same as with "type": "red", and says so."""
    seed = ok(client.post(ROUTES[kind], json=EXAMPLE))
    red = ok(client.post(ROUTES[kind], json={**EXAMPLE, "type": "red"}))
    assert seed["type"] == red["type"] == "red"
    assert {k: v for k, v in seed.items() if k != "id"} == {k: v for k, v in red.items() if k != "id"}


@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_a_white_wine_gets_white_s_interval_and_training_ranges(client: httpx.Client, kind: str) -> None:
    """Typical white wines sent as white are within white's training ranges and get intervals calibrated on white
    wines; the same wines sent untyped (red) are graded differently."""
    card = ok(client.get("/models"))["models"][kind]
    white_ranges = card["types"]["white"]["feature_ranges"]
    for wine in wines(WHITE, 5):
        as_white = ok(client.post(ROUTES[kind], json={**wine, "type": "white"}))
        as_red = ok(client.post(ROUTES[kind], json=wine))
        assert as_white["type"] == "white" and as_white["outside_training_range"] == []
        assert all(low <= wine[name] <= high for name, (low, high) in white_ranges.items())
        assert as_white["model"] == as_red["model"] == card["tag"]  # one model service per kind
        assert as_white["quality"] != as_red["quality"]  # the type is an input of the model
        assert as_white["interval"]["low"] <= as_white["quality"] <= as_white["interval"]["high"]


def test_the_classifier_grades_white_wines_as_white(client: httpx.Client) -> None:
    """/classify with a white type: probabilities that sum to 1 and differ from the same wine's as red."""
    wine = wines(WHITE, 1)[0]
    as_white = ok(client.post("/classify", json={**wine, "type": "white"}))
    as_red = ok(client.post("/classify", json=wine))
    assert as_white["type"] == "white" and sum(as_white["probabilities"].values()) == pytest.approx(1.0)
    assert as_white["probabilities"] != as_red["probabilities"]


@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_a_mixed_batch_answers_each_wine_as_its_type(client: httpx.Client, kind: str) -> None:
    """A batch of red and white wines, as samples with a type and as columns ending with `type`: each wine's answer
    is the one its own request gets, in order."""
    mixed = [{**w, "type": "red"} for w in wines(RED, 3)] + [{**w, "type": "white"} for w in wines(WHITE, 3)]
    singles = [ok(client.post(ROUTES[kind], json=w)) for w in mixed]
    by_samples = ok(client.post("/predict_batch", json={"model": kind, "samples": mixed}))["predictions"]
    rows = [[*(w[n] for n in FEATURE_NAMES), w["type"]] for w in mixed]
    columns = {"model": kind, "columns": [*FEATURE_NAMES, "type"], "data": rows}
    by_columns = ok(client.post("/predict_batch", json=columns))["predictions"]
    fields = ("quality", "interval", "outside_training_range", "type")
    for answers in (by_samples, by_columns):
        assert [{f: a[f] for f in fields} for a in answers] == [{f: s[f] for f in fields} for s in singles]
    classified = ok(client.post("/classify_batch", json={"samples": mixed}))["predictions"]
    assert [c["type"] for c in classified] == ["red"] * 3 + ["white"] * 3


def test_a_wrong_type_is_a_400_naming_the_field(client: httpx.Client) -> None:
    """Any type but red or white is refused, naming `type` (and the row, in a batch)."""
    answer = client.post("/predict", json={**EXAMPLE, "type": "rose"})
    assert answer.status_code == 400 and "type" in answer.json()["detail"][0]["loc"]
    assert "'red' or 'white'" in answer.json()["detail"][0]["msg"]
    rows = [[*EXAMPLE.values(), "white"], [*EXAMPLE.values(), "rose"]]
    batch = client.post("/predict_batch", json={"model": "sklearn", "columns": [*FEATURE_NAMES, "type"], "data": rows})
    assert batch.status_code == 400 and "row 1, type" in batch.text
    untyped = client.post("/predict_batch", json={"model": "sklearn", "columns": list(FEATURE_NAMES), "data": rows})
    assert untyped.status_code == 400  # a type value without its column is not a measurement
    assert "row 0: 12 values for 11 columns" in untyped.text  # said in the columns' terms, not as a long tuple
    short = [[*EXAMPLE.values(), "white"], list(EXAMPLE.values())]
    typed = client.post("/predict_batch", json={"model": "sklearn", "columns": [*FEATURE_NAMES, "type"], "data": short})
    assert typed.status_code == 400 and "row 1: 11 values for 12 columns" in typed.text


@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_in_a_batch_only_the_wines_out_of_range_are_flagged(client: httpx.Client, kind: str) -> None:
    """Each wine's out-of-range features are its own: one strong red wine among typical ones is the only one flagged,
    as samples and as columns, and a wine of each type in one batch is judged by its own type's ranges."""
    batch = wines(RED, 4)
    batch[1]["alcohol"] = 20.0  # within the schema's bounds, above every red wine of the training data
    samples = ok(client.post("/predict_batch", json={"model": kind, "samples": batch}))["predictions"]
    rows = [[w[n] for n in FEATURE_NAMES] for w in batch]
    columns = {"model": kind, "columns": list(FEATURE_NAMES), "data": rows}
    by_columns = ok(client.post("/predict_batch", json=columns))["predictions"]
    for answers in (samples, by_columns):
        assert [a["outside_training_range"] for a in answers] == [[], ["alcohol"], [], []]
    mixed = [{**batch[1], "type": "red"}, {**wines(WHITE, 1)[0], "type": "white"}, {**batch[0], "type": "red"}]
    answers = ok(client.post("/predict_batch", json={"model": kind, "samples": mixed}))["predictions"]
    assert [a["outside_training_range"] for a in answers] == [["alcohol"], [], []]


@pytest.mark.parametrize("form", ["dataframe_split", "csv"])
def test_mlflow_scoring_takes_a_type_column(client: httpx.Client, form: str) -> None:
    """/invocations with a `type` column, as JSON or CSV: each wine graded as its type, as /predict_batch does."""
    mixed = [{**w, "type": "white"} for w in wines(WHITE, 3)] + [{**w, "type": "red"} for w in wines(RED, 2)]
    names = ["type", *FEATURE_NAMES[::-1]]  # named columns: any order
    table = [[w[n] for n in names] for w in mixed]
    if form == "csv":
        text = "\n".join([",".join(names), *(",".join(str(v) for v in row) for row in table)]) + "\n"
        answer = client.post("/invocations", content=text, headers={"Content-Type": "text/csv"})
    else:
        answer = client.post("/invocations", json={"dataframe_split": {"columns": names, "data": table}})
    grades = ok(answer)["predictions"]
    expected = ok(client.post("/predict_batch", json={"model": "sklearn", "samples": mixed}))["predictions"]
    assert grades == [p["quality"] for p in expected]
    untyped = ok(
        client.post("/invocations", json={"dataframe_records": [{n: w[n] for n in FEATURE_NAMES} for w in mixed]})
    )
    assert np.not_equal(untyped["predictions"][:3], grades[:3]).any()  # the white ones were graded as white
