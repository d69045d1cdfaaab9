"""`make bench`: our service, its variants and its peers, each started, warmed up, measured and stopped in turn.

One run on one machine, so that the figures compare: `bentoml serve service:WineQuality` (as served, then without
adaptive batching, without coalescing, without drift tracking, without payload capture), the seed's Flask app rebuilt
from its README, and Seldon MLServer serving the same scikit-learn model. Writes BENCHMARKS.md, BENCHMARKS.json and
BENCHMARKS.png (see report.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

from benchmarks import goals, peers
from benchmarks.load import BATCH_ROWS, Load, MemoryWatch, Run, check, write_scripts, wrk
from harness.devserver import Server, start_server
from wine_quality.settings import PROJECT_ROOT

Starter = Callable[[Path], tuple[Server, dict[str, Any]]]


@dataclass(frozen=True)
class Target:
    """A server to measure: how to start it, and which loads to send it at which numbers of clients."""

    key: str
    label: str
    what: str
    start: Starter
    loads: list[tuple[Load, tuple[int, ...]]]


def _ours(extra: dict[str, str]) -> Starter:
    def start(work: Path) -> tuple[Server, dict[str, Any]]:
        # capture's SQLite file in the run's folder, not the checkout's var/: a run grades millions of wines
        env = {"WINE_ACCESS_LOG": "false", "WINE_CAPTURE_DIR": str(work / "capture"), **extra}
        return start_server("service:WineQuality", env=env, log_dir=work), {"env": env}

    return start


def _mlserver(parallel_workers: int | None) -> Starter:
    def start(work: Path) -> tuple[Server, dict[str, Any]]:
        return peers.start_mlserver(work, peers.served_sklearn_joblib(), parallel_workers)

    return start


def plan(
    scripts: dict[str, Path], clients: tuple[int, ...], batch_clients: tuple[int, ...], workers: str
) -> list[Target]:
    """Every target of a full run, in the order they are measured."""
    single = [
        (Load("/predict", scripts["single"], "sklearn", "object"), clients),
        (Load("/predict_net", scripts["single"], "torch", "object"), clients),
    ]
    batches = [
        (Load("/predict_batch", scripts[f"{model}-{form}"], model, form, BATCH_ROWS, "predictions"), batch_clients)
        for model in ("sklearn", "torch")
        for form in ("samples", "columns")
    ]

    def v2_loads(route: str, prefix: str) -> list[tuple[Load, tuple[int, ...]]]:
        return [
            (Load(route, scripts[f"{prefix}v2-single"], "sklearn", "V2 tensor", 1, "outputs"), clients),
            (Load(route, scripts[f"{prefix}v2-batch"], "sklearn", "V2 tensor", BATCH_ROWS, "outputs"), batch_clients),
        ]

    mlserver_loads = v2_loads(f"/v2/models/{peers.MLSERVER_MODEL}/infer", "")
    ours_v2 = v2_loads(goals.OURS_V2_ROUTE, "ours-")  # the same tensors through our Open Inference Protocol layer
    targets = [
        Target(
            goals.OURS,
            "ours",
            "`bentoml serve service:WineQuality`, as `make serve` runs it",
            _ours({}),
            single + batches + ours_v2,
        ),
        Target(
            goals.NO_BATCHING,
            "ours, no batching",
            "the same with `WINE_BATCHING=false`: no adaptive batching, no coalescing",
            _ours({"WINE_BATCHING": "false"}),
            single,
        ),
        Target(
            goals.NO_COALESCING,
            "ours, no coalescing",
            "the same with `WINE_COALESCE=false`: adaptive batching only",
            _ours({"WINE_COALESCE": "false"}),
            single,
        ),
        Target(
            goals.NO_DRIFT,
            "ours, no drift tracking",
            "the same with `WINE_DRIFT=false`: no window of recent rows, no drift gauges",
            _ours({"WINE_DRIFT": "false"}),
            single,
        ),
        Target(
            goals.NO_CAPTURE,
            "ours, no capture",
            "the same with `WINE_CAPTURE=false`: no wine kept in the capture database (ours keeps each, in SQLite)",
            _ours({"WINE_CAPTURE": "false"}),
            single + batches,  # a batch's wines are each kept: what that costs a 1,000-wine request
        ),
        Target(
            goals.SEED,
            "seed (Flask)",
            "`benchmarks/seed_app.py`: the seed rebuilt from its README; Flask's server, `debug=True`, each model "
            "loaded from disk in every request",
            peers.start_seed,
            single,
        ),
    ]
    for pw in (0, None) if workers == "both" else (0,) if workers == "0" else (None,):
        name = "default" if pw is None else str(pw)
        targets.append(
            Target(
                f"{goals.MLSERVER_PREFIX}-workers-{name}",
                f"MLServer, parallel_workers {name}",
                f"MLServer 1.7.1 over the V2 protocol, our served extra trees (`model.joblib`), adaptive batching, "
                f"`parallel_workers` {name}",
                _mlserver(pw),
                mlserver_loads,
            )
        )
    return targets


def measure(target: Target, work: Path, seconds: int, warmup: int, results: dict[str, Any]) -> None:
    """Start one target, warm each of its loads up briefly (unrecorded), measure every point, stop it."""
    entry: dict[str, Any] = {"label": target.label, "what": target.what}
    results["targets"][target.key] = entry
    print(f"--- {target.label}: starting", flush=True)
    try:
        server, info = target.start(work)
    except Exception as exc:  # a peer that cannot start is reported, and the other targets still run
        entry["error"] = f"{type(exc).__name__}: {str(exc)[-1500:]}"
        print(f"    could not start: {entry['error']}", flush=True)
        return
    entry.update(ready_s=round(server.seconds_to_ready, 2), info=info)
    pid = server.process.pid
    watch = MemoryWatch(pid)
    try:
        with watch:
            failed = 0
            for load, clients in target.loads:
                check(server.url, load)
                if warmup > 0:
                    failed += wrk(server.url, load, max(clients), warmup, pid, target.key).failures
            results["warmup_failures"][target.key] = failed
            for load, clients in target.loads:
                for c in clients:
                    run = wrk(server.url, load, c, seconds, pid, target.key)
                    results["runs"].append(asdict(run))
                    print(_line(run), flush=True)
    except Exception as exc:  # reported with what was measured so far; the other targets still run
        entry["error"] = f"{type(exc).__name__}: {str(exc)[-1500:]}"
        print(f"    stopped measuring: {entry['error']}", flush=True)
    finally:
        entry["stop_s"] = round(peers.stop(server), 1)
        entry["peak_rss_mb"] = round(watch.peak_mb, 1)
    print(f"    ready in {entry['ready_s']} s, peak RSS {entry['peak_rss_mb']:.0f} MB, stopped in {entry['stop_s']} s")


def _line(r: Run) -> str:
    unit, rate = ("rows/s", r.rows_per_s) if r.rows_per_request > 1 else ("req/s", r.requests_per_s)
    return (
        f"    {r.name:58s} c={r.clients:<3d} {rate:10,.0f} {unit:6s} p50 {r.p50_ms:8.2f} ms  p99 {r.p99_ms:8.2f} ms  "
        f"failed {r.failures}"
    )


def machine() -> dict[str, Any]:
    """What the figures were measured on, and with which versions."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0].strip()
    packages = ("bentoml", "onnxruntime", "torch", "scikit-learn", "numpy", "flask", "werkzeug")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in packages},
        "load_generator": wrk_version,
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
    }


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(c) for c in text.split(","))


