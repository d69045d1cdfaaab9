"""Load and measurement: wrk scripts of real rows, bounded wrk runs, CPU per process, and a peak-memory watcher.

wrk (C, epoll, one thread) drives well over 10,000 requests/s on one core, about ten times what any server here does,
while a Python generator (locust) tops out near the service's own rate: the generator is not the bottleneck.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from train.data import RED, load_wines
from wine_quality.drain import service_of
from wine_quality.schema import FEATURE_NAMES

BATCH_ROWS = 1000
SINGLE_ROWS = 500  # single-row bodies in rotation


@dataclass(frozen=True)
class Load:
    """What one wrk run sends: a script of bodies in rotation, to a route, with the rows each request carries."""

    route: str
    script: Path
    model: str  # sklearn or torch: which model answers
    form: str  # how the rows travel: "object", "samples", "columns", "V2 tensor"
    rows: int = 1
    expect: str = "quality"  # a key every good answer holds

    @property
    def name(self) -> str:
        """How tables name it: the route, and for batches the model and the request form."""
        return self.route if self.rows == 1 else f"{self.route} [{self.model}, {self.rows:,} rows, {self.form}]"


@dataclass
class Run:
    """One recorded wrk run against one target."""

    target: str
    name: str
    route: str
    model: str
    form: str
    rows_per_request: int
    clients: int
    seconds: int
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    failures: int
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.requests_per_s * self.rows_per_request


def real_rows() -> list[list[float]]:
    """Every wine of the red data file, features in schema order: the bench's traffic is red wines, sent without a
    type (which means red). Its 1,000-wine batches were once rows 0, 2,000 and 4,000 of both files, so two
    batches in three were white wines' measurements graded as red."""
    return load_wines(RED)[list(FEATURE_NAMES)].to_numpy(float).tolist()


def _lua(bodies: list[str]) -> str:
    quoted = ",\n".join(json.dumps(b) for b in bodies)
    return (
        f"local bodies = {{\n{quoted}\n}}\nlocal i = 0\n"
        'local headers = {["Content-Type"] = "application/json"}\n'
        "request = function()\n  i = i % #bodies + 1\n  return wrk.format('POST', nil, headers, bodies[i])\nend\n"
    )


def _v2(rows: list[list[float]], name: str = "input-0") -> str:
    """A V2 inference request of one FP64 tensor: ours reads `wines` [N, 11] (red without a `type` input); MLServer
    (which names it freely) runs the same Pipeline on what it takes, MODEL_INPUTS [N, 12]: the features, then
    white = 0.0 for these red wines."""
    if name != "wines":
        rows = [[*row, 0.0] for row in rows]
    flat = [value for row in rows for value in row]
    shape = [len(rows), len(rows[0])]
    return json.dumps({"inputs": [{"name": name, "shape": shape, "datatype": "FP64", "data": flat}]})


def write_scripts(folder: Path) -> dict[str, Path]:
    """wrk scripts: single rows as the seed's JSON object and as V2 tensors; 1,000-row batches in every form."""
    rows = real_rows()
    starts = (0, 300, 599)  # three different 1,000-row batches of the 1,599 red wines, in rotation
    bodies = {
        "single": [json.dumps(dict(zip(FEATURE_NAMES, r, strict=True))) for r in rows[:SINGLE_ROWS]],
        "v2-single": [_v2([r]) for r in rows[:SINGLE_ROWS]],
        "v2-batch": [_v2(rows[i : i + BATCH_ROWS]) for i in starts],
        "ours-v2-single": [_v2([r], "wines") for r in rows[:SINGLE_ROWS]],
        "ours-v2-batch": [_v2(rows[i : i + BATCH_ROWS], "wines") for i in starts],
    }
    for kind in ("sklearn", "torch"):
        bodies[f"{kind}-samples"] = [
            json.dumps(
                {"model": kind, "samples": [dict(zip(FEATURE_NAMES, r, strict=True)) for r in rows[i : i + BATCH_ROWS]]}
            )
            for i in starts
        ]
        bodies[f"{kind}-columns"] = [
            json.dumps({"model": kind, "columns": list(FEATURE_NAMES), "data": rows[i : i + BATCH_ROWS]})
            for i in starts
        ]
    folder.mkdir(parents=True, exist_ok=True)
    scripts = {}
    for name, texts in bodies.items():
        scripts[name] = folder / f"{name}.lua"
        scripts[name].write_text(_lua(texts))
    return scripts


