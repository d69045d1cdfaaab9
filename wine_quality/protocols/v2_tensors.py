"""V2 tensors to rows and grades to V2 tensors: JSON data or binary data (Triton's extension), one array at a time.

A request carries either one `wines` tensor [N, 11] (FP64 or FP32, features in schema order) or one [N] or [N, 1]
input per feature, named with the feature's name (MLServer's `pd` content type). Its values arrive as JSON `data`
or, with the binary tensor data extension, as little-endian bytes after the JSON header.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydantic_core
from pydantic import ValidationError

from wine_quality.dataplane import Graded
from wine_quality.protocols.base import ProtocolError, checked
from wine_quality.protocols.v2_messages import InferenceRequest, Parameters, RequestInput
from wine_quality.schema import FEATURE_NAMES, Wines, column_problems, first_error

TENSOR = "wines"
TYPE_INPUT = "type"  # an optional BYTES input [N] or [N, 1]: each wine's type, "red" or "white" (red without it)
DATATYPES: dict[str, np.dtype[Any]] = {"FP64": np.dtype("<f8"), "FP32": np.dtype("<f4")}
HEADER_LENGTH = "Inference-Header-Content-Length"  # the binary extension: size of the JSON part of a body
BINARY_EXTENSION = "binary_tensor_data"
# output name -> (datatype, columns, description)
OUTPUTS: dict[str, tuple[str, int, str]] = {
    "quality": ("FP64", 1, "predicted grade on the 0-10 scale"),
    "quality_low": ("FP64", 1, "low end of the calibrated interval (coverage in its parameters)"),
    "quality_high": ("FP64", 1, "high end of the calibrated interval (coverage in its parameters)"),
    "outside_training_range": ("BOOL", len(FEATURE_NAMES), "per feature: outside what the model saw in training"),
    "id": ("BYTES", 1, "each wine's id (UTF-8): send it with the taster's grade to POST /feedback"),
}
# parameters this server acts on, at each level: the values allowed, or the one type allowed
_KNOWN: dict[str, dict[str, tuple[str, ...] | type]] = {
    "request": {"content_type": ("np", "pd"), "binary_data_output": bool},
    "input": {"content_type": ("np",), "binary_data_size": int},
    "output": {"binary_data": bool},
}


def check_parameters(parameters: Parameters | None, where: str, level: str) -> None:
    """Refuse a parameter this server does not act on, or a value it cannot use, rather than ignore it."""
    for key, value in (parameters or {}).items():
        if key not in _KNOWN[level]:
            raise ProtocolError(f"{where}: unknown parameter {key!r} (this server reads {', '.join(_KNOWN[level])})")
        allowed = _KNOWN[level][key]
        if isinstance(allowed, tuple) and value not in allowed:
            raise ProtocolError(f"{where}: parameter {key} must be one of {list(allowed)}, not {value!r}")
        if isinstance(allowed, type) and type(value) is not allowed:  # `is`: True is an int, and 1 == True
            raise ProtocolError(f"{where}: parameter {key} must be a {allowed.__name__}, not {value!r}")


def parse(body: bytes, header_length: str | None, encoding: str | None) -> tuple[InferenceRequest, memoryview]:
    """The request's JSON object and the binary data after it (empty without the binary extension)."""
    if encoding in ("gzip", "deflate"):
        try:
            body = gzip.decompress(body) if encoding == "gzip" else zlib.decompress(body)
        except (OSError, zlib.error, EOFError) as exc:
            raise ProtocolError(f"the body is not valid {encoding} data: {exc}") from None
    elif encoding not in (None, "identity"):
        raise ProtocolError(f"Content-Encoding {encoding} is not supported: send gzip, deflate or none")
    size = len(body)
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise ProtocolError(f"{HEADER_LENGTH} must be a byte count within the body's {len(body)} bytes")
        size = int(header_length)
    try:
        request = InferenceRequest.model_validate_json(body[:size])
    except ValidationError as exc:
        raise ProtocolError(first_error(exc)) from None
    return request, memoryview(body)[size:]


