"""The OpenAPI document tells the truth: schemathesis, every check, over every operation of a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.devserver import Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("st")


def run_schemathesis(server: Server, max_examples: int, seed: int | None = None) -> tuple[int, str]:
    """`st run` with all checks against the server's /docs.json; exit code and output."""
    args = [str(SCHEMATHESIS), "run", f"{server.url}/docs.json", "--url", server.url, "--checks", "all"]
    # one worker: hypothesis describes lambdas with ast.parse, which is not thread-safe on Python 3.11
    args += ["--max-examples", str(max_examples), "--workers", "1"]
    if seed is not None:
        args += ["--seed", str(seed)]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "NO_COLOR": "1"}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def test_schemathesis_finds_nothing_in_over_1000_cases(server: Server) -> None:
    """Every operation, every check (status codes, response and header conformance, content types, positive and
    negative data, unsupported methods...): at least 1,000 generated cases and not one failure."""
    code, output = run_schemathesis(server, max_examples=100, seed=20261127)
    generated = re.search(r"(\d+) generated", output)
    assert generated, output[-3000:]
    assert code == 0 and "failure" not in output.split("SUMMARY")[-1].lower(), output[-6000:]
    assert int(generated.group(1)) >= 1000, output[-3000:]
    print(f"\nschemathesis: {generated.group(1)} cases, no failure")
