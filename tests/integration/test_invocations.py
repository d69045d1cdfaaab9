"""MLflow's scoring protocol on the real server: MLflow's own scoring client, and the request shapes of its docs."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow.models import convert_input_example_to_serving_input
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

from harness.devserver import Server
from train.data import RED, load_wines
from wine_quality.schema import EXAMPLE, FEATURE_NAMES

pytestmark = pytest.mark.integration
ROW = list(EXAMPLE.values())


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """300 distinct rows of the red file, the columns in reverse order (named columns: any order)."""
    return load_wines(RED)[list(FEATURE_NAMES)[::-1]].drop_duplicates().head(300).reset_index(drop=True)


def batch_grades(client: httpx.Client, kind: str, frame: pd.DataFrame) -> list[float]:
    """What /predict_batch answers for the same rows."""
    rows = frame[list(FEATURE_NAMES)].to_numpy(dtype=np.float64).tolist()
    answer = client.post("/predict_batch", json={"model": kind, "columns": list(FEATURE_NAMES), "data": rows})
    assert answer.status_code == 200, answer.text
    return [p["quality"] for p in answer.json()["predictions"]]


def test_mlflow_scoring_client_gets_the_grades_of_predict_batch(
    server: Server, client: httpx.Client, frame: pd.DataFrame
) -> None:
    """MLflow's ScoringServerClient: /ping answers, and a DataFrame is graded by the default (sklearn) model."""
    host, port = server.url.removeprefix("http://").split(":")
    scoring = ScoringServerClient(host, int(port))
    scoring.wait_server_ready(timeout=10)
    answer = scoring.invoke(frame)  # sent as dataframe_split, with pandas' index
    assert answer["predictions"] == batch_grades(client, "sklearn", frame)


def graded(answer: httpx.Response) -> list[float]:
    """The grades of a scoring answer, which also gives each wine its own id (`ids`, for POST /feedback)."""
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"predictions", "ids"} and len(set(body["ids"])) == len(body["predictions"])
    grades: list[float] = body["predictions"]
    return grades


@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_every_json_format_and_csv_answers_the_same_grades(
    client: httpx.Client, frame: pd.DataFrame, kind: str
) -> None:
    """dataframe_split, dataframe_records, instances, inputs and text/csv, as MLflow's docs send them: same grades."""
    expected = batch_grades(client, kind, frame)
    params = {"model": kind}
    bodies = [
        {"dataframe_split": frame.to_dict(orient="split")},
        {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}},
        {"dataframe_records": frame.to_dict(orient="records")},
        {"instances": frame.to_dict(orient="records")},
        {"inputs": frame.to_dict(orient="list")},
    ]
    for body in bodies:
        answer = client.post("/invocations", params=params, json=body)
        assert graded(answer) == expected, list(body)
    served_input = convert_input_example_to_serving_input(frame)  # MLflow's own serving payload for an example
    assert served_input is not None
    answer = client.post(
        "/invocations", params=params, content=served_input, headers={"Content-Type": "application/json"}
    )
    assert graded(answer) == expected
    csv = frame.to_csv(index=False)
    answer = client.post("/invocations", params=params, content=csv, headers={"Content-Type": "text/csv"})
    assert graded(answer) == expected


def test_without_a_query_parameter_the_setting_chooses_the_model(client: httpx.Client, frame: pd.DataFrame) -> None:
    """The default WINE_INVOCATIONS_MODEL is sklearn; ?model=torch picks the network, whose grades differ."""
    body = {"dataframe_split": frame.to_dict(orient="split")}
    default = graded(client.post("/invocations", json=body))
    assert default == batch_grades(client, "sklearn", frame)
    assert graded(client.post("/invocations?model=torch", json=body)) != default


def split(columns: list[str], row: list[Any]) -> dict[str, Any]:
    return {"dataframe_split": {"columns": columns, "data": [row]}}


