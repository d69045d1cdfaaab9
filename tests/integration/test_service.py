"""The real service (`bentoml serve` on a free port, temporary model store): answers, errors and endpoints."""

from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from harness.devserver import Server, start_server, workers
from train.data import RED, WHITE, file_sha256, load_wines
from wine_quality.schema import EXAMPLE, FEATURE_NAMES, MODEL_INPUTS, Wines
from wine_quality.served import ServedModel
from wine_quality.settings import ModelSettings, Settings

pytestmark = pytest.mark.integration
JSON = {"Content-Type": "application/json"}


def real_rows(n: int) -> list[dict[str, float]]:
    frame = load_wines(RED).drop_duplicates().head(n)
    return [{name: float(row[name]) for name in FEATURE_NAMES} for _, row in frame.iterrows()]


def direct(kind: str, tag: str, rows: list[dict[str, float]], runtime: str = "onnx") -> np.ndarray:
    """What the saved model answers when called directly, outside the service."""
    x = Wines.of(np.array([[r[name] for name in FEATURE_NAMES] for r in rows])).model_input()  # red wines
    settings = Settings(models=ModelSettings(tags={kind: tag}, runtime=runtime))
    return ServedModel.load(kind, settings).predictor(1)(x)


@pytest.mark.parametrize(("route", "kind"), [("/predict", "sklearn"), ("/predict_net", "torch")])
def test_the_seed_curl_payload_is_answered(
    client: httpx.Client, trained: dict[str, dict[str, object]], route: str, kind: str
) -> None:
    """The seed README's exact JSON gets a grade from the pinned model, equal to calling that model directly."""
    body = json.dumps(EXAMPLE)  # the seed's curl body, spaces in the names
    answer = client.post(route, content=body, headers=JSON)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    tag = str(trained[kind]["tag"])
    assert data["model"] == tag and data["runtime"] == "onnx"
    assert data["outside_training_range"] == []
    assert data["interval"]["coverage"] == 0.9
    assert data["interval"]["low"] <= data["quality"] <= data["interval"]["high"]
    assert data["interval"]["low"] < data["interval"]["high"]
    assert 4.0 < data["quality"] < 6.5  # the seed answered 5.06 and 5.15 for this wine, graded 5
    assert data["quality"] == pytest.approx(float(direct(kind, tag, [EXAMPLE])[0]), abs=1e-6)


@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_batch_answers_in_order_and_equal_to_single_predictions(
    client: httpx.Client, trained: dict[str, dict[str, object]], kind: str
) -> None:
    """A batch of real rows is answered in order, each equal to its single prediction and to the model itself."""
    rows = real_rows(25)
    answer = client.post("/predict_batch", json={"model": kind, "samples": rows})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["model"] == trained[kind]["tag"]
    batch = [p["quality"] for p in data["predictions"]]
    widths = {round(p["interval"]["high"] - p["interval"]["low"], 9) for p in data["predictions"]}
    assert len(widths) > 1  # calibrated grade by grade: the interval fits each wine
    route = "/predict" if kind == "sklearn" else "/predict_net"
    singles = [client.post(route, json=row).json()["quality"] for row in rows]
    assert batch == pytest.approx(singles, abs=1e-5)
    assert batch == pytest.approx(list(direct(kind, str(trained[kind]["tag"]), rows)), abs=1e-5)
    assert len(set(np.round(batch, 6))) > 2  # different wines, different grades: the order checks can fail
    reversed_answer = client.post("/predict_batch", json={"model": kind, "samples": rows[::-1]}).json()
    assert [p["quality"] for p in reversed_answer["predictions"]] == pytest.approx(batch[::-1], abs=1e-5)
    columns = {"model": kind, "columns": list(FEATURE_NAMES), "data": [[r[n] for n in FEATURE_NAMES] for r in rows]}
    again = client.post("/predict_batch", json=columns).json()
    assert without_ids(again) == without_ids(data)  # the columnar form answers the same, each wine a new id
    assert len({p["id"] for p in again["predictions"] + data["predictions"]}) == 2 * len(rows)


