"""`make fuzz`: a long schemathesis campaign (all checks) against a real `bentoml serve` of the pinned models."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from harness.devserver import start_server

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--max-examples", type=int, default=2000, help="generated cases per operation and phase")
    p.add_argument("--seed", type=int, help="schemathesis seed (default: random)")
    args = p.parse_args()
    server = start_server(env={"WINE_ACCESS_LOG": "false"})
    try:
        cmd = [str(Path(sys.executable).with_name("st")), "run", f"{server.url}/docs.json", "--url", server.url]
        cmd += ["--checks", "all", "--max-examples", str(args.max_examples), "--workers", "1"]
        if args.seed is not None:
            cmd += ["--seed", str(args.seed)]
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks"}
        code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    finally:
        server.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