def _values(item: RequestInput, where: str, binary: memoryview, offset: int) -> tuple[np.ndarray, int]:
    """One input's values as float64, flat, and the offset of the next input's binary data."""
    dtype = DATATYPES.get(item.datatype)
    if dtype is None:
        raise ProtocolError(f"{where}: datatype {item.datatype!r} is not accepted: send FP64 or FP32")
    count = math.prod(item.shape)
    size = (item.parameters or {}).get("binary_data_size")  # an int: check_parameters saw to it
    if isinstance(size, int):
        if item.data is not None:
            raise ProtocolError(f"{where}: send `data` or `binary_data_size`, not both")
        if size != count * dtype.itemsize:
            raise ProtocolError(f"{where}: shape {item.shape} in {item.datatype} is {count * dtype.itemsize} bytes")
        if offset + size > len(binary):
            raise ProtocolError(f"{where}: the body ends before its {size} bytes of binary data")
        flat = np.frombuffer(binary, dtype=dtype, count=count, offset=offset)
        return flat.astype(np.float64), offset + int(size)
    if item.data is None:
        raise ProtocolError(f"{where}: `data` is missing")
    try:
        with np.errstate(over="ignore"):  # an FP32 value too large for FP32 becomes inf, then refused as such
            flat = np.asarray(item.data, dtype=dtype).ravel()
    except ValueError:
        raise ProtocolError(f"{where}: nested `data` must be a regular array of the shape {item.shape}") from None
    if flat.size != count:
        raise ProtocolError(f"{where}: shape {item.shape} needs {count} values, `data` has {flat.size}")
    return flat.astype(np.float64), offset


def _types(item: RequestInput, where: str, binary: memoryview, offset: int) -> tuple[list[str], int]:
    """The `type` input's values (BYTES: JSON strings, or each value's 4-byte length and bytes as binary data)."""
    if item.datatype != "BYTES" or len(item.shape) not in (1, 2) or item.shape[1:] not in ([], [1]):
        raise ProtocolError(f"{where}: send each wine's type as BYTES of shape [N] or [N, 1]")
    count = item.shape[0]
    size = (item.parameters or {}).get("binary_data_size")
    if isinstance(size, int):
        if item.data is not None:
            raise ProtocolError(f"{where}: send `data` or `binary_data_size`, not both")
        end, values = offset + size, list[str]()
        while offset + 4 <= end and len(values) < count:
            length = int.from_bytes(binary[offset : offset + 4], "little")
            values.append(bytes(binary[offset + 4 : offset + 4 + length]).decode("utf-8", "replace"))
            offset += 4 + length
        if offset != end or end > len(binary) or len(values) != count:
            raise ProtocolError(f"{where}: its {size} bytes of binary data are not {count} BYTES values")
        return values, offset
    flat = list(np.asarray(item.data, dtype=object).ravel()) if item.data is not None else []
    if len(flat) != count or not all(isinstance(v, str) for v in flat):
        raise ProtocolError(f"{where}: `data` must be {count} strings, each red or white")
    return [str(v) for v in flat], offset


def rows(request: InferenceRequest, binary: memoryview, max_rows: int) -> Wines:
    """The wines [N, 11] in schema order, checked against the features' physical bounds, and their types."""
    check_parameters(request.parameters, "parameters", "request")
    names = [item.name for item in request.inputs if item.name != TYPE_INPUT]
    form = (request.parameters or {}).get("content_type", "np" if TENSOR in names else "pd")
    if form == "np" and names != [TENSOR]:
        raise ProtocolError(f"send one input named {TENSOR!r} of shape [N, 11] (content type np), got {names}")
    if form == "pd":
        problems = column_problems(names)
        if problems:
            raise ProtocolError(
                f"content type pd takes one [N] input per feature, named {list(FEATURE_NAMES)} "
                f"({'; '.join(problems)}); or send one input {TENSOR!r} [N, 11]"
            )
    columns: dict[str, np.ndarray] = {}
    types: list[str] | None = None
    offset = 0
    for i, item in enumerate(request.inputs):
        where = f"inputs[{i}] {item.name!r}"
        check_parameters(item.parameters, where, "input")
        if item.name == TYPE_INPUT:
            if types is not None:
                raise ProtocolError(f"{where}: one {TYPE_INPUT!r} input at most")
            types, offset = _types(item, where, binary, offset)
            continue
        if form == "np" and (len(item.shape) != 2 or item.shape[1] != len(FEATURE_NAMES)):
            raise ProtocolError(f"{where}: shape must be [N, {len(FEATURE_NAMES)}], not {item.shape}")
        if form == "pd" and (not item.shape or item.shape[1:] not in ([], [1])):
            raise ProtocolError(f"{where}: shape must be [N] or [N, 1], not {item.shape}")
        if not 1 <= item.shape[0] <= max_rows:
            raise ProtocolError(f"{where}: {item.shape[0]} rows; send 1 to {max_rows} in one request")
        columns[item.name], offset = _values(item, where, binary, offset)
    if offset != len(binary):
        raise ProtocolError(f"{len(binary) - offset} bytes of binary data follow that no input claims")
    if form == "np":
        wines = columns[TENSOR].reshape(-1, len(FEATURE_NAMES))
    else:
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ProtocolError(f"every feature input needs the same number of rows, got {lengths}")
        wines = np.column_stack([columns[name] for name in FEATURE_NAMES])
    if types is not None and len(types) != len(wines):
        raise ProtocolError(f"{TYPE_INPUT!r}: {len(types)} types for {len(wines)} wines")
    return checked(wines, max_rows, types)