def main() -> None:
    names = [goals.OURS, goals.NO_BATCHING, goals.NO_COALESCING, goals.NO_DRIFT, goals.NO_CAPTURE, goals.SEED]
    names.append(goals.MLSERVER_PREFIX)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=15, help="length of each measured wrk run (default 15)")
    p.add_argument("--warmup", type=int, default=2, help="unrecorded warm-up per load of each target (default 2)")
    p.add_argument("--clients", type=_ints, default=(1, 32), help="single-row clients, comma-separated (1,32)")
    p.add_argument("--batch-clients", type=_ints, default=(1, 4), help="1,000-row clients, comma-separated (1,4)")
    p.add_argument("--targets", default=",".join(names), help=f"a subset of {','.join(names)} (default: all)")
    p.add_argument(
        "--mlserver-workers",
        choices=("both", "0", "default"),
        default="both",
        help="MLServer's parallel_workers: 0 (one process), its default, or both and report the faster (default)",
    )
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "BENCHMARKS.md", help="report path (.json, .png beside)")
    args = p.parse_args()
    wanted = set(args.targets.split(","))
    if unknown := wanted - set(names):
        p.error(f"unknown targets {sorted(unknown)}: choose from {names}")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `apt-get install wrk` (make bench does this where it can)")
    if goals.MLSERVER_PREFIX in wanted:
        peers.ensure_mlserver()  # before the clock starts: installing is not part of the run
    work = Path(tempfile.mkdtemp(prefix="wine-bench-"))
    started = time.monotonic()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "options": {"seconds": args.seconds, "warmup_s": args.warmup, "clients": args.clients},
        "targets": {},
        "warmup_failures": {},
        "runs": [],
    }
    results["options"]["batch_clients"] = args.batch_clients
    if goals.MLSERVER_PREFIX in wanted:
        results["machine"]["mlserver"] = peers.mlserver_facts()
    for target in plan(write_scripts(work / "scripts"), args.clients, args.batch_clients, args.mlserver_workers):
        if target.key.split("-workers-")[0] in wanted:
            measure(target, work, args.seconds, args.warmup, results)
    results["mlserver"] = goals.pick_mlserver(results["runs"])
    results["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    results["duration_s"] = round(time.monotonic() - started)
    from benchmarks.report import write_report

    write_report(results, args.out)
    print(f"wrote {args.out} and its .json and .png in {results['duration_s']} s")
    for goal in goals.goals(results):
        print(f"  {'met' if goal.met else 'NOT MET' if goal.met is False else 'n/a':8s}{goal.name}: {goal.measured}")
    broken = [k for k, t in results["targets"].items() if "error" in t]
    failed = sum(r["failures"] for r in results["runs"]) + sum(results["warmup_failures"].values())
    if broken or failed:
        sys.exit(f"{failed} failed requests, targets that failed: {broken or 'none'}; logs kept in {work}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
