"""`make fuzz`: a long schemathesis campaign (all checks) against a real `bentoml serve` of the pinned models."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from harness.devserver import start_server
from harness.fuzzing import schemathesis_command, schemathesis_env

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--max-examples", type=int, default=2000, help="generated cases per operation and phase")
    p.add_argument("--seed", type=int, help="schemathesis seed (default: random)")
    args = p.parse_args()
    server = start_server(env={"WINE_ACCESS_LOG": "false"})
    try:
        command = schemathesis_command(server.url, args.max_examples, args.seed)
        code = subprocess.run(command, cwd=ROOT, env=schemathesis_env()).returncode
    finally:
        server.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
