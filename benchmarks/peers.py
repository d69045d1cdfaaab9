"""The peers our service is measured against: the seed's Flask app and Seldon MLServer, set up, started and stopped.

Each peer runs as its own process group on a free loopback port and comes back as a `harness.devserver.Server`, so the
benchmark starts, measures and stops it exactly as it does `bentoml serve`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from harness.devserver import Server
from harness.ports import free_port
from wine_quality.settings import PROJECT_ROOT

MLSERVER_VENV = PROJECT_ROOT / ".venv-peers" / "mlserver"
MLSERVER_MODEL = "wine-et"
MLSERVER_BATCHING = {"max_batch_size": 64, "max_batch_time": 0.005}
SEED_PACKAGES = ("flask", "werkzeug")


def mlserver_packages() -> list[str]:
    """MLServer and its scikit-learn runtime, with scikit-learn and numpy pinned as ours so our joblib file loads."""
    return [
        "mlserver==1.7.1",
        "mlserver-sklearn==1.7.1",
        f"scikit-learn=={version('scikit-learn')}",
        f"numpy=={version('numpy')}",
        # uvloop 0.22 broke MLServer 1.7.1's inference workers ("no current event loop", SeldonIO/MLServer#2286):
        # its default parallel_workers does not start with a newer one
        "uvloop==0.21.0",
    ]


def ensure_mlserver(venv: Path = MLSERVER_VENV) -> Path:
    """MLServer's own virtual environment (its pins clash with ours), created or reinstalled when its pins differ."""
    stamp, packages = venv / "bench-packages.txt", "\n".join(mlserver_packages())
    mlserver = venv / "bin" / "mlserver"
    if mlserver.exists() and stamp.exists() and stamp.read_text() == packages:
        return mlserver
    print(f"installing {', '.join(mlserver_packages())} into {venv} (a minute or two, once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    installed = subprocess.run([*pip, *mlserver_packages()], capture_output=True, text=True)
    if installed.returncode != 0:
        raise RuntimeError(f"could not install MLServer into {venv}:\n{installed.stdout}{installed.stderr}")
    stamp.write_text(packages)
    return mlserver


def mlserver_facts(venv: Path = MLSERVER_VENV) -> dict[str, Any]:
    """Versions in MLServer's environment and its default `parallel_workers`, asked of that environment."""
    probe = (
        "import json, importlib.metadata as m; from mlserver.settings import Settings;"
        "print(json.dumps({'versions': {p: m.version(p) for p in ('mlserver', 'mlserver-sklearn', 'scikit-learn',"
        " 'numpy', 'uvloop')}, 'default_parallel_workers': Settings.model_fields['parallel_workers'].default}))"
    )
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def served_sklearn_joblib() -> Path:
    """The native form of the sklearn model our service serves (the pinned version): a scikit-learn Pipeline, or a
    PerType of one Pipeline per wine type."""
    import bentoml

    from wine_quality.served import served_models
    from wine_quality.settings import get_settings

    tag = served_models(get_settings())["sklearn"].tag
    return Path(bentoml.models.get(tag).path_of("model.joblib"))


def start_process(
    command: list[str],
    ready_url: str,
    log: Path,
    is_ready: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200,
    env: dict[str, str] | None = None,
    timeout: float = 180.0,
) -> Server:
    """Start a server in its own process group and wait until `ready_url` answers as `is_ready` wants."""
    base = ready_url.split("/", 3)
    url = "/".join(base[:3])
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(url, process, 0.0, log)
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            stop(server)  # what it started may outlive it
            raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if is_ready(httpx.get(ready_url, timeout=1)):
                server.seconds_to_ready = time.monotonic() - started
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop(server)
    raise RuntimeError(f"{command[0]} was not ready in {timeout} s:\n{log.read_text()[-4000:]}")


def stop(server: Server, grace: float = 15.0) -> float:
    """Stop a server's whole process group (SIGTERM, SIGKILL after `grace` s) and wait until no member is left.

    `Server.stop` waits for the leader only; MLServer's inference workers outlive theirs for a moment.
    Returns the seconds it took.
    """
    started, group = time.monotonic(), server.process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    while time.monotonic() - started < grace and _group_alive(server):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    server.process.wait()
    killed = time.monotonic()
    while _group_alive(server) and time.monotonic() - killed < 10:
        time.sleep(0.05)
    return time.monotonic() - started


def _group_alive(server: Server) -> bool:
    server.process.poll()  # reap the leader, so that a finished leader does not keep its group alive
    try:
        os.killpg(server.process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_seed(work: Path) -> tuple[Server, dict[str, Any]]:
    """Train the seed's dense net (its script step), start the seed app, and train its linear model through /train."""
    models = work / "seed-models"
    started = time.monotonic()
    trained_net = subprocess.run(
        [sys.executable, "-m", "benchmarks.seed_net", "--models", str(models)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    if trained_net.returncode != 0:
        raise RuntimeError(f"the seed's network script failed:\n{trained_net.stderr[-4000:]}")
    net_s = time.monotonic() - started
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.seed_app", "--models", str(models), "--port", str(port)]
    # no health route in the seed: any HTTP answer (a 404 for /) means it listens
    server = start_process(command, f"http://127.0.0.1:{port}/", work / "seed.log", is_ready=lambda r: True)
    try:
        trained = httpx.get(f"{server.url}/train", timeout=120)
        trained.raise_for_status()
    except BaseException:
        stop(server)
        raise
    net_r2 = trained_net.stdout.split()[-1]  # the script's last word
    info = {"/train r2": trained.json()["r2"], "net r2": net_r2, "net script s": round(net_s, 1)}
    return server, info | {p: version(p) for p in SEED_PACKAGES}


def _distinct_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def write_mlserver_folder(folder: Path, model: Path, parallel_workers: int | None) -> int:
    """settings.json (loopback ports; `parallel_workers` unless None = MLServer's default) and the model folder.

    Returns the HTTP port.
    """
    http, grpc, metrics = _distinct_ports(3)
    settings: dict[str, Any] = {"host": "127.0.0.1", "http_port": http, "grpc_port": grpc, "metrics_port": metrics}
    if parallel_workers is not None:
        settings["parallel_workers"] = parallel_workers
    model_dir = folder / MLSERVER_MODEL
    model_dir.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(settings, indent=1))
    link = model_dir / "model.joblib"
    link.unlink(missing_ok=True)
    link.symlink_to(model)
    model_settings = {
        "name": MLSERVER_MODEL,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
        **MLSERVER_BATCHING,
    }
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings, indent=1))
    return http


def start_mlserver(work: Path, model: Path, parallel_workers: int | None) -> tuple[Server, dict[str, Any]]:
    """`mlserver start` on a folder holding our sklearn Pipeline, adaptive batching on, ready when the model is."""
    name = "default" if parallel_workers is None else str(parallel_workers)
    folder = work / f"mlserver-workers-{name}"
    port = write_mlserver_folder(folder, model, parallel_workers)
    command = [str(ensure_mlserver()), "start", str(folder)]
    ready = f"http://127.0.0.1:{port}/v2/models/{MLSERVER_MODEL}/ready"
    # a model per type unpickles as wine_quality.per_type.PerType: MLServer's environment imports it from the
    # checkout (it needs numpy, scikit-learn and pydantic, which that environment has)
    env = {"PYTHONPATH": str(PROJECT_ROOT)}
    server = start_process(command, ready, work / f"mlserver-{name}.log", env=env)
    return server, dict(MLSERVER_BATCHING)


def main() -> None:
    """`python -m benchmarks.peers`: set up MLServer's virtual environment if needed and say what it holds."""
    print(f"MLServer: {ensure_mlserver()}: {json.dumps(mlserver_facts())}")


if __name__ == "__main__":
    main()
