"""The Open Inference Protocol (V2) on the real server: NVIDIA's tritonclient, and httpx for every refusal."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from harness.devserver import Server
from train.data import RED, WHITE, load_wines
from wine_quality.schema import EXAMPLE, FEATURE_NAMES

pytestmark = pytest.mark.integration
NAMES = {"sklearn": "wine-quality-sklearn", "torch": "wine-quality-torch"}
OUTPUTS = ["quality", "quality_low", "quality_high", "outside_training_range", "id"]
ROW = list(EXAMPLE.values())


@pytest.fixture(scope="module")
def wines() -> np.ndarray:
    """1,000 distinct rows of the red file."""
    return load_wines(RED)[list(FEATURE_NAMES)].drop_duplicates().head(1000).to_numpy(dtype=np.float64)


@pytest.fixture()
def triton_client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=server.url.removeprefix("http://"), network_timeout=60)


def batch_answer(client: httpx.Client, kind: str, rows: np.ndarray) -> dict[str, Any]:
    """What /predict_batch answers for the same rows."""
    answer = client.post("/predict_batch", json={"model": kind, "columns": list(FEATURE_NAMES), "data": rows.tolist()})
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def assert_same_as_batch(result: triton.InferResult, expected: dict[str, Any], n: int) -> None:
    predictions = expected["predictions"]
    quality = result.as_numpy("quality")
    assert quality.shape == (n, 1) and quality.dtype == np.float64
    assert quality[:, 0].tolist() == [p["quality"] for p in predictions]
    assert result.as_numpy("quality_low")[:, 0].tolist() == [p["interval"]["low"] for p in predictions]
    assert result.as_numpy("quality_high")[:, 0].tolist() == [p["interval"]["high"] for p in predictions]
    flags = result.as_numpy("outside_training_range")
    assert flags.shape == (n, len(FEATURE_NAMES))
    assert [[FEATURE_NAMES[i] for i in np.flatnonzero(row)] for row in flags] == [
        p["outside_training_range"] for p in predictions
    ]
    # each wine's own id, for /feedback (tritonclient gives BYTES as bytes from binary data, as str from JSON)
    ids = [i.decode() if isinstance(i, bytes) else i for i in result.as_numpy("id")[:, 0]]
    assert len(set(ids)) == n and all(len(i) == 36 for i in ids) and ids == sorted(ids)


def test_the_triton_client_sees_a_live_ready_server_and_both_models(
    triton_client: triton.InferenceServerClient, trained: dict[str, dict[str, object]]
) -> None:
    """Server live and ready, each model ready at its store version; the server names its extensions."""
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    metadata = triton_client.get_server_metadata()
    assert metadata["extensions"] == ["binary_tensor_data"]
    for kind, name in NAMES.items():
        version = str(trained[kind]["tag"]).split(":")[1]
        assert triton_client.is_model_ready(name) and triton_client.is_model_ready(name, version)
        assert not triton_client.is_model_ready(name, "not-a-version")


@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_model_metadata_names_the_input_columns_outputs_and_version(
    triton_client: triton.InferenceServerClient, trained: dict[str, dict[str, object]], kind: str
) -> None:
    """The metadata: one version (the store tag's), ONNX Runtime, input `wines` [-1, 11] FP64 in schema order, and
    the optional input `type` [-1] BYTES, red or white."""
    tag = str(trained[kind]["tag"])
    metadata = triton_client.get_model_metadata(NAMES[kind])
    assert metadata["name"] == NAMES[kind] and metadata["versions"] == [tag.split(":")[1]]
    assert metadata["platform"] == "onnxruntime_onnx" and metadata["parameters"]["tag"] == tag
    [wines, wine_type] = metadata["inputs"]
    assert (wines["name"], wines["datatype"], wines["shape"]) == ("wines", "FP64", [-1, 11])
    assert (wine_type["name"], wine_type["datatype"], wine_type["shape"]) == ("type", "BYTES", [-1])
    assert wine_type["parameters"] == {
        "optional": True,
        "values": "red or white",
        "default": "red",
        "shapes": "[N] or [N, 1]",
    }
    assert wines["parameters"]["columns"].split(", ") == list(FEATURE_NAMES)
    assert [(o["name"], o["shape"][1]) for o in metadata["outputs"]] == list(
        zip(OUTPUTS, [1, 1, 1, 11, 1], strict=True)
    )
    assert triton_client.get_model_metadata(NAMES[kind], tag.split(":")[1]) == metadata


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("n", [1, 1000])
@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_infer_answers_what_predict_batch_answers(
    triton_client: triton.InferenceServerClient,
    client: httpx.Client,
    wines: np.ndarray,
    kind: str,
    n: int,
    binary: bool,
) -> None:
    """1 and 1,000 rows, as binary or JSON tensors: the same grades, intervals and range flags as /predict_batch."""
    rows = wines[:n]
    tensor = triton.InferInput("wines", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in OUTPUTS]
    result = triton_client.infer(NAMES[kind], [tensor], outputs=outputs, request_id="r1")
    assert result.get_response()["id"] == "r1"
    assert_same_as_batch(result, batch_answer(client, kind, rows), n)


@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_the_type_input_grades_white_wines_as_white(
    triton_client: triton.InferenceServerClient, client: httpx.Client, kind: str
) -> None:
    """White wines with the BYTES input `type`: the answers /predict_batch gives the same wines with a type column,
    not the red ones it gives them untyped."""
    rows = load_wines(WHITE)[list(FEATURE_NAMES)].drop_duplicates().head(40).to_numpy(dtype=np.float64)
    tensor = triton.InferInput("wines", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows)
    types = triton.InferInput("type", [len(rows)], "BYTES")
    types.set_data_from_numpy(np.array([b"white"] * len(rows), dtype=np.object_))
    result = triton_client.infer(NAMES[kind], [tensor, types])
    body = {"model": kind, "columns": [*FEATURE_NAMES, "type"], "data": [[*r, "white"] for r in rows.tolist()]}
    as_white = client.post("/predict_batch", json=body).json()
    assert_same_as_batch(result, as_white, len(rows))
    as_red = batch_answer(client, kind, rows)
    assert result.as_numpy("quality")[:, 0].tolist() != [p["quality"] for p in as_red["predictions"]]


def test_the_client_defaults_and_a_gzip_body_work_on_a_version_path(
    triton_client: triton.InferenceServerClient, client: httpx.Client, wines: np.ndarray, trained: dict[str, Any]
) -> None:
    """No outputs named (all come back, binary), gzip, a version path; the client raises the server's 400 message."""
    rows = wines[:50].copy()
    tensor = triton.InferInput("wines", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows)
    version = str(trained["torch"]["tag"]).split(":")[1]
    result = triton_client.infer(NAMES["torch"], [tensor], model_version=version, request_compression_algorithm="gzip")
    assert [o["name"] for o in result.get_response()["outputs"]] == OUTPUTS
    assert_same_as_batch(result, batch_answer(client, "torch", rows), 50)
    rows[3, FEATURE_NAMES.index("density")] = 2.0
    tensor.set_data_from_numpy(rows)
    with pytest.raises(InferenceServerException, match=r"row 3, density: Input should be less than or equal to 1\.5"):
        triton_client.infer(NAMES["torch"], [tensor])


def test_one_input_per_feature_in_fp32_is_the_pd_content_type(
    triton_client: triton.InferenceServerClient, client: httpx.Client, wines: np.ndarray
) -> None:
    """MLServer's `pd` form: one FP32 [N] input per feature, in any order; graded as those FP32 values."""
    rows = wines[:20].astype(np.float32)
    inputs = []
    for i, name in reversed(list(enumerate(FEATURE_NAMES))):
        column = triton.InferInput(name, [len(rows)], "FP32")
        column.set_data_from_numpy(rows[:, i])
        inputs.append(column)
    result = triton_client.infer(NAMES["sklearn"], inputs, parameters={"content_type": "pd"})
    assert_same_as_batch(result, batch_answer(client, "sklearn", rows.astype(np.float64)), 20)


def infer(client: httpx.Client, body: object, name: str = NAMES["sklearn"]) -> httpx.Response:
    return client.post(
        f"/v2/models/{name}/infer", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )


def wines_input(data: list[Any], shape: list[int] | None = None, datatype: str = "FP64") -> dict[str, Any]:
    return {"inputs": [{"name": "wines", "shape": shape or [1, 11], "datatype": datatype, "data": data}]}


def with_value(feature: str, value: Any) -> list[Any]:
    return [value if name == feature else EXAMPLE[name] for name in FEATURE_NAMES]


REFUSED = [
    (wines_input(ROW[:10], [1, 10]), "shape must be [N, 11], not [1, 10]"),
    (wines_input(ROW, [11]), "shape must be [N, 11], not [11]"),
    (wines_input(ROW + ROW[:5], [2, 11]), "shape [2, 11] needs 22 values, `data` has 16"),
    (wines_input(ROW, datatype="INT64"), "datatype 'INT64' is not accepted: send FP64 or FP32"),
    (wines_input(with_value("pH", "3.5")), "inputs.0.data.8: Input should be a valid number"),
    (wines_input(with_value("alcohol", True)), "inputs.0.data.10: Input should be a valid number"),
    (wines_input(with_value("pH", 15.0)), "row 0, pH: Input should be less than or equal to 14"),
    (wines_input(with_value("chlorides", -0.1)), "row 0, chlorides: Input should be greater than or equal to 0"),
    (wines_input(with_value("free sulfur dioxide", 40.0)), "free sulfur dioxide cannot exceed total sulfur dioxide"),
    ({"inputs": [{"name": "wine", "shape": [1, 11], "datatype": "FP64", "data": ROW}]}, "unknown ['wine']"),
    (
        {
            "inputs": [
                {"name": n, "shape": [1], "datatype": "FP64", "data": [v]} for n, v in EXAMPLE.items() if n != "pH"
            ]
        },
        "missing ['pH']",
    ),
    (
        {"inputs": [{"name": n, "shape": [], "datatype": "FP64", "data": [v]} for n, v in EXAMPLE.items()]},
        "shape must be [N] or [N, 1], not []",
    ),
    ({**wines_input(ROW), "parameters": {"priority": 1}}, "unknown parameter 'priority'"),
    ({**wines_input(ROW), "outputs": [{"name": "grade"}]}, "outputs: ['grade'] must be distinct names among"),
    ({**wines_input(ROW), "model": "x"}, "model: Extra inputs are not permitted"),
    ({"inputs": []}, "inputs: List should have at least 1 item"),
    (wines_input([ROW] * 10_001, [10_001, 11]), "10001 rows; send 1 to 10000 in one request"),
]


@pytest.mark.parametrize(("body", "problem"), REFUSED, ids=[problem[:40] for _, problem in REFUSED])
def test_a_wrong_request_gets_a_400_in_the_protocol_error_shape(
    client: httpx.Client, body: object, problem: str
) -> None:
    """Wrong shape, datatype, input, parameter, output or value: 400 `{"error": ...}` saying what and where."""
    answer = infer(client, body)
    assert answer.status_code == 400, answer.text
    assert list(answer.json()) == ["error"] and problem in answer.json()["error"]


def test_a_body_that_is_not_json_gets_a_400_and_an_unknown_model_or_version_a_404(client: httpx.Client) -> None:
    """Not JSON, not gzip as announced: 400. Unknown model or version: 404, in the protocol's shape."""
    answer = client.post(f"/v2/models/{NAMES['sklearn']}/infer", content=b"{inputs")
    assert answer.status_code == 400 and answer.json()["error"].startswith("body: Invalid JSON")
    answer = client.post(f"/v2/models/{NAMES['sklearn']}/infer", content=b"{}", headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 400 and "not valid gzip data" in answer.json()["error"]
    assert (
        client.post(
            f"/v2/models/{NAMES['sklearn']}/infer",
            content=gzip.compress(json.dumps(wines_input(ROW)).encode()),
            headers={"Content-Encoding": "gzip"},
        ).status_code
        == 200
    )
    for path in ("/v2/models/wine-quality", "/v2/models/wine-quality/ready", f"/v2/models/{NAMES['torch']}/versions/1"):
        answer = client.get(path)
        assert answer.status_code == 404 and "error" in answer.json(), path
    answer = infer(client, wines_input(ROW), name="wine-quality-xgboost")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "unknown model 'wine-quality-xgboost': this server serves wine-quality-sklearn, wine-quality-torch"
    }


@pytest.mark.parametrize(
    ("size", "sent", "problem"),
    [
        (88, 80, "the body ends before its 88 bytes of binary data"),
        (80, 80, "shape [1, 11] in FP64 is 88 bytes"),
        (88, 96, "8 bytes of binary data follow that no input claims"),
    ],
)
def test_binary_data_that_does_not_match_its_header_gets_a_400(
    client: httpx.Client, size: int, sent: int, problem: str
) -> None:
    """The binary extension: sizes that disagree with the shape or the body are refused, not read."""
    tensor = {"name": "wines", "shape": [1, 11], "datatype": "FP64", "parameters": {"binary_data_size": size}}
    header = json.dumps({"inputs": [tensor]}).encode()
    values = (np.array(ROW, dtype="<f8").tobytes() + bytes(8))[:sent]
    answer = client.post(
        f"/v2/models/{NAMES['sklearn']}/infer",
        content=header + values,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert answer.status_code == 400 and problem in answer.json()["error"], answer.text


def test_the_openapi_document_declares_what_the_v2_routes_answer(client: httpx.Client) -> None:
    """Every V2 route is documented with its 400/404 error shape, and none with FastAPI's 422."""
    paths = client.get("/docs.json").json()["paths"]
    infer_doc = paths["/v2/models/{name}/infer"]["post"]
    assert {"200", "400", "404"} <= set(infer_doc["responses"])
    assert set(infer_doc["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    v2 = {path: item for path, item in paths.items() if path.startswith("/v2")}
    assert len(v2) == 9
    assert not [path for path, item in v2.items() for op in item.values() if "422" in op["responses"]]
