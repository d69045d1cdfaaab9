"""A short headless locust run of the real locustfile against a real server."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.devserver import Server

ROOT = Path(__file__).resolve().parents[2]
LOCUST = Path(sys.executable).with_name("locust")
# The request names that load_tests/locustfile.py gives each call (not imported here: locust patches the process).
REQUEST_NAMES = {
    "/predict [sklearn, 1 wine]",
    "/predict_net [torch, 1 wine]",
    "/predict_batch [sklearn]",
    "/predict_batch [torch]",
}


@pytest.mark.load
@pytest.mark.integration
def test_mixed_load_has_no_failed_request(server: Server, tmp_path: Path) -> None:
    """It serves a 10 s mixed load (single wines on both models, batches on both) with zero failed requests."""
    env = {k: v for k, v in os.environ.items() if k != "LOCUST_USER_CLASSES"}  # no class named: MixedUser
    done = subprocess.run(
        [
            str(LOCUST),
            "--config",
            str(ROOT / "load_tests" / "locust.conf"),
            "--host",
            server.url,
            "--run-time",
            "10s",
            "--users",
            "10",
            "--csv",
            str(tmp_path / "locust"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"locust exited with {done.returncode}:\n{output[-6000:]}"
    assert 'All users spawned: {"MixedUser": 10}' in done.stderr, output[-3000:]

    with (tmp_path / "locust_stats.csv").open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]
    assert int(total["Failure Count"]) == 0, output[-6000:]
    assert int(total["Request Count"]) > 0
    assert set(rows) >= REQUEST_NAMES, f"missing request names: {REQUEST_NAMES - set(rows)}"
    for name in REQUEST_NAMES:
        assert int(rows[name]["Request Count"]) > 0, name
