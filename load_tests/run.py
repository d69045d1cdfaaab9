"""Serve the service on a free port, load it with locust headless, and write the reports under results/.

    python -m load_tests.run [--run-time 30s] [--users 20] [--spawn-rate 10] [UserClass ...]

The models must already be trained and pinned (`make models`). Defaults come from load_tests/locust.conf; with no
user class named, the locustfile runs MixedUser. Reports land in results/<UTC stamp>/ (locust_*.csv, report.html).
The exit status is locust's: 0 when every request succeeded, non-zero when any failed; 2 when the server would not
start.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from harness.devserver import start_server
from wine_quality.settings import PROJECT_ROOT

LOAD_TESTS = Path(__file__).resolve().parent
CONFIG = LOAD_TESTS / "locust.conf"
RESULTS = PROJECT_ROOT / "results"


def locust_command(host: str, out_dir: Path, args: argparse.Namespace) -> list[str]:
    """The locust command line for one headless run against HOST, writing CSV and HTML into OUT_DIR."""
    command = [
        str(Path(sys.executable).with_name("locust")),
        "--config",
        str(CONFIG),
        "--host",
        host,
        "--csv",
        str(out_dir / "locust"),
        "--html",
        str(out_dir / "report.html"),
    ]
    for flag, value in (("--run-time", args.run_time), ("--users", args.users), ("--spawn-rate", args.spawn_rate)):
        if value is not None:
            command += [flag, str(value)]
    return command + list(args.user_classes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m load_tests.run", description=__doc__.splitlines()[0])
    parser.add_argument("--run-time", help="how long locust runs, e.g. 30s or 2m (default: locust.conf)")
    parser.add_argument("--users", type=int, help="concurrent users (default: locust.conf)")
    parser.add_argument("--spawn-rate", type=float, help="users started per second (default: locust.conf)")
    parser.add_argument(
        "user_classes",
        nargs="*",
        metavar="UserClass",
        help="locust user classes to run: MixedUser (default), PredictUser, PredictNetUser, BatchUser",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = RESULTS / stamp
    out_dir.mkdir(parents=True, exist_ok=True)

    print("load test: starting bentoml serve on a free port ...", flush=True)
    try:
        server = start_server(log_dir=out_dir)
    except RuntimeError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        print(f"load test: the server did not start: {lines[0]}", file=sys.stderr)
        if len(lines) > 1:  # the log's last line usually says why, e.g. "wine-quality: cannot serve: ..."
            print(f"load test: last server log line: {lines[-1]}", file=sys.stderr)
        print(f"load test: server log kept in {out_dir}", file=sys.stderr)
        print("load test: are the models trained and pinned? Run `make models` first.", file=sys.stderr)
        return 2

    print(f"load test: serving at {server.url} (ready in {server.seconds_to_ready:.1f} s)", flush=True)
    command = locust_command(server.url, out_dir, args)
    print("load test: " + " ".join(command), flush=True)
    try:
        code = subprocess.call(command, cwd=PROJECT_ROOT)
    finally:
        stopping = time.monotonic()
        server.stop()
        print(f"load test: server stopped in {time.monotonic() - stopping:.1f} s", flush=True)

    print(f"load test: reports in {out_dir}/ (report.html, locust_stats.csv, locust_failures.csv, server log)")
    if code != 0:
        print(f"load test: locust exited with {code}: failed requests, see locust_failures.csv", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
