"""Fixtures: a temporary model store for the whole session, trained models, and a real `bentoml serve`."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent

# Before anything imports bentoml: no test may read or write the developer's own model store.
_HOME = Path(tempfile.mkdtemp(prefix="wine-tests-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ["BENTOML_HOME"] = str(_HOME / "bentoml")
os.environ["WINE_MODELS_LOCK"] = str(_HOME / "models.lock.json")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")


def free_port() -> int:
    """A TCP port that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a project command line with this interpreter, from the project root."""
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@dataclass
class Server:
    """A running `bentoml serve` and what it took to get it ready."""

    url: str
    process: subprocess.Popen[str]
    seconds_to_ready: float
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def start_server(env: dict[str, str] | None = None, timeout: float = 120.0, target: str = "service:WineQuality") -> Server:
    """Start `bentoml serve` on a free port and wait for /readyz; fail with its log if it exits or hangs."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="bentoml-serve-", suffix=".log", dir=_HOME)[1])
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    started = time.monotonic()
    handle = log.open("w")
    process = subprocess.Popen(
        [bentoml, "serve", target, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise AssertionError(f"bentoml serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return Server(url, process, time.monotonic() - started, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise AssertionError(f"bentoml serve was not ready in {timeout} s:\n{log.read_text()}")


def stop_server(process: subprocess.Popen[str]) -> None:
    """Stop the server and all its worker processes."""
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


@pytest.fixture(scope="session")
def trained() -> dict[str, dict[str, object]]:
    """Both models trained by their real command lines into the session's store, and pinned."""
    sk = json.loads(run_cli("-m", "train.sklearn_model").stdout)
    net = json.loads(run_cli("-m", "train.torch_model", "--no-progress").stdout)
    return {"sklearn": sk, "torch": net}


@pytest.fixture(scope="session")
def server(trained: dict[str, dict[str, object]]) -> Iterator[Server]:
    """One real `bentoml serve` of the project's service, shared by the integration tests."""
    srv = start_server()
    yield srv
    stop_server(srv.process)


@pytest.fixture()
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
