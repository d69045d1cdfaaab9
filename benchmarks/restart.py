"""Where a serving process's start goes: the interpreter and imports, loading its model, and uvicorn, and its memory.

Each service's worker is started as BentoML's supervisor starts it (BentoML's worker command, `--service-name NAME
--fd N`, on a listening socket of its own), with no load and nothing else of the server running, --runs times per
service. The worker first imports service.py, as BentoML's loader would, so that its service's `__init__` can be
timed. Figures are medians:

- imports: from the process's creation to the end of service.py's import (interpreter, BentoML, ours);
- init: the service's `__init__` (a model service loads its model; the entry builds its data plane and routes);
- ready: from the process's creation to its first answer on /readyz (the entry's is 503: no model service runs);
- RSS: after imports, after `__init__`, and once ready.

    python -m benchmarks.restart [--runs 5] [--services wine_quality_sklearn,...]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from wine_quality.settings import PROJECT_ROOT

SERVICES = ("wine_quality_sklearn", "wine_quality_torch", "wine_quality_classifier", "wine_quality")
WORKER = """
import json, sys, time
import psutil

import service

report, name = sys.argv[1], sys.argv[2]
me = psutil.Process()
figures = {"imported": time.time(), "rss_after_imports_mb": me.memory_info().rss / 2**20}
target = service.SERVICE if name == service.SERVICE.name else service.SERVICE.find_dependent_by_name(name)
upstream = target.inner.__init__


def timed(self, *args, **kwargs):
    figures["init_started"] = time.time()
    upstream(self, *args, **kwargs)
    figures.update(init_ended=time.time(), rss_after_init_mb=me.memory_info().rss / 2**20)
    with open(report, "w") as out:
        json.dump(figures, out)


target.inner.__init__ = timed
sys.argv = ["worker", *sys.argv[3:]]
from _bentoml_impl.worker.service import main

main()
"""


def start_once(service: str, folder: Path) -> dict[str, float]:
    """Start one worker of `service` on a socket of its own; its figures once it is ready. Then stop it."""
    path = folder / f"{service}.sock"
    report = folder / f"{service}.json"
    report.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(128)
    fd = listener.fileno()
    command = [sys.executable, "-c", WORKER, str(report), service, "service:WineQuality", "--fd", str(fd)]
    command += ["--service-name", service, "--worker-id", "1"]
    env = {**os.environ, "WINE_ACCESS_LOG": "false"}
    # the entry needs its dependencies' addresses to start; nothing answers there, which /readyz says (503)
    env["BENTOML_RUNNER_MAP"] = json.dumps({s: f"unix://{folder}/absent-{s}.sock" for s in SERVICES})
    worker = subprocess.Popen(
        command, pass_fds=[fd], cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        created = psutil.Process(worker.pid).create_time()
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport, base_url="http://worker", timeout=2) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if worker.poll() is not None:
                    raise RuntimeError(f"{service} exited with {worker.returncode}")
                try:
                    answer = client.get("/readyz")
                    if answer.status_code == 200 or (service == "wine_quality" and answer.status_code == 503):
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
            ready = time.time() - created
        figures = json.loads(report.read_text())
        return {
            "imports_s": figures["imported"] - created,
            "init_s": figures["init_ended"] - figures["init_started"],
            "ready_s": ready,
            "rss_after_imports_mb": figures["rss_after_imports_mb"],
            "rss_after_init_mb": figures["rss_after_init_mb"],
            "rss_ready_mb": psutil.Process(worker.pid).memory_info().rss / 2**20,
        }
    finally:
        worker.kill()
        worker.wait()
        listener.close()
        path.unlink(missing_ok=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--services", default=",".join(SERVICES))
    args = p.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="restart-") as tmp:
        for service in args.services.split(","):
            runs = [start_once(service, Path(tmp)) for _ in range(args.runs)]
            results[service] = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
            results[service]["ready_s_max"] = round(max(r["ready_s"] for r in runs), 3)
            print(service, json.dumps(results[service]), flush=True)
    load = os.getloadavg()
    print(json.dumps({"runs": args.runs, "load_average": [round(x, 2) for x in load], "services": results}, indent=2))


if __name__ == "__main__":
    main()
