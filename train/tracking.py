"""Experiment tracking in MLflow (the optional `tracking` extra): one run per training, or per evaluation.

Where runs go: MLFLOW_TRACKING_URI, else WINE_TRACKING_URI, else a local SQLite store in the project
(`mlflow.db`, with artifacts under `mlruns/`, both git-ignored); `mlflow ui --backend-store-uri sqlite:///mlflow.db`
shows it. Runs land in the `wine-quality` experiment.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from wine_quality.card import ModelCard
from wine_quality.settings import PROJECT_ROOT, get_settings

INSTALL = "pip install -e '.[tracking]'"
EXPERIMENT = "wine-quality"
LOCAL_STORE = f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
LOCAL_ARTIFACTS = PROJECT_ROOT / "mlruns"
BATCH = 100  # MLflow takes at most 100 parameters and 1,000 metrics per logging call


class TrackOption(argparse.Action):
    """`--track`: checked as the options are read, so a missing MLflow stops the run before any training."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, *_: Any) -> None:
        try:
            import mlflow  # noqa: F401
        except ImportError:
            sys.exit(f"error: --track needs MLflow, which is not installed: {INSTALL}")
        setattr(namespace, self.dest, True)


def tracking_uri() -> str:
    """Where runs are recorded: MLflow's own variable first, then the project's setting, then the local store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or get_settings().training.tracking_uri or LOCAL_STORE


def _experiment(client: Any, uri: str, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    # a local store keeps its artifacts in the project, wherever the command runs from; a server decides its own
    location = LOCAL_ARTIFACTS.as_uri() if uri == LOCAL_STORE else None
    return str(client.create_experiment(name, artifact_location=location))


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """MLflow prints run links on stdout, which the training scripts keep for their JSON result."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _log_file(client: Any, run_id: str, name: str, source: Path) -> None:
    """Copy a file into the run's artifacts under `name` (which may hold folders: "plots/residuals.png")."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / Path(name).name
        shutil.copyfile(source, target)
        parent = str(Path(name).parent)
        client.log_artifact(run_id, str(target), artifact_path=None if parent == "." else parent)


def track_run(
    name: str,
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: Mapping[str, str | Path],
    experiment: str = EXPERIMENT,
) -> str:
    """Record one finished run: parameters, metrics, tags, and artifacts (file name -> text, or a file to copy).

    Returns the run id. A failure while logging marks the run FAILED and is raised.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    uri = tracking_uri()
    with _quiet_stdout():
        client = MlflowClient(tracking_uri=uri)
        run = client.create_run(_experiment(client, uri, experiment), run_name=name)
        run_id = str(run.info.run_id)
        try:
            now = int(time.time() * 1000)
            items = [Param(k, str(v)) for k, v in params.items()]
            for start in range(0, len(items), BATCH):
                client.log_batch(run_id, params=items[start : start + BATCH])
            client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                tags=[RunTag(k, v) for k, v in tags.items()],
            )
            for file, content in artifacts.items():
                if isinstance(content, Path):
                    _log_file(client, run_id, file, content)
                else:
                    client.log_text(run_id, content, file)
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id)
    print(f"tracked: MLflow run {run_id} ({name}) in experiment {experiment!r} at {uri}", file=sys.stderr)
    return run_id


def _flat(prefix: str, value: Any) -> dict[str, float]:
    """Nested card metrics as MLflow metric names: {"cv": {"r2": {"mean": 0.4}}} -> {"cv.r2.mean": 0.4}."""
    if isinstance(value, dict):
        return {k: v for key, inner in value.items() for k, v in _flat(f"{prefix}.{key}", inner).items()}
    return {prefix: float(value)}


def card_metrics(card: ModelCard) -> dict[str, float]:
    """The held-out and cross-validated metrics of each type in a card, by the names a tracked run gives them
    (`held_out.red.mae`, `cv.white.mae.mean`)."""
    found: dict[str, float] = {}
    for wine_type, section in card.types.items():
        cv = section.cv_metrics.model_dump(exclude={"folds", "repeats"})
        found |= {**_flat(f"held_out.{wine_type}", section.metrics.model_dump()), **_flat(f"cv.{wine_type}", cv)}
    return found


def track_training(card: ModelCard, tag: str, pinned: bool) -> str:
    """Record a training run: hyperparameters, data files and rows, metrics, code version, store tag, and the card."""
    data = card.data
    checksums = ",".join(f.sha256 for f in data.files)
    cv = next(iter(card.types.values())).cv_metrics
    params: dict[str, object] = {
        **card.hyperparameters,
        "estimator": card.estimator,
        "layout": card.layout,
        "cv_folds": cv.folds,
        "cv_repeats": cv.repeats,
        "data_files": ",".join(f.file for f in data.files),
        "data_sha256": checksums,
        "data_fitted_on": data.fitted_on,
        **{
            f"data_{wine_type}_{field}": value
            for wine_type, section in card.types.items()
            for field, value in section.rows.model_dump().items()
        },
    }
    tags = {
        "kind": card.kind,
        "model_tag": tag,
        "pinned": str(pinned).lower(),
        "mlflow.source.git.commit": card.git_commit or "unknown",
        "data_sha256": checksums,
    }
    card_json = json.dumps(card.model_dump(mode="json"), indent=2)
    return track_run(f"train {card.kind} {card.estimator}", params, card_metrics(card), tags, {"card.json": card_json})