def _counter(metrics: str, service: str, endpoint: str) -> float:
    pattern = (
        rf'bentoml_service_request_total\{{endpoint="{endpoint}",http_response_code="200",'
        rf'[^}}]*service_name="{service}"[^}}]*\}} ([0-9.]+)'
    )
    match = re.search(pattern, metrics)
    return float(match.group(1)) if match else 0.0


def test_a_batch_request_reaches_its_model_service_as_one_call(client: httpx.Client) -> None:
    """50 rows cost the torch service one request, not 50."""
    before = client.get("/metrics").text
    assert client.post("/predict_batch", json={"model": "torch", "samples": real_rows(50)}).status_code == 200
    after = client.get("/metrics").text
    assert (
        _counter(after, "wine_quality_torch", "/predict_direct")
        - _counter(before, "wine_quality_torch", "/predict_direct")
        == 1
    )
    batched = "/predict_batched"
    assert _counter(after, "wine_quality_torch", batched) == _counter(before, "wine_quality_torch", batched)


def test_a_sample_outside_the_training_range_is_predicted_and_flagged(client: httpx.Client) -> None:
    """Alcohol 15.5 % (training max 14.9) is still graded, and the answer names alcohol."""
    answer = client.post("/predict", json={**EXAMPLE, "alcohol": 15.5, "sulphates": 0.2})
    assert answer.status_code == 200
    assert answer.json()["outside_training_range"] == ["sulphates", "alcohol"]
    assert 0.0 <= answer.json()["quality"] <= 10.0


BAD_BODIES = [
    ("missing field", {k: v for k, v in EXAMPLE.items() if k != "pH"}, "pH", "Field required"),
    ("extra field", {**EXAMPLE, "colour": 1.0}, "colour", "Extra inputs are not permitted"),
    ("string number", {**EXAMPLE, "alcohol": "9.4"}, "alcohol", "valid number"),
    ("boolean", {**EXAMPLE, "density": True}, "density", "valid number"),
    ("null", {**EXAMPLE, "density": None}, "density", "valid number"),
    ("negative", {**EXAMPLE, "chlorides": -0.1}, "chlorides", "greater than or equal to 0"),
    ("impossible pH", {**EXAMPLE, "pH": 15}, "pH", "less than or equal to 14"),
    ("free above total", {**EXAMPLE, "free sulfur dioxide": 50.0}, "", "free sulfur dioxide cannot exceed total"),
]


@pytest.mark.parametrize("route", ["/predict", "/predict_net"])
@pytest.mark.parametrize(("case", "body", "field", "problem"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_input_gets_a_400_naming_the_field_and_problem(
    client: httpx.Client, route: str, case: str, body: dict[str, object], field: str, problem: str
) -> None:
    """Each malformed sample is refused with 400, the field in `loc` and the reason in `msg`."""
    answer = client.post(route, json=body)
    assert answer.status_code == 400, answer.text
    errors = answer.json()["detail"]
    assert any((field in e["loc"] if field else True) and problem in e["msg"] for e in errors), errors


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (json.dumps(EXAMPLE).replace("9.4", "NaN"), "finite number"),
        (json.dumps(EXAMPLE).replace("9.4", "Infinity"), "finite number"),
        (json.dumps(EXAMPLE)[:-5], "Invalid JSON"),
        ("[1, 2]", "Input should be an object"),
        ("", "Field required"),
    ],
    ids=["NaN", "Infinity", "truncated JSON", "array", "empty body"],
)
def test_raw_bodies_that_are_not_a_valid_sample_get_a_400(client: httpx.Client, raw: str, problem: str) -> None:
    """NaN, Infinity, malformed JSON, a non-object and an empty body are refused with 400, never a 5xx."""
    answer = client.post("/predict", content=raw, headers=JSON)
    assert answer.status_code == 400, answer.text
    assert any(problem in e["msg"] for e in answer.json()["detail"])