def first_body(script: Path) -> str:
    """The first body of a wrk script (they are JSON strings in a Lua table, one a line)."""
    return str(json.loads(script.read_text().splitlines()[1].rstrip(",")))


def check(url: str, load: Load) -> None:
    """Send a load's first body once: the answer must be 200 and hold the expected key, or the run stops here."""
    answer = httpx.post(
        url + load.route, content=first_body(load.script), headers={"Content-Type": "application/json"}, timeout=60
    )
    if answer.status_code != 200 or load.expect not in answer.json():
        raise RuntimeError(f"{load.name}: unexpected answer {answer.status_code}: {answer.text[:500]}")


def process_tree(root_pid: int) -> list[psutil.Process]:
    """A server's process and every process under it (BentoML's workers, MLServer's inference workers)."""
    root = psutil.Process(root_pid)
    return [root, *root.children(recursive=True)]


def process_name(p: psutil.Process, root_pid: int) -> str:
    """A short, stable name for a serving process: BentoML's service name, the root's program, else a worker."""
    cmd = p.cmdline()
    if (service := service_of(cmd)) is not None:
        return service
    if p.pid != root_pid:
        return "worker"
    if "-m" in cmd:  # python -m benchmarks.seed_app
        return str(cmd[cmd.index("-m") + 1]).rsplit(".", 1)[-1]
    program = Path(cmd[1] if len(cmd) > 1 else cmd[0]).name  # .../bin/bentoml serve, .../bin/mlserver start
    return "supervisor" if program == "bentoml" else program


class MemoryWatch:
    """Samples the total RSS of a server's whole process tree in the background; keeps the peak."""

    def __init__(self, root_pid: int, every_s: float = 0.2) -> None:
        self.root_pid, self.every_s, self.peak_mb = root_pid, every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        """Take one sample now."""
        total = 0
        with contextlib.suppress(psutil.Error):
            for p in process_tree(self.root_pid):
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        self.peak_mb = max(self.peak_mb, total / 2**20)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every_s)

    def __enter__(self) -> MemoryWatch:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def ms(text: str) -> float:
    """A wrk duration ("812.00us", "1.20ms", "2.01s", "1.00m") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[match.group(2)]


def parse_wrk(out: str) -> dict[str, float]:
    """Requests, requests/s, p50, p99 and failures (non-2xx answers plus socket errors) from wrk --latency output."""

    def find(pattern: str) -> str:
        match = re.search(pattern, out, re.M)
        if not match:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{out}")
        return match.group(1)

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": int(find(r"(\d+) requests in")),
        "requests_per_s": float(find(r"Requests/sec:\s+([\d.]+)")),
        "p50_ms": ms(find(r"^\s+50%\s+(\S+)")),
        "p99_ms": ms(find(r"^\s+99%\s+(\S+)")),
        "failures": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errors.groups())) if errors else 0),
    }


def wrk(url: str, load: Load, clients: int, seconds: int, root_pid: int, target: str) -> Run:
    """One bounded wrk run (one thread), with the CPU time each serving process spent per request."""
    procs = process_tree(root_pid)
    before = {p.pid: sum(p.cpu_times()[:2]) for p in procs}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(load.script)]
        + [url + load.route],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}) on {url + load.route}: {out.stderr or out.stdout}")
    figures = parse_wrk(out.stdout)
    cpu: dict[str, float] = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            spent = sum(p.cpu_times()[:2]) - before[p.pid]
            name = process_name(p, root_pid)
            cpu[name] = cpu.get(name, 0.0) + spent * 1000 / max(int(figures["requests"]), 1)
    requests, failures = int(figures["requests"]), int(figures["failures"])
    where = (target, load.name, load.route, load.model, load.form, load.rows, clients, seconds)  # Run's first fields
    rate, p50, p99 = figures["requests_per_s"], figures["p50_ms"], figures["p99_ms"]
    return Run(*where, requests, rate, p50, p99, failures, {k: round(v, 3) for k, v in cpu.items()})
