"""Training runs: held-out metrics, what is saved to the model store, reproducibility and pinning."""

from __future__ import annotations

import json
from pathlib import Path

import bentoml
import numpy as np
import pytest

from tests.conftest import run_cli
from train import sklearn_model, torch_model
from train.data import RED, file_sha256, load_wines, split_wines
from wine_quality.registry import ModelStoreError, ServedModel, load_predictor, read_pins
from wine_quality.schema import FEATURE_NAMES

TINY_NET = ["--no-pin", "--no-progress", "--epochs", "5", "--hidden", "8", "--seed", "3"]
METRICS = {"r2", "mae", "rmse", "within_0_25", "within_0_5", "within_1_0"}
COVERAGES = {"coverage_0_8", "coverage_0_9", "coverage_0_95"}


def test_sklearn_run_saves_pipeline_with_full_metadata() -> None:
    """A linear run saves its Pipeline with features, metrics, data checksum, ranges and versions."""
    result = sklearn_model.main(["--no-pin", "--estimator", "linear", "--seed", "3"])
    stored = bentoml.models.get(result["tag"])
    meta = stored.info.metadata
    assert meta["features"] == list(FEATURE_NAMES)
    assert set(meta["metrics"]) == METRICS | COVERAGES and meta["metrics"] == result["metrics"]
    assert meta["cv_metrics"]["folds"] == 5 and meta["cv_metrics"]["repeats"] == 3
    assert set(meta["cv_metrics"]) == METRICS | {"folds", "repeats"}
    assert meta["cv_metrics"]["mae"]["std"] > 0
    assert set(meta["interval"]["half_width"]) == {"0.8", "0.9", "0.95"}
    assert meta["hyperparameters"]["estimator"] == "linear" and meta["hyperparameters"]["seed"] == 3
    assert meta["data"] == {
        "file": "winequality-red.csv",
        "sha256": file_sha256(RED),
        "rows": 1599,
        "rows_unique": 1359,
        "rows_train": 1087,
        "rows_test": 272,
    }
    split = split_wines(load_wines(RED), 0.2, 3)
    assert meta["feature_ranges"]["alcohol"] == [split.x_train[:, -1].min(), split.x_train[:, -1].max()]
    assert {"python", "bentoml", "numpy", "scikit-learn"} <= set(meta["versions"])
    # the seed's linear regression reached R2 0.36 on raw rows; deduplicated data must not do much worse
    assert 0.25 < result["metrics"]["r2"] < 0.6
    pipeline = bentoml.sklearn.load_model(stored)
    assert [name for name, _ in pipeline.steps] == ["scale", "model"]


def test_same_seed_same_metrics() -> None:
    """Two runs with one seed on one file give identical metrics; a model differs only in its tag."""
    first = sklearn_model.main(
        ["--no-pin", "--estimator", "random_forest", "--param", "n_estimators=20", "--seed", "5"]
    )
    second = sklearn_model.main(
        ["--no-pin", "--estimator", "random_forest", "--param", "n_estimators=20", "--seed", "5"]
    )
    assert first["metrics"] == second["metrics"] and first["tag"] != second["tag"]
    a, b = torch_model.main(TINY_NET), torch_model.main(TINY_NET)
    assert a["metrics"] == b["metrics"]


def test_torch_entry_carries_its_scaling_and_predicts_like_the_trained_net() -> None:
    """The saved state holds mean and scale; the loaded model reproduces the run's held-out metrics."""
    import torch

    result = torch_model.main(TINY_NET)
    stored = bentoml.models.get(result["tag"])
    checkpoint = torch.load(stored.path_of("model.pt"), weights_only=True)
    split = split_wines(load_wines(RED), 0.2, 3)
    assert checkpoint["config"]["hidden"] == [8]
    assert not torch.allclose(checkpoint["state_dict"]["mean"], torch.zeros(len(FEATURE_NAMES)))
    hyper = stored.info.metadata["hyperparameters"]
    assert hyper["optimizer"] == "adam" and hyper["epochs"] == 5 and hyper["epochs_run"] <= 5
    predicted = load_predictor("torch", stored)(split.x_test)
    mae = float(np.mean(np.abs(predicted - split.y_test)))
    assert mae == pytest.approx(result["metrics"]["mae"], abs=1e-6)


