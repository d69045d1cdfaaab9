"""The Open Inference Protocol (V2) over REST: health, metadata and inference for each served model.

Each kind is served as `wine-quality-<kind>` (wine-quality-sklearn, wine-quality-torch) at one version: its
model-store tag's version. Answers come from the same model services and batching as /predict and /predict_batch.
"""

from __future__ import annotations

from typing import Any

import bentoml
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from wine_quality.dataplane import DataPlane, Origin
from wine_quality.kinds import KINDS, REGRESSION_KINDS, protocol_name
from wine_quality.protocols.base import ProtocolError, error_responses, graded, inline_schema, plane, protocol_route
from wine_quality.protocols.v2_messages import (
    InferenceRequest,
    InferenceResponse,
    Live,
    MetadataTensor,
    ModelMetadata,
    ModelReady,
    Ready,
    ServerMetadata,
    V2Error,
)
from wine_quality.protocols.v2_tensors import (
    BINARY_EXTENSION,
    DATATYPES,
    HEADER_LENGTH,
    OUTPUTS,
    TENSOR,
    TYPE_INPUT,
    encode,
    parse,
    requested_outputs,
    rows,
)
from wine_quality.schema import FEATURE_NAMES, TYPES


def _error(message: str, _status: int) -> dict[str, Any]:
    return {"error": message}


router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (V2)"], route_class=protocol_route(_error))
DIRECT_ROUTE = protocol_route(_error, direct=True)
UNKNOWN = error_responses(V2Error, {404: "no served model has this name, or it has no such version"})
BAD = error_responses(V2Error, {400: "the request is not one this model takes: the error says what and where"})
NOT_READY: dict[int | str, dict[str, Any]] = {
    400: {"model": Ready, "description": "not ready (the protocol answers 4xx for false)"}
}
INFER_BODY = {
    "requestBody": {
        "required": True,
        "description": "an inference request as JSON; or, with the binary tensor data extension "
        f"(application/octet-stream), the JSON request, its size in the {HEADER_LENGTH} header, then each input's "
        "little-endian values in input order",
        "content": {
            "application/json": {"schema": inline_schema(InferenceRequest)},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
INFER_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "model": InferenceResponse,
        "description": "the outputs asked for, in order; as JSON, or as application/octet-stream with the "
        f"{HEADER_LENGTH} header when binary outputs were asked for",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    **BAD,
    **UNKNOWN,
    **error_responses(V2Error, {503: "the model service is overloaded", 504: "the model service timed out"}),
}


# The protocol's models: the regressors (the classifier answers /classify).
MODELS = {protocol_name(kind): kind for kind in REGRESSION_KINDS}


def _kind(data_plane: DataPlane, name: str, version: str | None) -> str:
    kind = MODELS.get(name)
    if kind is None:
        raise ProtocolError(f"unknown model {name!r}: this server serves {', '.join(MODELS)}", 404)
    served = _version(data_plane, kind)
    if version is not None and version != served:
        raise ProtocolError(f"model {name} has no version {version!r}: it serves version {served}", 404)
    return kind


def _version(data_plane: DataPlane, kind: str) -> str:
    return data_plane.served[kind].tag.partition(":")[2]


# The inference routes first: FastAPI tries routes in order, and these take the traffic.
async def _infer(request: Request, name: str, version: str | None) -> Response:
    data_plane = plane(request)
    kind = _kind(data_plane, name, version)
    body = await request.body()
    parsed, binary = parse(body, request.headers.get(HEADER_LENGTH), request.headers.get("content-encoding"))
    wines = rows(parsed, binary, data_plane.settings.requests.max_rows)
    outputs = requested_outputs(parsed)
    result = await graded(data_plane, kind, wines, Origin(request.url.path, "v2"))
    answer = encode(outputs, result, parsed.id, (name, _version(data_plane, kind)))
    return Response(answer.body, media_type=answer.media_type, headers=answer.headers)


async def infer(name: str, request: Request) -> Response:
    """Grade a batch of wines: one `wines` tensor [N, 11] (FP64 or FP32), or one [N] input per feature."""
    return await _infer(request, name, None)


async def infer_version(name: str, version: str, request: Request) -> Response:
    """Grade a batch of wines with this version of the model (404 for a version this server does not serve)."""
    return await _infer(request, name, version)


# The request and the path's text are all they take: called directly (protocols.base.answering), no dependency solving
for path, endpoint in (("/models/{name}/infer", infer), ("/models/{name}/versions/{version}/infer", infer_version)):
    router.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        response_model=None,
        responses=INFER_ANSWERS,
        openapi_extra=INFER_BODY,
        route_class_override=DIRECT_ROUTE,
    )


@router.get("", response_model=ServerMetadata)
async def server_metadata() -> ServerMetadata:
    """Server metadata: name, version (BentoML's) and the extensions it supports."""
    return ServerMetadata(name="wine-quality (BentoML)", version=bentoml.__version__, extensions=[BINARY_EXTENSION])


@router.get("/health/live", response_model=Live)
async def live() -> Live:
    """Live: the server answers requests."""
    return Live(live=True)


@router.get("/health/ready", response_model=Ready, responses=NOT_READY)
async def ready(request: Request) -> Response:
    """Ready: the server is ready, as /readyz says (every model service answers its readiness probe)."""
    ok = await plane(request).ready()
    return JSONResponse({"ready": ok}, status_code=200 if ok else 400)


async def _model_ready(request: Request, name: str, version: str | None) -> Response:
    data_plane = plane(request)
    ok = await data_plane.model_ready(_kind(data_plane, name, version))
    return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 400)


