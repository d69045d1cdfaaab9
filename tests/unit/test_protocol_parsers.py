"""The protocols' parsers in process: V2 tensors (JSON, binary, pd, gzip) and MLflow's four JSON forms and CSV, to
the same rows and the same messages as the JSON routes; and V2's answers, JSON and binary."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from wine_quality.protocols.base import ProtocolError
from wine_quality.protocols.mlflow_scoring import scoring_rows
from wine_quality.protocols.v2_tensors import HEADER_LENGTH, OUTPUTS, encode, parse, requested_outputs, rows
from wine_quality.schema import EXAMPLE, FEATURE_NAMES, Wines

ROW = list(EXAMPLE.values())
WINES = np.array([ROW, [*ROW[:10], 12.5]])


def v2(body: dict[str, object], binary: bytes = b"", encoding: str | None = None) -> Wines:
    raw = json.dumps(body).encode()
    header = str(len(raw)) if binary else None
    payload = raw + binary
    if encoding == "gzip":
        payload = gzip.compress(payload)
    request, tail = parse(payload, header, encoding)
    return rows(request, tail, max_rows=100)


def wines_input(data: list[float], shape: list[int], datatype: str = "FP64") -> dict[str, object]:
    return {"inputs": [{"name": "wines", "shape": shape, "datatype": datatype, "data": data}]}


def test_v2_reads_one_tensor_flat_or_nested_and_fp32_as_the_fp32_numbers_it_holds() -> None:
    """`wines` [N, 11] as flat or nested JSON data; FP32 values are graded as the float32 numbers they are."""
    flat = v2(wines_input(WINES.ravel().tolist(), [2, 11]))
    nested = v2(wines_input(WINES.tolist(), [2, 11]))  # type: ignore[arg-type]
    assert np.array_equal(flat.rows, WINES) and np.array_equal(nested.rows, WINES)
    assert flat.types == ["red", "red"]  # no type input: red
    single = v2(wines_input(ROW, [1, 11], "FP32"))
    assert np.array_equal(single.rows[0], np.array(ROW, dtype=np.float32).astype(np.float64))


def test_v2_reads_binary_data_gzip_and_one_input_per_feature() -> None:
    """Triton's binary extension (values after the JSON header), a gzip body, and MLServer's pd form in any order."""
    raw = WINES.astype("<f8").tobytes()
    tensor = {"name": "wines", "shape": [2, 11], "datatype": "FP64", "parameters": {"binary_data_size": len(raw)}}
    binary = v2({"inputs": [tensor]}, raw)
    assert np.array_equal(binary.rows, WINES)
    assert np.array_equal(v2(wines_input(ROW, [1, 11]), encoding="gzip").rows[0], ROW)
    columns = [
        {"name": name, "shape": [2], "datatype": "FP64", "data": WINES[:, i].tolist()}
        for i, name in reversed(list(enumerate(FEATURE_NAMES)))
    ]
    assert np.array_equal(v2({"inputs": columns}).rows, WINES)


def test_v2_reads_each_wine_s_type_from_the_optional_type_input() -> None:
    """A BYTES input `type`, [N] or [N, 1], gives each wine's type; a wrong count or value is refused, naming it."""
    typed = wines_input(WINES.ravel().tolist(), [2, 11])
    typed["inputs"].append({"name": "type", "shape": [2], "datatype": "BYTES", "data": ["white", "red"]})  # type: ignore[attr-defined]
    assert v2(typed).types == ["white", "red"]
    typed["inputs"][1] = {"name": "type", "shape": [1, 1], "datatype": "BYTES", "data": ["white"]}  # type: ignore[index]
    with pytest.raises(ProtocolError, match="1 types for 2 wines"):
        v2(typed)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (wines_input(ROW, [1, 10]), "shape must be [N, 11], not [1, 10]"),
        (wines_input([*ROW[:8], 15.0, *ROW[9:]], [1, 11]), "row 0, pH: Input should be less than or equal to 14"),
        (wines_input([*ROW[:5], 50.0, *ROW[6:]], [1, 11]), "free sulfur dioxide cannot exceed total"),
        (wines_input(ROW, [1, 11], "INT8"), "datatype"),
        ({"inputs": [{"name": "alcohol", "shape": [1], "datatype": "FP64", "data": [9.4]}]}, "missing"),
    ],
)
def test_v2_refuses_a_wrong_tensor_naming_the_problem(body: dict[str, object], message: str) -> None:
    """Wrong shapes, datatypes and impossible wines are refused with the JSON routes' words for the same wine."""
    with pytest.raises(ProtocolError, match=message.replace("[", r"\[").replace("]", r"\]")):
        v2(body)