def test_training_pins_what_it_saves_unless_told_not_to(tmp_path: Path) -> None:
    """The CLI writes the saved tag to the pin file; --no-pin leaves the file alone."""
    lock = tmp_path / "models.lock.json"
    env = {"WINE_MODELS_LOCK": str(lock)}
    first = json.loads(run_cli("-m", "train.sklearn_model", "--estimator", "ridge", env=env).stdout)
    assert read_pins(lock) == {"sklearn": first["tag"]} and first["pinned"] is True
    run_cli("-m", "train.sklearn_model", "--estimator", "ridge", "--no-pin", env=env)
    assert read_pins(lock) == {"sklearn": first["tag"]}


def test_a_broken_data_file_stops_training_with_one_line(tmp_path: Path) -> None:
    """Training on a file with a bad cell exits non-zero naming the file, line and column."""
    bad = tmp_path / "bad.csv"
    lines = RED.read_text().splitlines()
    lines[3] = lines[3].replace("3.26", "x", 1)
    bad.write_text("\n".join(lines))
    done = run_cli("-m", "train.sklearn_model", "--no-pin", "--data", str(bad), check=False)
    assert done.returncode != 0
    assert done.stderr.strip() == f"error: {bad}: line 4, column 'pH': non-numeric value 'x'"


def test_training_on_the_white_file_records_it() -> None:
    """--data takes the semicolon white file; the metadata names it and its row counts."""
    result = sklearn_model.main(
        ["--no-pin", "--estimator", "ridge", "--data", str(RED.with_name("winequality-white.csv"))]
    )
    data = bentoml.models.get(result["tag"]).info.metadata["data"]
    assert (data["file"], data["rows"], data["rows_unique"]) == ("winequality-white.csv", 4898, 3961)


def test_a_model_with_other_features_is_refused_for_serving() -> None:
    """A stored model whose features differ from the schema cannot be served; the error names the fix."""
    with bentoml.models.create("wine_quality_sklearn", metadata={"features": ["alcohol"], "feature_ranges": {}}) as m:
        pass
    with pytest.raises(ModelStoreError, match=r"retrain with `python -m train\.sklearn_model`"):
        ServedModel.from_stored("sklearn", bentoml.models.get(m.tag), 0.9)


def test_intervals_hold_their_coverage_on_held_out_rows() -> None:
    """The 90 % interval, calibrated on out-of-fold residuals, covers 87-93 % of the held-out grades."""
    result = sklearn_model.main(["--no-pin"])
    stored = bentoml.models.get(result["tag"])
    widths = stored.info.metadata["interval"]["half_width"]
    assert widths["0.8"] < widths["0.9"] < widths["0.95"]
    assert abs(result["metrics"]["coverage_0_9"] - 0.9) <= 0.03
    assert result["metrics"]["coverage_0_8"] < result["metrics"]["coverage_0_95"]


def test_a_served_model_needs_an_interval_at_the_served_coverage() -> None:
    """Serving at a coverage the model was not calibrated for is refused, naming the levels it has."""
    result = sklearn_model.main(["--no-pin", "--estimator", "ridge"])
    stored = bentoml.models.get(result["tag"])
    assert (
        ServedModel.from_stored("sklearn", stored, 0.95).half_width
        == stored.info.metadata["interval"]["half_width"]["0.95"]
    )
    with pytest.raises(ModelStoreError, match=r"no prediction interval calibrated for coverage 0.99"):
        ServedModel.from_stored("sklearn", stored, 0.99)