def test_batch_errors_name_the_row_and_field(client: httpx.Client) -> None:
    """A bad row in a batch is refused with its index and field, in either form; an unknown model name is refused."""
    rows = real_rows(3)
    rows[2] = {**rows[2], "pH": -1}
    answer = client.post("/predict_batch", json={"model": "sklearn", "samples": rows})
    assert answer.status_code == 400
    assert ["samples", 2, "pH"] in [e["loc"] for e in answer.json()["detail"]]
    data = [[r[n] for n in FEATURE_NAMES] for r in rows]
    answer = client.post("/predict_batch", json={"model": "torch", "columns": list(FEATURE_NAMES), "data": data})
    assert answer.status_code == 400
    assert [(e["loc"], e["msg"]) for e in answer.json()["detail"]] == [
        (["data"], "row 2, pH: Input should be greater than or equal to 0")
    ]
    shuffled = {"model": "torch", "columns": list(FEATURE_NAMES)[::-1], "data": data[:2]}
    answer = client.post("/predict_batch", json=shuffled)
    assert answer.status_code == 400 and answer.json()["detail"][0]["loc"] == ["columns"]
    answer = client.post("/predict_batch", json={"model": "xgboost", "samples": real_rows(1)})
    assert answer.status_code == 400 and answer.json()["detail"][0]["loc"] == ["model"]
    answer = client.post("/predict_batch", json={"model": "torch", "samples": []})
    assert answer.status_code == 400 and answer.json()["detail"][0]["loc"] == ["samples"]


def test_the_row_limit_is_enforced_with_a_400(client: httpx.Client) -> None:
    """More rows than WINE_MAX_ROWS_PER_REQUEST (10,000 by default) are refused, naming samples."""
    from wine_quality.settings import Settings

    limit = Settings().requests.max_rows
    answer = client.post("/predict_batch", json={"model": "sklearn", "samples": [EXAMPLE] * (limit + 1)})
    assert answer.status_code == 400
    error = answer.json()["detail"][0]
    assert error["loc"] == ["samples"] and f"at most {limit} items" in error["msg"]
    assert client.post("/predict_batch", json={"model": "sklearn", "samples": [EXAMPLE] * limit}).status_code == 200


def test_models_endpoint_describes_the_served_versions(
    client: httpx.Client, trained: dict[str, dict[str, object]]
) -> None:
    """Tag, creation time, each type's metrics, inputs and the training data's checksums of the served models (GET
    or POST)."""
    answer = client.get("/models")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert client.post("/models").json() == answer.json()
    head = client.head("/models")
    assert head.status_code == 200 and head.content == b""
    models = answer.json()["models"]
    assert set(models) == {"sklearn", "torch", "classifier"}
    for kind, info in models.items():
        assert info["tag"] == trained[kind]["tag"]
        assert set(info["types"]) == {"red", "white"}  # trained on both files by default
        for wine_type, figures in trained[kind]["types"].items():  # type: ignore[attr-defined]
            assert info["types"][wine_type]["metrics"] == figures["metrics"]
            assert info["types"][wine_type]["cv_metrics"] == figures["cv_metrics"]
            assert "0.9" in info["types"][wine_type]["interval"]["half_width"]
        assert info["onnx"] == trained[kind]["onnx"] and info["runtime"] == "onnx"
        assert info["served_coverage"] == 0.9
        assert info["features"] == list(MODEL_INPUTS)
        files = {Path(f["file"]).name: f["sha256"] for f in info["data"]["files"]}
        assert files == {RED.name: file_sha256(RED), WHITE.name: file_sha256(WHITE)}
        assert re.match(r"\d{4}-\d\d-\d\dT", info["created"])


def test_health_metrics_and_openapi_endpoints_work(client: httpx.Client) -> None:
    """/livez and /readyz answer 200, /metrics shows adaptive batching, /docs.json documents the seed names."""
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    client.post("/predict", json=EXAMPLE)
    assert "bentoml_service_adaptive_batch_size" in client.get("/metrics").text
    spec = client.get("/docs.json").json()
    assert {"/predict", "/predict_net", "/predict_batch", "/models"} <= set(spec["paths"])
    assert set(spec["paths"]["/models"]) == {"get", "head", "post"}
    assert "fixed acidity" in json.dumps(spec)
    page = client.get("/")  # the Swagger UI page
    assert page.status_code == 200 and "swagger" in page.text.lower()


