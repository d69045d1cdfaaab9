"""The OpenAPI rewrite in process: what `truthful` adds to BentoML's document, and what it leaves alone."""

from __future__ import annotations

import copy
from typing import Any

from wine_quality.openapi_doc import truthful

ROUTES = frozenset({"/predict"})


def bentoml_like() -> dict[str, Any]:
    """A document shaped as BentoML writes it: one JSON API, the probes, an optional request body."""
    return {
        "openapi": "3.0.2",
        "paths": {
            "/predict": {"post": {"operationId": "predict", "requestBody": {"required": False}, "responses": {}}},
            "/readyz": {"get": {"responses": {"200": {"description": "ok"}}}},
        },
        "components": {"schemas": {}},
    }


def mounted() -> dict[str, Any]:
    """The document of a mounted app: one route of three methods sharing an operationId, and a path parameter."""
    operation = {"operationId": "models", "responses": {}}
    return {
        "paths": {
            "/models": {m: copy.deepcopy(operation) for m in ("get", "head", "post")},
            "/v2/models/{name}": {"get": {"operationId": "meta", "parameters": [{"in": "path", "name": "name"}]}},
        },
        "components": {"schemas": {"ModelsDescription": {"type": "object"}}},
    }


def test_it_declares_every_answer_the_front_door_gives() -> None:
    """A JSON POST gets 401, 413, 415, 503 and 504 declared and a required body; 3.1 is the dialect."""
    spec = truthful(bentoml_like(), api_key_required=False, json_routes=ROUTES)
    post = spec["paths"]["/predict"]["post"]
    assert spec["openapi"] == "3.1.0" and post["requestBody"]["required"] is True
    assert {"401", "413", "415", "503", "504"} <= set(post["responses"])
    assert "security" not in post and "securitySchemes" not in spec["components"]


def test_probes_stay_open_and_readiness_declares_its_503() -> None:
    """/readyz is neither guarded by the key nor shed; it declares the 503 it answers while a model is down."""
    spec = truthful(bentoml_like(), api_key_required=True, json_routes=ROUTES)
    ready = spec["paths"]["/readyz"]["get"]
    assert set(ready["responses"]) == {"200", "503"} and "security" not in ready
    assert spec["paths"]["/predict"]["post"]["security"] == [{"bearer": []}]
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}


def test_the_mounted_routes_are_added_with_distinct_operation_ids_and_their_values() -> None:
    """The mounted app's paths and schemas join the document; its one route of three methods gets one operationId
    per method; a path parameter lists the values that exist."""
    spec = truthful(bentoml_like(), False, ROUTES, path_values={"name": ["wine-quality-sklearn"]}, mounted=mounted())
    assert [op["operationId"] for op in spec["paths"]["/models"].values()] == [
        "models_get",
        "models_head",
        "models_post",
    ]
    assert "ModelsDescription" in spec["components"]["schemas"]
    parameter = spec["paths"]["/v2/models/{name}"]["get"]["parameters"][0]
    assert parameter["schema"]["enum"] == ["wine-quality-sklearn"]
    assert "404" in spec["paths"]["/v2/models/{name}"]["get"]["responses"]
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values() if "operationId" in op]
    assert len(ids) == len(set(ids))
