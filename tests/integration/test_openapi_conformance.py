"""The OpenAPI document tells the truth: schemathesis, every check, over every operation of a real server; it is
valid OpenAPI 3.1 to a validator and a client generator no one here wrote."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from harness.devserver import Server
from harness.fuzzing import schemathesis_command, schemathesis_env
from wine_quality.schema import EXAMPLE

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def run_schemathesis(server: Server, max_examples: int, seed: int | None = None) -> tuple[int, str]:
    """`st run` with all checks against the server's /docs.json; exit code and output."""
    command = schemathesis_command(server.url, max_examples, seed)
    done = subprocess.run(command, cwd=ROOT, env=schemathesis_env(), capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def test_schemathesis_finds_nothing_in_over_1000_cases(server: Server) -> None:
    """Every operation, every check (status codes, response and header conformance, content types, positive and
    negative data, unsupported methods...): at least 1,000 generated cases and not one failure."""
    code, output = run_schemathesis(server, max_examples=100, seed=20261127)
    generated = re.search(r"(\d+) generated", output)
    assert generated, output[-3000:]
    assert code == 0 and "failure" not in output.split("SUMMARY")[-1].lower(), output[-6000:]
    assert int(generated.group(1)) >= 1000, output[-3000:]
    print(f"\nschemathesis: {generated.group(1)} cases, no failure")


def test_the_document_is_valid_openapi_3_1(server: Server) -> None:
    """openapi-spec-validator, a validator no one here wrote, accepts /docs.json as OpenAPI 3.1, and each operation
    has an operationId of its own."""
    spec = httpx.get(f"{server.url}/docs.json", timeout=30).json()
    validate(spec)
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values() if "operationId" in op]
    assert len(ids) == len(set(ids))


def test_a_client_generated_from_the_document_grades_the_seed_wine(server: Server, tmp_path: Path) -> None:
    """openapi-python-client makes a client from /docs.json; its /predict call grades the seed's wine, and its
    /models calls (one per method) read the served models."""
    document = tmp_path / "docs.json"
    document.write_text(httpx.get(f"{server.url}/docs.json", timeout=30).text)
    generator = Path(sys.executable).with_name("openapi-python-client")
    package = tmp_path / "wine_client"
    done = subprocess.run(
        [str(generator), "generate", "--path", str(document), "--output-path", str(package), "--meta", "none"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert package.is_dir(), done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        client = importlib.import_module("wine_client.client").Client(base_url=server.url)
        wine = importlib.import_module("wine_client.models.wine").Wine.from_dict(EXAMPLE)
        predict = importlib.import_module("wine_client.api.service_ap_is.wine_quality_predict")
        answer = predict.sync(client=client, body=wine)
        assert answer.quality == httpx.post(f"{server.url}/predict", json=EXAMPLE, timeout=30).json()["quality"]
        models = importlib.import_module("wine_client.api.default.models_get")
        assert set(models.sync(client=client).models.additional_properties) == {"sklearn", "torch", "classifier"}
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "wine_client" or m.startswith("wine_client.")]:
            del sys.modules[name]
