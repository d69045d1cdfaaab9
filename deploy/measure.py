"""`make k8s-measure`: CPU and memory of one replica, idle and under load, and the resources they suggest.

    .venv/bin/python deploy/measure.py [--image wine-quality:latest] [--users 20] [--run-time 30s]

Runs the image as deploy/k8s's pod (deploy/pod.py) without its limits, samples `podman stats` (the container's
cgroup: every process of the replica) every half second, first idle, then while the project's locust load
(load_tests, MixedUser: single predictions on both models and 100-wine batches) runs against it, then during
/predict_batch calls of the largest size the ConfigMap allows on each model. Prints the figures and the requests
and limits they give (rules in `suggest`), as JSON; copy them into deploy/k8s/base/deployment.yaml.
Run it on a quiet machine: the CPU under load is what the load reached, and locust shares the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.image import IMAGE_NAME, backend, ensure_podman  # noqa: E402
from deploy.pod import Pod, render  # noqa: E402
from deploy.replicas import Replicas  # noqa: E402
from load_tests.run import locust_command, parse_args  # noqa: E402
from wine_quality.schema import EXAMPLE  # noqa: E402

MI = 2**20
SAMPLE_S = 0.5


class Sampler(threading.Thread):
    """Samples a container's memory (bytes) and cumulative CPU time (ns) until stopped."""

    def __init__(self, replicas: Replicas, name: str) -> None:
        super().__init__(daemon=True)
        self.replicas, self.name = replicas, name
        self.samples: list[tuple[float, int, int]] = []
        self.running = threading.Event()
        self.running.set()

    def run(self) -> None:
        fmt = "{{.ContainerStats.MemUsage}} {{.ContainerStats.CPUNano}}"
        while self.running.is_set():
            out = self.replicas.container("stats", "--no-stream", "--format", fmt, self.name).stdout.split()
            if len(out) == 2:
                self.samples.append((time.monotonic(), int(out[0]), int(out[1])))
            time.sleep(SAMPLE_S)

    def phase(self, seconds_or_call: float | object) -> dict[str, float]:
        """Memory (MiB: mean, peak) and CPU (cores, mean) over a phase: sleep for seconds, or run a callable."""
        start = len(self.samples)
        if callable(seconds_or_call):
            seconds_or_call()
        else:
            time.sleep(float(seconds_or_call))  # type: ignore[arg-type]
        time.sleep(2 * SAMPLE_S)
        window = self.samples[max(start - 1, 0) :]
        (t0, _, cpu0), (t1, _, cpu1) = window[0], window[-1]
        memory = [m for _, m, _ in window]
        return {
            "memory_mean_mib": round(sum(memory) / len(memory) / MI, 1),
            "memory_peak_mib": round(max(memory) / MI, 1),
            "cpu_cores": round((cpu1 - cpu0) / 1e9 / (t1 - t0), 3),
            "seconds": round(t1 - t0, 1),
        }


def load(url: str, users: int, run_time: str, out_dir: Path) -> dict[str, float]:
    """The project's locust load test (headless, MixedUser) against url; its request counts."""
    args = parse_args(["--users", str(users), "--run-time", run_time, "MixedUser"])
    subprocess.run(locust_command(url, out_dir, args), capture_output=True, check=False)
    with (out_dir / "locust_stats.csv").open() as f:
        total = [line.split(",") for line in f if line.split(",")[1] == "Aggregated"][0]
    return {"requests": int(total[2]), "failures": int(total[3]), "requests_per_s": float(total[9])}


def largest_batches(url: str, rows: int, repeat: int = 3) -> dict[str, float]:
    """/predict_batch with the most rows one request may hold, on each model; the answers that were not 200."""
    body = {"samples": [EXAMPLE] * rows}
    failed = 0
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(repeat):
            for model in ("sklearn", "torch"):
                reply = client.post("/predict_batch", json={**body, "model": model})
                if reply.status_code != 200:
                    failed += 1
                    print(f"measure: /predict_batch {model}: {reply.status_code} {reply.text[:300]}", file=sys.stderr)
    return {"requests": 2 * repeat, "failures": failed}