NAMES = list(FEATURE_NAMES)
REFUSED: list[tuple[Any, str]] = [
    (split(NAMES[:-1], ROW[:-1]), "missing ['alcohol']"),
    (split([*NAMES[:-1], "Alcohol"], ROW), "missing ['alcohol']; unknown ['Alcohol']"),
    (split([*NAMES, "quality"], [*ROW, 5]), "unknown ['quality']"),
    (split(NAMES, [*ROW[:8], 15.0, *ROW[9:]]), "row 0, pH: Input should be less than or equal to 14"),
    (split(NAMES, [*ROW[:8], "3.5", *ROW[9:]]), "dataframe_split row 0, column 'pH': '3.5' is not a number"),
    (split(NAMES, ROW[:10]), "dataframe_split row 0: 10 values for 11 columns"),
    ({"dataframe_split": {"data": [ROW]}}, "dataframe_split: `columns` is missing"),
    ({"dataframe_records": [EXAMPLE, {**EXAMPLE, "ph": 3.5}]}, "dataframe_records[1]: columns must be"),
    ({"instances": [{**EXAMPLE, "free sulfur dioxide": 40.0}]}, "free sulfur dioxide cannot exceed total"),
    ({"inputs": {**{k: [v] for k, v in EXAMPLE.items()}, "pH": [3.5, 3.6]}}, "every column needs the same number"),
    ({"instances": [EXAMPLE], "inputs": [EXAMPLE]}, "send exactly one of dataframe_split, dataframe_records"),
    ({"data": [ROW]}, "data: Extra inputs are not permitted"),
    ({"instances": [EXAMPLE], "params": {"k": 1}}, "params: these models take no parameters"),
    ({"instances": []}, "instances: List should have at least 1 item"),
]


@pytest.mark.parametrize(("body", "problem"), REFUSED, ids=[p[:40] for _, p in REFUSED])
def test_a_wrong_json_request_gets_a_400_naming_the_problem(client: httpx.Client, body: Any, problem: str) -> None:
    """Wrong, missing or extra columns, a bad value, two formats, params: 400 in MLflow's error shape."""
    answer = client.post("/invocations", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_code"] == "BAD_REQUEST" and problem in answer.json()["message"]


def test_csv_and_content_type_refusals(client: httpx.Client, frame: pd.DataFrame) -> None:
    """pandas' index column, a non-number cell, another media type, an unknown ?model=: each named."""
    answer = client.post("/invocations", content=frame.head(2).to_csv(), headers={"Content-Type": "text/csv"})
    assert answer.status_code == 400 and "write the frame with index=False" in answer.json()["message"]
    cells = ",".join(NAMES) + "\n" + ",".join(["7.4", "abc", *map(str, ROW[2:])]) + "\n"
    answer = client.post("/invocations", content=cells, headers={"Content-Type": "text/csv; charset=utf-8"})
    assert answer.json()["message"] == "CSV row 1, column 'volatile acidity': 'abc' is not a number"
    answer = client.post("/invocations", content=b"PAR1", headers={"Content-Type": "application/vnd.apache.parquet"})
    assert answer.status_code == 415 and "send application/json or text/csv" in answer.json()["message"]
    answer = client.post("/invocations?model=xgboost", json={"instances": [EXAMPLE]})
    assert answer.status_code == 400
    assert answer.json() == {
        "error_code": "BAD_REQUEST",
        "message": "query.model: Input should be 'sklearn' or 'torch'",
    }


def test_the_openapi_document_declares_the_scoring_protocol(client: httpx.Client) -> None:
    """/invocations documents both media types, the ?model= choices and its 400/415 errors, and no 422."""
    operation = client.get("/docs.json").json()["paths"]["/invocations"]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/json", "text/csv"}
    [model] = operation["parameters"]
    assert model["name"] == "model" and "WINE_INVOCATIONS_MODEL" in model["description"]
    assert {"200", "400", "415"} <= set(operation["responses"]) and "422" not in operation["responses"]
