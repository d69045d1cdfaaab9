"""`--track`: training runs recorded on a real MLflow tracking server, and a clear refusal without MLflow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.ports import free_port
from tests.conftest import run_cli
from train.data import RED, WHITE, file_sha256
from wine_quality.store import find_stored, read_card

SMALL = {
    "sklearn": ["-m", "train.sklearn_model", "--param", "n_estimators=10", "--cv-repeats", "1"],
    "torch": ["-m", "train.torch_model", "--epochs", "5", "--hidden", "8", "--members", "2", "--no-progress"],
}
BOTH = ["--data", str(RED), str(WHITE)]


@pytest.fixture(scope="module")
def mlflow_server() -> Iterator[str]:
    """`mlflow server` with a SQLite store and its own artifact folder on a free loopback port, stopped after."""
    folder = Path(tempfile.mkdtemp(prefix="mlflow-server-"))
    port = free_port()
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    command = [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    command += ["--artifacts-destination", str(folder / "artifacts")]
    with open(folder / "server.log", "wb") as log:
        # no job executor (it serves GenAI jobs): fewer processes to start and to stop
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (folder / "server.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (folder / "server.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_a_tracked_training_run_holds_what_the_script_printed_and_saved(mlflow_server: str, kind: str) -> None:
    """The run has the printed and stored metrics of each type, the hyperparameters, the data files' checksums and each
    type's rows, commit, tag, card."""
    from mlflow import MlflowClient

    done = run_cli(*SMALL[kind], *BOTH, "--track", "--no-pin", env={"MLFLOW_TRACKING_URI": mlflow_server})
    printed = json.loads(done.stdout)  # MLflow's own run links went to stderr: stdout stays one JSON document
    tag = printed["tag"]
    card = read_card(kind, find_stored(kind, tag))
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("wine-quality")
    [run] = client.search_runs([experiment.experiment_id], filter_string=f"tags.model_tag = '{tag}'")
    assert run.info.status == "FINISHED" and f"MLflow run {run.info.run_id}" in done.stderr
    metrics = run.data.metrics
    for wine_type in ("red", "white"):
        shown, section = printed["types"][wine_type]["metrics"], card.types[wine_type]
        prefix = f"held_out.{wine_type}."
        per_level = (f"{prefix}coverage.", f"{prefix}width.")
        held_out = {k: v for k, v in metrics.items() if k.startswith(prefix) and not k.startswith(per_level)}
        assert {k.removeprefix(prefix): v for k, v in held_out.items()} == {
            k: v for k, v in shown.items() if k not in ("coverage", "width")
        }
        assert metrics[f"{prefix}coverage.0.9"] == shown["coverage"]["0.9"] == section.metrics.coverage["0.9"]
        assert metrics[f"{prefix}width.0.9"] == shown["width"]["0.9"] == section.metrics.width["0.9"]
        cv_mae = printed["types"][wine_type]["cv_metrics"]["mae"]["mean"]
        assert metrics[f"cv.{wine_type}.mae.mean"] == cv_mae == section.cv_metrics.mae.mean
        rows = run.data.params[f"data_{wine_type}_rows"], run.data.params[f"data_{wine_type}_rows_test"]
        assert rows == (str(section.rows.rows), str(section.rows.rows_test))
    params, tags = run.data.params, run.data.tags
    assert params["n_estimators" if kind == "sklearn" else "hidden"] == ("10" if kind == "sklearn" else "[8]")
    checksums = f"{file_sha256(RED)},{file_sha256(WHITE)}"
    assert params["data_sha256"] == tags["data_sha256"] == checksums == ",".join(f.sha256 for f in card.data.files)
    assert params["layout"] == card.layout and params["cv_repeats"] == "1"
    assert tags["mlflow.source.git.commit"] == card.git_commit and tags["kind"] == kind and tags["pinned"] == "false"
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(client.download_artifacts(run.info.run_id, "card.json", folder)).read_text()
    assert json.loads(saved) == card.model_dump(mode="json")


def test_track_without_mlflow_stops_at_once_naming_the_install_command() -> None:
    """Without MLflow installed, --track refuses in one line before any training starts."""
    script = "import sys; sys.modules['mlflow'] = None\nfrom train.sklearn_model import main\nmain(['--track'])"
    done = run_cli("-c", script, check=False)
    assert done.returncode == 1 and done.stdout == ""  # no training result: it never began
    assert done.stderr == "error: --track needs MLflow, which is not installed: pip install -e '.[tracking]'\n"


@pytest.mark.integration
def test_track_run_records_files_under_their_artifact_names(
    mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the evaluation CLI will call: parameters, metrics, tags, a text and a plot under a folder."""
    from mlflow import MlflowClient

    from train.tracking import track_run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    plot = Path(__file__).parents[2] / "reports" / "residuals_by_grade.png"
    run_id = track_run(
        "evaluate red",
        {"datasets": "red", "repeats": 2},
        {"extra_trees.mae": 0.49},
        {"kind": "evaluation"},
        {"summary.md": "# MAD 0.49\n", "plots/residuals.png": plot},
        experiment="wine-quality-evaluation",
    )
    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.get_run(run_id)
    assert run.data.params == {"datasets": "red", "repeats": "2"} and run.data.metrics == {"extra_trees.mae": 0.49}
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(client.download_artifacts(run_id, "plots/residuals.png", folder))
        assert saved.read_bytes() == plot.read_bytes()
        assert Path(client.download_artifacts(run_id, "summary.md", folder)).read_text() == "# MAD 0.49\n"
