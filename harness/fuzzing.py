"""The schemathesis command line that `make test` and `make fuzz` run against a real server."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def schemathesis_command(url: str, max_examples: int, seed: int | None = None) -> list[str]:
    """`st run` over every operation of the server's /docs.json, with every check; schemathesis' positive-data check
    is replaced by tests/schemathesis_hooks.py's, which accepts the 400 of the rules the document states in words
    (see schemathesis.toml)."""
    command = [str(Path(sys.executable).with_name("st")), "run", f"{url}/docs.json", "--url", url]
    command += ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]
    # one worker: hypothesis describes lambdas with ast.parse, which is not thread-safe on Python 3.11
    command += ["--max-examples", str(max_examples), "--workers", "1"]
    return command + (["--seed", str(seed)] if seed is not None else [])


def schemathesis_env() -> dict[str, str]:
    """The environment that loads the project's hooks."""
    return {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "NO_COLOR": "1"}