@router.get("/models/{name}/ready", response_model=ModelReady, responses={**NOT_READY, **UNKNOWN})
async def model_ready(name: str, request: Request) -> Response:
    """Whether this model's service is ready."""
    return await _model_ready(request, name, None)


@router.get("/models/{name}/versions/{version}/ready", response_model=ModelReady, responses={**NOT_READY, **UNKNOWN})
async def model_version_ready(name: str, version: str, request: Request) -> Response:
    """Whether this model version's service is ready (404 for a version this server does not serve)."""
    return await _model_ready(request, name, version)


def _metadata(data_plane: DataPlane, name: str, version: str | None) -> ModelMetadata:
    kind = _kind(data_plane, name, version)
    served = data_plane.served[kind]
    features = ", ".join(FEATURE_NAMES)
    wines = MetadataTensor(
        name=TENSOR,
        datatype="FP64",
        shape=[-1, len(FEATURE_NAMES)],
        parameters={"content_type": "np", "columns": features, "datatypes": " or ".join(DATATYPES)},
    )
    types = MetadataTensor(
        name=TYPE_INPUT,
        datatype="BYTES",
        shape=[-1],
        parameters={"optional": True, "values": " or ".join(TYPES), "default": "red", "shapes": "[N] or [N, 1]"},
    )
    outputs = [MetadataTensor(name=n, datatype=d, shape=[-1, width]) for n, (d, width, _) in OUTPUTS.items()]
    return ModelMetadata(
        name=name,
        versions=[_version(data_plane, kind)],
        # Triton's name for an ONNX model; otherwise the library that runs the model's native form
        platform="onnxruntime_onnx" if served.runtime == "onnx" else KINDS[kind].native_packages[0],
        inputs=[wines, types],
        outputs=outputs,
        parameters={
            "tag": served.tag,
            "runtime": served.runtime,
            "estimator": served.card.estimator,
            "interval_coverage": served.coverage,
            "pd": f"or one [N] input per feature, named: {features}",
        },
    )


@router.get("/models/{name}", response_model=ModelMetadata, response_model_exclude_none=True, responses=UNKNOWN)
async def model_metadata(name: str, request: Request) -> ModelMetadata:
    """Model metadata: versions, platform, the `wines` input [-1, 11] with its column order, the optional `type`
    input [-1] (BYTES, red or white), and the outputs."""
    return _metadata(plane(request), name, None)


@router.get(
    "/models/{name}/versions/{version}",
    response_model=ModelMetadata,
    response_model_exclude_none=True,
    responses=UNKNOWN,
)
async def model_version_metadata(name: str, version: str, request: Request) -> ModelMetadata:
    """Model metadata of a version (404 for a version this server does not serve)."""
    return _metadata(plane(request), name, version)
