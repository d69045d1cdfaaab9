"""Start and stop a real `bentoml serve` on a free port: for tests, load tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from harness.ports import free_port
from wine_quality.drain import service_of
from wine_quality.settings import PROJECT_ROOT


@dataclass
class Server:
    """A running `bentoml serve` and what it took to get it ready."""

    url: str
    process: subprocess.Popen[bytes]
    seconds_to_ready: float
    log: Path

    def client(self) -> httpx.Client:
        """An HTTP client for this server."""
        return httpx.Client(base_url=self.url, timeout=30)

    def worker(self, service: str) -> psutil.Process:
        """The worker process of one of its services (`wine_quality` is the entry, `wine_quality_sklearn` ...)."""
        try:
            return workers(self)[service]
        except KeyError:
            raise LookupError(service) from None

    def stop(self) -> None:
        """Stop the server and every worker process it started."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def workers(server: Server) -> dict[str, psutil.Process]:
    """The server's worker processes, by the BentoML service each runs (of several entry workers, one)."""
    found: dict[str, psutil.Process] = {}
    for process in psutil.Process(server.process.pid).children(recursive=True):
        try:
            name = service_of(process.cmdline())
        except psutil.Error:  # gone meanwhile (a killed worker)
            continue
        if name is not None:
            found.setdefault(name, process)
    return found


def uptime_s() -> float:
    """Seconds since the machine booted (Linux): the clock a process's start is kept in, to 10 ms."""
    return float(Path("/proc/uptime").read_text().split()[0])


def started_s(process: psutil.Process) -> float:
    """When a process started, on uptime_s()'s clock. (psutil's create_time adds the boot time, which Linux gives to
    the second, so it can be a second off: too coarse to time a restart.)"""
    after_name = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, in clock ticks since boot


def home_of_its_own(home: str) -> str:
    """A BENTOML_HOME that sees `home`'s models and bentos but keeps its own runtime files.

    Every `bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir as it starts: servers that share a home
    wipe each other's metrics (and drift windows). The folder is removed with the temporary directory at exit.
    """
    import atexit
    import shutil

    own = Path(tempfile.mkdtemp(prefix="bentoml-home-"))
    atexit.register(shutil.rmtree, own, ignore_errors=True)
    for store in ("models", "bentos"):
        (Path(home) / store).mkdir(parents=True, exist_ok=True)
        (own / store).symlink_to(Path(home) / store)
    return str(own)


def start_server(
    target: str = "service:WineQuality",
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    log_dir: Path | None = None,
) -> Server:
    """Start `bentoml serve TARGET` on a free loopback port and wait for /readyz.

    Raises RuntimeError with the server's log if it exits or is not ready in time.
    """
    port = free_port()
    fd, name = tempfile.mkstemp(prefix="bentoml-serve-", suffix=".log", dir=log_dir)
    log = Path(name)
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    environment = {**os.environ, **(env or {})}
    environment["BENTOML_HOME"] = home_of_its_own(environment.get("BENTOML_HOME", str(Path.home() / "bentoml")))
    started = time.monotonic()
    process = subprocess.Popen(
        [bentoml, "serve", target, "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=fd,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.close(fd)
    server = Server(f"http://127.0.0.1:{port}", process, 0.0, log)
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                server.seconds_to_ready = time.monotonic() - started
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"bentoml serve was not ready in {timeout} s:\n{log.read_text()}")


def results_server(name: str) -> tuple[Path, Server]:
    """A new folder results/<name>-<UTC stamp> and a server without access logs that logs into it: how the
    long-running load tools (make soak, make chaos) start."""
    from datetime import UTC, datetime

    from wine_quality.settings import PROJECT_ROOT

    out = PROJECT_ROOT / "results" / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True)
    return out, start_server(env={"WINE_ACCESS_LOG": "false"}, log_dir=out)