def test_v2_answers_its_outputs_as_json_or_binary_with_each_wine_s_id() -> None:
    """The answer carries the outputs asked for; as binary data, numbers are little-endian and each id is its 4-byte
    length and its bytes."""
    from types import SimpleNamespace

    low, high = WINES.min(axis=0), WINES.max(axis=0) - 1
    served = SimpleNamespace(outside=lambda rows, white: (rows < low) | (rows > high), coverage=0.9, runtime="onnx")
    graded = SimpleNamespace(
        served=served,
        wines=Wines.of(WINES),
        ids=["a" * 36, "b" * 36],
        quality=np.array([5.0, 6.5]),
        low=np.array([4.0, 5.0]),
        high=np.array([6.0, 7.0]),
    )
    request, _ = parse(json.dumps(wines_input(ROW, [1, 11])).encode(), None, None)
    every = requested_outputs(request)
    assert [name for name, _ in every] == list(OUTPUTS)
    answer = json.loads(encode(every, graded, "r1", ("wine-quality-sklearn", "v1")).body)  # type: ignore[arg-type]
    by_name = {o["name"]: o for o in answer["outputs"]}
    assert answer["id"] == "r1" and by_name["quality"]["data"] == [5.0, 6.5]
    assert by_name["id"] == {"name": "id", "datatype": "BYTES", "shape": [2, 1], "data": ["a" * 36, "b" * 36]}
    assert by_name["quality_low"]["parameters"] == {"coverage": 0.9}
    binary = encode([("quality", True), ("id", True)], graded, None, ("m", "v"))  # type: ignore[arg-type]
    size = int(binary.headers[HEADER_LENGTH])
    tail = binary.body[size:]
    assert np.frombuffer(tail[:16], "<f8").tolist() == [5.0, 6.5]
    assert struct.unpack("<I", tail[16:20]) == (36,) and tail[20:56] == b"a" * 36


def mlflow(body: object, content_type: str = "application/json") -> Wines:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return scoring_rows(raw, content_type, max_rows=100)


def test_mlflow_reads_its_four_json_forms_and_csv_in_any_column_order() -> None:
    """dataframe_split, dataframe_records, instances and inputs (rows or columns), and CSV, all give schema order."""
    names = list(reversed(FEATURE_NAMES))
    frame = [[dict(zip(FEATURE_NAMES, r, strict=True))[n] for n in names] for r in WINES.tolist()]
    records = [dict(zip(FEATURE_NAMES, r, strict=True)) for r in WINES.tolist()]
    columns = {n: WINES[:, FEATURE_NAMES.index(n)].tolist() for n in names}
    csv = ",".join(names) + "\n" + "\n".join(",".join(str(v) for v in r) for r in frame) + "\n"
    for parsed in (
        mlflow({"dataframe_split": {"columns": names, "data": frame}}),
        mlflow({"dataframe_records": records}),
        mlflow({"instances": records}),
        mlflow({"inputs": columns}),
        mlflow(csv, "text/csv; charset=utf-8"),
    ):
        assert np.array_equal(parsed.rows, WINES) and parsed.types == ["red", "red"]
    typed = mlflow({"dataframe_split": {"columns": ["type", *names], "data": [["white", *r] for r in frame]}})
    assert np.array_equal(typed.rows, WINES) and typed.types == ["white", "white"]
    lines = ["type," + ",".join(names), *("white," + ",".join(str(v) for v in r) for r in frame)]
    typed_csv = mlflow("\n".join(lines) + "\n", "text/csv")
    assert np.array_equal(typed_csv.rows, WINES) and typed_csv.types == ["white", "white"]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ({"dataframe_records": [{**EXAMPLE, "pH": 15.0}]}, "application/json", "row 0, pH: Input should be less"),
        ({"dataframe_records": [EXAMPLE], "instances": [EXAMPLE]}, "application/json", "send exactly one of"),
        ({"inputs": {"pH": [3.0]}}, "application/json", "missing"),
        ("pH,alcohol\n3,9\n", "text/csv", "columns must be the 11 feature names"),
        ({"dataframe_records": [EXAMPLE]}, "text/plain", "send application/json or text/csv"),
    ],
)
def test_mlflow_refuses_a_wrong_request_naming_the_problem(body: object, content_type: str, message: str) -> None:
    """A bad value, two forms, a missing column or the wrong content type: refused, naming it."""
    with pytest.raises(ProtocolError, match=message):
        mlflow(body, content_type)


def test_a_wine_is_refused_in_the_same_words_by_every_protocol() -> None:
    """The same impossible wine gets the same message from V2 and MLflow (and /predict_batch's columns form)."""
    bad = [*ROW[:8], 15.0, *ROW[9:]]
    messages = []
    for parse_one in (
        lambda: v2(wines_input(bad, [1, 11])),
        lambda: mlflow({"dataframe_split": {"columns": list(FEATURE_NAMES), "data": [bad]}}),
    ):
        with pytest.raises(ProtocolError) as refused:
            parse_one()
        messages.append(refused.value.message)
    assert messages == ["row 0, pH: Input should be less than or equal to 14"] * 2