def test_many_concurrent_requests_all_succeed(server: Server) -> None:
    """600 requests, 48 at a time, through both model services: none fails (upstream #5540 would fail some)."""
    rows = real_rows(100)

    async def run() -> list[int]:
        limit = asyncio.Semaphore(48)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:

            async def one(i: int) -> int:
                async with limit:
                    route = "/predict" if i % 2 else "/predict_net"
                    r = await c.post(route, json=rows[i % len(rows)])
                    ok = r.status_code == 200 and math.isfinite(r.json()["quality"])
                    return r.status_code if ok else -1

            return await asyncio.gather(*(one(i) for i in range(600)))

    statuses = asyncio.run(run())
    assert statuses.count(200) == 600, {s: statuses.count(s) for s in set(statuses)}


def _libraries_loaded(server: Server) -> dict[str, set[str]]:
    """Which of torch and scikit-learn each serving process has loaded, from its memory maps."""
    loaded = {}
    for name, worker in workers(server).items():
        paths = [m.path for m in worker.memory_maps()]
        loaded[name] = {
            lib for lib, part in (("torch", "libtorch"), ("sklearn", "/sklearn/")) if any(part in p for p in paths)
        }
    return loaded


def test_the_onnx_runtime_serves_without_torch_or_scikit_learn(server: Server, client: httpx.Client) -> None:
    """By default no serving process loads torch or scikit-learn: ONNX Runtime predicts for every model."""
    client.post("/predict_net", json=EXAMPLE)
    client.post("/predict", json=EXAMPLE)
    client.post("/classify", json=EXAMPLE)
    assert _libraries_loaded(server) == {
        "wine_quality": set(),
        "wine_quality_sklearn": set(),
        "wine_quality_torch": set(),
        "wine_quality_classifier": set(),
    }


def test_the_native_runtime_answers_like_the_onnx_one(
    client: httpx.Client, trained: dict[str, dict[str, object]], tmp_path: Path
) -> None:
    """WINE_RUNTIME=native serves the same models with scikit-learn and torch, each only in its own process, and
    answers as the ONNX runtime does: exactly for the trees, within float32 rounding for the network."""
    native = start_server(env={"WINE_RUNTIME": "native"}, log_dir=tmp_path)
    try:
        rows = real_rows(40)
        with native.client() as other:
            for kind in ("sklearn", "torch"):
                body = {"model": kind, "samples": rows}
                a, b = client.post("/predict_batch", json=body).json(), other.post("/predict_batch", json=body).json()
                assert (a["runtime"], b["runtime"]) == ("onnx", "native") and a["model"] == b["model"]
                got = [p["quality"] for p in b["predictions"]]
                want = [p["quality"] for p in a["predictions"]]
                assert got == want if kind == "sklearn" else got == pytest.approx(want, abs=1e-4)
            assert other.get("/models").json()["models"]["torch"]["runtime"] == "native"
        loaded = _libraries_loaded(native)
        assert loaded == {
            "wine_quality": set(),
            "wine_quality_sklearn": {"sklearn"},
            "wine_quality_torch": {"torch"},
            "wine_quality_classifier": {"sklearn"},
        }
    finally:
        native.stop()


def test_every_model_service_declares_its_output_media_type(trained: dict[str, dict[str, object]]) -> None:
    """Each model service's outputs name their media type, so that BentoML builds no JSON schema per response to find
    it (docs/patches.md: the supported hook that replaced a patch)."""
    from wine_quality.model_service import MODEL_SERVICES

    declared = {
        (service.name, api): spec.output_spec.media_type
        for service in MODEL_SERVICES.values()
        for api, spec in service.apis.items()
    }
    assert len(declared) == 6 and set(declared.values()) == {"application/json"}, declared


def without_ids(answer: dict[str, Any]) -> dict[str, Any]:
    """A batch answer less each wine's id (every wine graded gets a new one)."""
    return {**answer, "predictions": [{k: v for k, v in p.items() if k != "id"} for p in answer["predictions"]]}