def _binary(values: np.ndarray, datatype: str) -> bytes:
    """A tensor's values as the binary extension sends them: little-endian numbers, booleans as bytes, and each
    BYTES element as its 4-byte little-endian length, then its bytes."""
    if datatype == "BYTES":
        encoded = [str(v).encode() for v in values.ravel()]
        return b"".join(len(e).to_bytes(4, "little") + e for e in encoded)
    return np.ascontiguousarray(values, dtype="<f8" if datatype == "FP64" else np.bool_).tobytes()


@dataclass(frozen=True)
class Encoded:
    """An inference response's body and the headers it needs."""

    body: bytes
    headers: dict[str, str]
    media_type: str


def requested_outputs(request: InferenceRequest) -> list[tuple[str, bool]]:
    """The outputs asked for (all by default), in order, each with whether it goes as binary data."""
    binary = (request.parameters or {}).get("binary_data_output", False)
    if not request.outputs:
        return [(name, bool(binary)) for name in OUTPUTS]
    names = [o.name for o in request.outputs]
    if any(n not in OUTPUTS for n in names) or len(set(names)) < len(names):
        raise ProtocolError(f"outputs: {names} must be distinct names among {list(OUTPUTS)}")
    for i, o in enumerate(request.outputs):
        check_parameters(o.parameters, f"outputs[{i}] {o.name!r}", "output")
    return [(o.name, bool((o.parameters or {}).get("binary_data", binary))) for o in request.outputs]


def encode(outputs: list[tuple[str, bool]], graded: Graded, request_id: str | None, model: tuple[str, str]) -> Encoded:
    """The response: the outputs' JSON data, or a JSON header followed by their binary data."""
    served, wines = graded.served, graded.wines
    arrays = {
        "quality": graded.quality,
        "quality_low": graded.low,
        "quality_high": graded.high,
        "outside_training_range": served.outside(wines.rows, wines.white),
        "id": np.array(graded.ids, dtype=object),
    }
    described, chunks = [], []
    for name, binary in outputs:
        datatype, width, _ = OUTPUTS[name]
        values = arrays[name]
        out: dict[str, object] = {"name": name, "datatype": datatype, "shape": [len(wines), width]}
        parameters: dict[str, object] = {"coverage": served.coverage} if name in ("quality_low", "quality_high") else {}
        if binary:
            raw = _binary(values, datatype)
            parameters["binary_data_size"] = len(raw)
            chunks.append(raw)
        else:
            out["data"] = values.ravel().tolist()
        if parameters:
            out["parameters"] = parameters
        described.append(out)
    answer: dict[str, object] = {"model_name": model[0], "model_version": model[1]}
    if request_id is not None:
        answer["id"] = request_id
    answer.update(parameters={"runtime": served.runtime}, outputs=described)
    header = pydantic_core.to_json(answer)
    if not chunks:
        return Encoded(header, {}, "application/json")
    return Encoded(header + b"".join(chunks), {HEADER_LENGTH: str(len(header))}, "application/octet-stream")
