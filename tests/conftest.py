"""Fixtures: a temporary model store for the whole session, trained models, and a real `bentoml serve`."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.devserver import Server, start_server

ROOT = Path(__file__).resolve().parent.parent

# Before anything imports bentoml: no test may read or write the developer's own model store.
_HOME = Path(tempfile.mkdtemp(prefix="wine-tests-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ["BENTOML_HOME"] = str(_HOME / "bentoml")
os.environ["WINE_MODEL_PINS"] = str(_HOME / "model-pins.json")
# Nor into the checkout's capture database (var/capture.db): every server a test starts captures into the session's.
os.environ["WINE_CAPTURE_DIR"] = str(_HOME / "capture")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a project command line with this interpreter, from the project root."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def trained() -> dict[str, dict[str, object]]:
    """Every model kind trained by its real command line into the session's store, and pinned."""
    sk = json.loads(run_cli("-m", "train.sklearn_model").stdout)
    net = json.loads(run_cli("-m", "train.torch_model", "--no-progress").stdout)
    classifier = json.loads(run_cli("-m", "train.classifier_model").stdout)
    return {"sklearn": sk, "torch": net, "classifier": classifier}


@pytest.fixture(scope="session")
def server(trained: dict[str, dict[str, object]]) -> Iterator[Server]:
    """One real `bentoml serve` of the project's service, shared by the integration tests."""
    srv = start_server(log_dir=_HOME)
    yield srv
    srv.stop()


@pytest.fixture()
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