def ceil_to(value_mib: float, step: int) -> int:
    return int(math.ceil(value_mib / step) * step)


def suggest(idle: dict[str, float], loaded: dict[str, float], batches: dict[str, float]) -> dict[str, dict[str, str]]:
    """Requests and limits from the figures.

    - cpu request: what the replica used under the locust load (20 users without think time), to the next 100m;
      the HPA adds replicas when the average passes 70 % of it;
    - cpu limit: twice that, for bursts (a limit at the request would throttle every burst into latency);
    - memory request: the peak under the locust load, plus 10 %, to the next 64 MiB;
    - memory limit: the peak of all phases (the largest batches included) plus 25 %, to the next 64 MiB.
    """
    cpu = max(0.1, math.ceil(loaded["cpu_cores"] * 10) / 10)
    steady = max(idle["memory_peak_mib"], loaded["memory_peak_mib"])
    peak = max(steady, batches["memory_peak_mib"])
    return {
        "requests": {"cpu": f"{round(cpu * 1000)}m", "memory": f"{ceil_to(steady * 1.1, 64)}Mi"},
        "limits": {"cpu": f"{round(cpu * 2000)}m", "memory": f"{ceil_to(peak * 1.25, 64)}Mi"},
    }


def measure(image: str, users: int, run_time: str, idle_s: float = 10.0) -> dict[str, object]:
    cli = backend()
    if cli == "podman":
        ensure_podman()
    pod = Pod.of(render("dev"))
    workdir = Path(tempfile.mkdtemp(prefix="wine-measure-"))
    replicas = Replicas(cli, str(workdir))
    name = f"wine-measure-{uuid.uuid4().hex[:6]}"
    try:
        replicas.start(name, replicas.image(image), pod, limits=False)
        ready_s = replicas.wait_ready(name, pod.probe_path("readinessProbe"))
        url = f"http://127.0.0.1:{replicas.ports[name]}"
        httpx.post(f"{url}/predict", json=EXAMPLE, timeout=30).raise_for_status()
        sampler = Sampler(replicas, name)
        sampler.start()
        idle = sampler.phase(idle_s)
        counts: dict[str, float] = {}
        loaded = sampler.phase(lambda: counts.update(load(url, users, run_time, workdir)))
        counts["cpu_ms_per_request"] = round(loaded["cpu_cores"] * 1000 / max(counts["requests_per_s"], 1e-9), 2)
        counts["requests_per_s"] = round(counts["requests_per_s"], 1)
        rows = int(pod.env().get("WINE_MAX_ROWS_PER_REQUEST", "10000"))
        batch_counts: dict[str, float] = {}
        batches = sampler.phase(lambda: batch_counts.update(largest_batches(url, rows)))
        sampler.running.clear()
        if counts["failures"] or batch_counts["failures"]:
            logs = replicas.container("logs", "--tail", "60", name)
            print(f"measure: requests failed; the replica's log ends:\n{logs.stdout}{logs.stderr}", file=sys.stderr)
        stats = [cli, "stats", "--no-stream", "--format", "{{.ContainerStats.MemUsage}} {{.ContainerStats.CPUNano}}"]
        return {
            "image": image,
            "method": f"{' '.join(stats)} every {SAMPLE_S} s; CPU from the change in cumulative CPU time",
            "seconds_to_ready": round(ready_s, 1),
            "idle": idle,
            "load": {**loaded, **counts, "users": users, "run_time": run_time},
            f"largest_batches ({rows} rows x 3 per model)": {**batches, **batch_counts},
            "suggested": suggest(idle, loaded, batches),
        }
    finally:
        replicas.down()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="deploy/measure.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=f"{IMAGE_NAME}:latest")
    parser.add_argument("--users", type=int, default=20, help="locust users (default 20: saturates one replica)")
    parser.add_argument("--run-time", default="30s")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.image, args.users, args.run_time), indent=2))


if __name__ == "__main__":
    main()
