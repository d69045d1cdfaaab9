"""`make bench`: every service variant side by side, in one run on this machine, written to BENCHMARKS.md.

Load generator: wrk (C, epoll, one thread), so that the generator is not the bottleneck: it drives well over
10,000 requests/s on one core, about ten times what the service does here, while a Python generator (locust)
tops out near the service's own rate. Each wrk run is short and bounded; every run must end with zero non-2xx
answers and zero socket errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from tests.devserver import Server, start_server
from train.data import RED, WHITE, load_wines
from wine_quality.schema import FEATURE_NAMES
from wine_quality.settings import PROJECT_ROOT

VARIANTS = {
    "composed, batching on": ("service:WineQuality", {}),
    "composed, batching off": ("service:WineQuality", {"WINE_BATCHING": "false"}),
}
ROUTES = {"/predict": "sklearn", "/predict_net": "torch"}
BATCH_ROWS = 1000


@dataclass
class Run:
    """One wrk run."""

    variant: str
    route: str
    connections: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int
    rows_per_request: int = 1
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)


def _lua(bodies: list[str]) -> str:
    quoted = ",\n".join(json.dumps(b) for b in bodies)
    return (
        f"local bodies = {{\n{quoted}\n}}\nlocal i = 0\n"
        'local headers = {["Content-Type"] = "application/json"}\n'
        "request = function()\n  i = i % #bodies + 1\n  return wrk.format('POST', nil, headers, bodies[i])\nend\n"
    )


def write_scripts(folder: Path) -> dict[str, Path]:
    """wrk scripts: single real rows in rotation, and 1,000-row batches for each model."""
    rows = [
        dict(zip(FEATURE_NAMES, values, strict=True))
        for path in (RED, WHITE)
        for values in load_wines(path)[list(FEATURE_NAMES)].to_numpy(dtype=float).tolist()
    ]
    scripts = {"single": folder / "single.lua"}
    scripts["single"].write_text(_lua([json.dumps(r) for r in rows[:500]]))
    for kind in ("sklearn", "torch"):
        bodies = [json.dumps({"model": kind, "samples": rows[i : i + BATCH_ROWS]}) for i in (0, 2000, 4000)]
        scripts[kind] = folder / f"batch-{kind}.lua"
        scripts[kind].write_text(_lua(bodies))
    return scripts


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def serving_processes(server: Server) -> list[psutil.Process]:
    """The server's process and all its workers."""
    root = psutil.Process(server.process.pid)
    return [root, *root.children(recursive=True)]


def _process_name(p: psutil.Process) -> str:
    cmd = p.cmdline()
    if "--service-name" in cmd:
        return cmd[cmd.index("--service-name") + 1]
    return "entry" if "_bentoml_impl.worker.service" in " ".join(cmd) else "supervisor"


class MemoryWatch:
    """Samples the total RSS of all serving processes in the background; keeps the peak."""

    def __init__(self, server: Server) -> None:
        self.server, self.peak_mb, self._stop = server, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                total = sum(p.memory_info().rss for p in serving_processes(self.server))
                self.peak_mb = max(self.peak_mb, total / 2**20)
            except psutil.Error:
                pass
            self._stop.wait(0.2)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def wrk(server: Server, variant: str, route: str, script: Path, connections: int, seconds: int, rows: int) -> Run:
    """One bounded wrk run, with the CPU time each serving process spent on it."""
    procs = serving_processes(server)
    before = {p.pid: sum(p.cpu_times()[:2]) for p in procs}
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            server.url + route,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errors.groups())) if errors else 0)
    cpu = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            cpu[_process_name(p)] = round((sum(p.cpu_times()[:2]) - before[p.pid]) * 1000 / max(requests, 1), 3)
    return Run(
        variant=variant,
        route=route,
        connections=connections,
        requests_per_s=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        p99_ms=_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        requests=requests,
        failures=failures,
        rows_per_request=rows,
        cpu_ms_per_request=cpu,
    )


def model_predict_ms(rows: int = BATCH_ROWS) -> dict[str, float]:
    """Median time of each served model's own predict on `rows` rows, in this process, with the served runtime."""
    from wine_quality.served import served_models
    from wine_quality.settings import get_settings

    x = load_wines(RED)[list(FEATURE_NAMES)].to_numpy(dtype=float)[:rows]
    result = {}
    for kind, served in served_models(get_settings()).items():
        predict = served.predictor(get_settings().model_threads)
        times = []
        for _ in range(30):
            start = time.perf_counter()
            predict(x)
            times.append((time.perf_counter() - start) * 1000)
        result[kind] = statistics.median(times)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=int, default=5, help="length of each wrk run (default 5)")
    p.add_argument("--connections", default="1,8,32,128", help="concurrent clients, comma-separated")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "BENCHMARKS.md")
    args = p.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `apt-get install wrk` (make bench does this where it can)")
    connections = [int(c) for c in args.connections.split(",")]
    work = Path(tempfile.mkdtemp(prefix="wine-bench-"))
    scripts = write_scripts(work)
    runs: list[Run] = []
    ready: dict[str, float] = {}
    memory: dict[str, float] = {}
    for variant, (target, env) in VARIANTS.items():
        server = start_server(target, env={"WINE_ACCESS_LOG": "false", **env}, log_dir=work)
        try:
            ready[variant] = server.seconds_to_ready
            with MemoryWatch(server) as watch:
                for route in ROUTES:
                    for c in connections:
                        runs.append(wrk(server, variant, route, scripts["single"], c, args.seconds, 1))
                        print(_line(runs[-1]), flush=True)
                for kind in ("sklearn", "torch"):
                    for c in (1, 4):
                        run = wrk(server, variant, "/predict_batch", scripts[kind], c, args.seconds, BATCH_ROWS)
                        run.route = f"/predict_batch [{kind}]"
                        runs.append(run)
                        print(_line(runs[-1]), flush=True)
            memory[variant] = watch.peak_mb
        finally:
            server.stop()
    model_ms = model_predict_ms()
    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "ready_s": ready,
        "peak_memory_mb": memory,
        "model_predict_ms_1000_rows": model_ms,
        "runs": [asdict(r) for r in runs],
    }
    from benchmarks.report import write_report

    write_report(results, args.out)
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out} and {args.out.with_suffix('.png').name}")
    if any(r.failures for r in runs):
        sys.exit("some runs had failed requests: see the report")


def _line(r: Run) -> str:
    return (
        f"{r.variant:24s} {r.route:24s} c={r.connections:<4d} {r.requests_per_s * r.rows_per_request:10.0f} "
        f"{'rows' if r.rows_per_request > 1 else 'req'}/s  p50 {r.p50_ms:7.1f} ms  p99 {r.p99_ms:7.1f} ms  "
        f"failures {r.failures}  cpu ms/req {r.cpu_ms_per_request}"
    )


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    from importlib.metadata import version

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "bentoml": version("bentoml"),
        "torch": version("torch"),
        "scikit-learn": version("scikit-learn"),
        "load_generator": wrk_version.strip(),
        "load_average_before": os.getloadavg(),
    }


if __name__ == "__main__":
    main()
