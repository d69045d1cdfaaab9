"""Starting the service: refusal on an empty or mismatched store, and pinned versions that stay served."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.devserver import start_server
from harness.ports import free_port
from tests.conftest import ROOT, run_cli
from wine_quality.pins import read_pins, write_pin
from wine_quality.schema import EXAMPLE

pytestmark = pytest.mark.integration


def serve_expecting_refusal(env: dict[str, str]) -> tuple[int, list[str]]:
    """Run `bentoml serve` and return its exit code and its non-empty output lines."""
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    done = subprocess.run(
        [bentoml, "serve", "service:WineQuality", "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


def test_an_empty_store_refuses_to_start_with_one_line_naming_the_fix(tmp_path: Path) -> None:
    """No model, no pin: the server exits at once with one line that names the training command."""
    code, lines = serve_expecting_refusal(
        {"BENTOML_HOME": str(tmp_path / "empty"), "WINE_MODEL_PINS": str(tmp_path / "model-pins.json")}
    )
    assert code != 0
    assert len(lines) == 1, lines
    assert lines[0].startswith("wine-quality: cannot serve: no sklearn model is pinned")
    assert "`python -m train.sklearn_model` (or `make train`)" in lines[0]


def test_a_pin_to_a_model_missing_from_the_store_is_refused(tmp_path: Path) -> None:
    """A pin file naming versions the store does not hold is refused, naming the tag and the fix."""
    lock = tmp_path / "model-pins.json"
    write_pin(lock, "sklearn", "wine_quality_sklearn:gone")
    write_pin(lock, "torch", "wine_quality_torch:gone")
    write_pin(lock, "classifier", "wine_quality_classifier:gone")
    code, lines = serve_expecting_refusal({"BENTOML_HOME": str(tmp_path / "empty"), "WINE_MODEL_PINS": str(lock)})
    assert code != 0 and len(lines) == 1, lines
    assert "sklearn model wine_quality_sklearn:gone is not in the model store" in lines[0]
    assert "make train" in lines[0]


SAVE_MISMATCHED = """
import bentoml
with bentoml.models.create("wine_quality_torch", metadata={"features": ["alcohol", "pH"]}) as m:
    pass
print(m.tag)
"""


def test_a_model_whose_features_do_not_match_the_schema_is_refused(
    tmp_path: Path, trained: dict[str, dict[str, object]]
) -> None:
    """A pinned torch model trained on other features stops the start, naming the retraining command."""
    tag = run_cli("-c", SAVE_MISMATCHED).stdout.strip()
    lock = tmp_path / "model-pins.json"
    write_pin(lock, "sklearn", str(trained["sklearn"]["tag"]))
    write_pin(lock, "torch", tag)
    write_pin(lock, "classifier", str(trained["classifier"]["tag"]))
    code, lines = serve_expecting_refusal({"WINE_MODEL_PINS": str(lock)})
    assert code != 0 and len(lines) == 1, lines
    assert f"model {tag} takes inputs ['alcohol', 'pH'], not the service's" in lines[0]
    assert "python -m train.torch_model" in lines[0]
    assert "retrain with `python -m train.torch_model`" in lines[0]


def test_a_newer_model_does_not_replace_the_pinned_one(tmp_path: Path, trained: dict[str, dict[str, object]]) -> None:
    """A model saved with --no-pin after the pin is not served, even after a restart; a pin or tag chooses it."""
    newer = json.loads(run_cli("-m", "train.sklearn_model", "--estimator", "ridge", "--no-pin").stdout)["tag"]
    lock = Path(os.environ["WINE_MODEL_PINS"])
    assert read_pins(lock)["sklearn"] == trained["sklearn"]["tag"]
    restarted = start_server(log_dir=tmp_path)
    try:
        with restarted.client() as c:
            assert c.post("/models").json()["models"]["sklearn"]["tag"] == trained["sklearn"]["tag"]
            assert c.post("/predict", json=EXAMPLE).json()["model"] == trained["sklearn"]["tag"]
    finally:
        restarted.stop()
    print(f"\nbentoml serve -> /readyz: {restarted.seconds_to_ready:.1f} s")
    chosen = start_server(env={"WINE_SKLEARN_MODEL": newer}, log_dir=tmp_path)
    try:
        with chosen.client() as c:
            assert c.post("/predict", json=EXAMPLE).json()["model"] == newer
    finally:
        chosen.stop()


def test_a_patched_package_whose_target_changed_is_refused_in_one_line(tmp_path: Path) -> None:
    """Where a package we patch no longer has the shape the patch relies on (here, BentoML's request timeout loses a
    method our patch calls), the server refuses to start, in one line naming the package and its version."""
    (tmp_path / "sitecustomize.py").write_text(
        "from bentoml._internal.server.http.traffic import TimeoutMiddleware\ndel TimeoutMiddleware._set_timer_out\n"
    )
    python_path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    code, lines = serve_expecting_refusal({"PYTHONPATH": python_path})
    assert code != 0 and len(lines) == 1, lines
    assert lines[0].startswith("wine-quality: cannot serve: wine_quality.bentoml_fixes needs bentoml 1.4.40, found ")
    assert lines[0].endswith("TimeoutMiddleware has no _set_timer_out")
