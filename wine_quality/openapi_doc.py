"""The OpenAPI document as the service really answers: BentoML's /docs.json, with its error responses corrected.

BentoML 1.4 declares every 400 as `{"error": str, "detail": str}`, but sends pydantic's error list in `detail`; it
leaves the request bodies it requires optional; and it cannot know the answers of our front door (401, 413, 415, 503),
of the server's read timeout (408) or of its own request timeout (504). `OpenAPIDocument` rewrites the document on its
way out, so that a client generated from it sends what the service takes and reads every answer it gives.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from wine_quality.guard import PROBES, App, Message, Receive, Scope, Send, is_open


class FieldError(BaseModel):
    """One problem with the request: where it is and what it is."""

    loc: list[str | int] = Field(description='path to the offending value, e.g. ["samples", 2, "pH"]; [] for the body')
    msg: str = Field(description='what is wrong, e.g. "Input should be less than or equal to 14"')
    type: str = Field(description="pydantic's error type, e.g. less_than_equal")


class InvalidArgument(BaseModel):
    """Bad Request: the request does not validate (a missing, extra or impossible value, malformed JSON)."""

    error: str
    detail: list[FieldError]


class Failure(BaseModel):
    """An answer other than a prediction: what happened, in one sentence."""

    error: str


def _response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Failure"}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


UNAUTHORISED = _response("WINE_API_KEY is set and the request lacks `Authorization: Bearer <key>`")
TOO_LARGE = _response("the request body is over WINE_MAX_BODY_BYTES")
STALLED = _response("the request's headers, or the next part of its body, did not arrive within WINE_READ_TIMEOUT_S")
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
AT_CAPACITY = _response(
    "the service is overloaded (WINE_MAX_CONCURRENT_WORK, WINE_SHED_AFTER_MS): retry later", RETRY_AFTER
)
TIMED_OUT = _response("no answer within WINE_REQUEST_TIMEOUT_S")
NOT_JSON = _response("the body is not sent as application/json")
NOT_READY = {"description": "a model service is not ready (starting, or restarting after a crash)"}
# a path parameter that cannot be part of any route (a newline, say) meets the router's own plain-text 404
NO_ROUTE = {"text/plain": {"schema": {"type": "string"}}}


def mounted_paths(app: Any) -> dict[str, Any]:
    """The OpenAPI paths and component schemas of a FastAPI app mounted at "/", as FastAPI documents them."""
    from fastapi.openapi.utils import get_openapi

    return get_openapi(title="mounted", version="1", openapi_version="3.1.0", routes=app.routes)


def truthful(
    spec: dict[str, Any],
    api_key_required: bool,
    json_routes: frozenset[str],
    path_values: dict[str, list[str]] | None = None,
    mounted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The document with every answer the service can give declared, in the shape it is sent; a path parameter
    named in `path_values` (a served model's name or version) lists the values that exist; the paths and schemas of
    `mounted` (the document of the routes BentoML cannot see) added."""
    # pydantic writes JSON Schema 2020-12 (a row's per-feature bounds are `prefixItems`): OpenAPI 3.1's dialect
    spec["openapi"] = "3.1.0"
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    if mounted is not None:
        spec.setdefault("paths", {}).update(mounted.get("paths", {}))
        schemas.update(mounted.get("components", {}).get("schemas", {}))
    for model in (InvalidArgument, Failure):
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schemas[InvalidArgument.__name__].pop("$defs", {}))
    if api_key_required:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    _distinct_operation_ids(spec)
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") in (path_values or {}):
                    parameter.setdefault("schema", {})["enum"] = (path_values or {})[parameter["name"]]
            responses = operation.setdefault("responses", {})
            if path in PROBES:
                if path == "/readyz":
                    responses["503"] = NOT_READY
                continue
            if not is_open(path):
                responses["401"] = UNAUTHORISED
                if api_key_required:
                    operation["security"] = [{"bearer": []}]
            if method == "post":
                responses["408"] = STALLED
                responses["413"] = TOO_LARGE
                responses["503"] = AT_CAPACITY
            if method == "post" and path in json_routes:
                responses["415"] = NOT_JSON
                operation.get("requestBody", {})["required"] = True
            responses["504"] = TIMED_OUT
            if "{" in path:
                not_found = responses.setdefault("404", {"description": "no such route or resource"})
                not_found.setdefault("content", {}).update(NO_ROUTE)
    return spec


def _distinct_operation_ids(spec: dict[str, Any]) -> None:
    """One route of several methods has one operationId for all of them: each method's becomes <id>_<method>, so a
    generated client has a call for each."""
    operations = [op for item in spec.get("paths", {}).values() for op in item.values() if isinstance(op, dict)]
    ids = Counter(op.get("operationId") for op in operations)
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if isinstance(operation, dict) and operation.get("operationId") and ids[operation["operationId"]] > 1:
                operation["operationId"] = f"{operation['operationId']}_{method}"


class OpenAPIDocument:
    """ASGI middleware that passes /docs.json through `truthful`; every other request goes by untouched."""

    def __init__(
        self,
        app: App,
        api_key_required: bool,
        json_routes: frozenset[str],
        path_values: dict[str, list[str]] | None = None,
        mounted: Callable[[], Any] | None = None,
        path: str = "/docs.json",
    ) -> None:
        self.app, self.api_key_required, self.json_routes, self.path = app, api_key_required, json_routes, path
        self.path_values, self.mounted = path_values, mounted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, keep)
        body = b"".join(chunks)
        if start.get("status") == 200:
            mounted = mounted_paths(self.mounted()) if self.mounted is not None else None
            document = truthful(json.loads(body), self.api_key_required, self.json_routes, self.path_values, mounted)
            body = json.dumps(document).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
