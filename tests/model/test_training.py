"""Training runs: the card and files saved to the model store, the ONNX form's parity, reproducibility and pinning."""

from __future__ import annotations

import json
from pathlib import Path

import bentoml
import numpy as np
import pytest

from tests.conftest import run_cli
from train import sklearn_model, torch_model
from train.data import RED, WHITE, file_sha256, load_wines, split_wines
from train.metrics import regression_metrics
from train.onnx_export import TOLERANCE, OnnxForm
from wine_quality.pins import read_pins
from wine_quality.schema import FEATURE_NAMES
from wine_quality.served import ServedModel
from wine_quality.settings import ModelSettings, Settings
from wine_quality.store import ModelStoreError, read_card

# lr 0.05: with L1 loss the output moves towards the grades by about lr per step; 5 epochs at the default lr leave
# it far below them, where served grades are clipped at 0
TINY_NET = ["--no-pin", "--no-progress", "--epochs=5", "--hidden=8", "--lr=0.05", "--members=2", "--seed=3"]
TINY_TREES = ["--no-pin", "--param", "n_estimators=10", "--cv-repeats", "1", "--seed", "3"]
HOLDOUT = ["--holdout-fit"]  # the saved model is the one the held-out metrics score


def served(kind: str, tag: str, runtime: str) -> ServedModel:
    return ServedModel.load(kind, Settings(models=ModelSettings(tags={kind: tag}, runtime=runtime)))


def test_sklearn_run_saves_its_card_and_both_forms() -> None:
    """A linear run saves the Pipeline, its ONNX form and a card with features, metrics, data checksum and ranges."""
    result = sklearn_model.main(["--no-pin", "--estimator", "linear", "--seed", "3"])
    stored = bentoml.models.get(result["tag"])
    card = read_card("sklearn", stored)
    assert card.features == list(FEATURE_NAMES) and card.estimator == "linear"
    assert card.metrics.model_dump(mode="json") == result["metrics"]
    assert set(card.metrics.coverage) == {"0.8", "0.9", "0.95"}
    assert (card.cv_metrics.folds, card.cv_metrics.repeats) == (5, 3) and card.cv_metrics.mae.std > 0
    assert card.hyperparameters["seed"] == 3
    assert card.data.model_dump() == {
        "file": "winequality-red.csv",
        "sha256": file_sha256(RED),
        "rows": 1599,
        "rows_unique": 1359,
        "rows_train": 1087,
        "rows_test": 272,
        "fitted_on": "all",
        "rows_fitted": 1359,
    }
    unique = load_wines(RED).drop_duplicates()
    assert card.feature_ranges["alcohol"] == (unique["alcohol"].min(), unique["alcohol"].max())
    assert {"python", "bentoml", "numpy", "onnxruntime", "scikit-learn"} <= set(card.versions)
    # the seed's linear regression reached R2 0.36 on raw rows; deduplicated data must not do much worse
    assert 0.25 < card.metrics.r2 < 0.6
    assert Path(stored.path_of("model.joblib")).is_file() and Path(stored.path_of("model.onnx")).is_file()


@pytest.mark.parametrize(("kind", "argv"), [("sklearn", TINY_TREES + HOLDOUT), ("torch", TINY_NET + HOLDOUT)])
def test_the_onnx_form_predicts_what_the_native_model_predicts(kind: str, argv: list[str]) -> None:
    """Parity is checked on every distinct row of the file at training, recorded, and holds for the saved files:
    extra trees exactly (double precision), the network within float32 rounding; held-out metrics agree to 3 places."""
    main = sklearn_model.main if kind == "sklearn" else torch_model.main
    tag = main(argv)["tag"]
    onnx, native = served(kind, tag, "onnx"), served(kind, tag, "native")
    card = onnx.card
    assert card.onnx.rows_checked == 1359 and card.onnx.max_abs_diff <= card.onnx.tolerance
    assert card.onnx.precision == ("double" if kind == "sklearn" else "float32")
    split = split_wines(load_wines(RED), 0.2, 3)
    rows = np.concatenate([split.x_test, load_wines(WHITE)[list(FEATURE_NAMES)].to_numpy()[:500]])
    a, b = onnx.predictor(1)(rows), native.predictor(1)(rows)
    if kind == "sklearn":
        assert np.array_equal(a, b)
    else:
        assert np.max(np.abs(a - b)) <= TOLERANCE["float32"]
    for name, value in regression_metrics(split.y_test, a[: len(split.y_test)]).items():
        assert round(value, 3) == round(getattr(card.metrics, name), 3), name


def test_a_parity_failure_stops_training_and_saves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ONNX form that predicts other grades (here: another model's) ends the run with the measured difference."""
    other = sklearn_model.build_pipeline("ridge", 0).fit(np.ones((3, 11)) * [[1], [2], [3]], np.array([3.0, 5.0, 8.0]))
    wrong = sklearn_model.sklearn_to_onnx(other)
    monkeypatch.setattr(sklearn_model, "sklearn_to_onnx", lambda pipeline: OnnxForm(wrong.model, wrong.precision))
    before = {str(m.tag) for m in bentoml.models.list("wine_quality_sklearn")}
    with pytest.raises(SystemExit, match=r"the ONNX form \(double\) predicts up to .* \(tolerance 1e-09\): not saved"):
        sklearn_model.main(["--no-pin", "--estimator", "linear"])
    assert {str(m.tag) for m in bentoml.models.list("wine_quality_sklearn")} == before


def test_same_seed_same_metrics() -> None:
    """Two runs with one seed on one file give identical metrics; a model differs only in its tag."""
    forest = ["--no-pin", "--estimator", "random_forest", "--param", "n_estimators=20", "--seed", "5"]
    first, second = sklearn_model.main(forest), sklearn_model.main(forest)
    assert first["metrics"] == second["metrics"] and first["tag"] != second["tag"]
    a, b = torch_model.main(TINY_NET), torch_model.main(TINY_NET)
    assert a["metrics"] == b["metrics"]


def test_the_torch_entry_carries_its_scaling() -> None:
    """The saved checkpoint holds each member's input scaling; the card records the training settings and each
    member's early stopping."""
    import torch

    result = torch_model.main(TINY_NET)
    stored = bentoml.models.get(result["tag"])
    checkpoint = torch.load(stored.path_of("model.pt"), weights_only=True)
    for member in checkpoint["members"]:
        assert member["config"]["hidden"] == [8] and member["config"]["log_inputs"] is True
        assert not torch.allclose(member["state_dict"]["mean"], torch.zeros(len(FEATURE_NAMES)))
    hyper = read_card("torch", stored).hyperparameters
    assert hyper["optimizer"] == "adam" and hyper["epochs"] == 5 and hyper["loss"] == "l1"
    assert hyper["members"] == 2 and hyper["log_inputs"] is True
    assert isinstance(hyper["epochs_run"], list) and len(hyper["epochs_run"]) == 2
    assert all(1 <= run <= 5 for run in hyper["epochs_run"])
    assert isinstance(hyper["best_val_loss"], list) and len(hyper["best_val_loss"]) == 2


def test_the_torch_entry_is_an_ensemble_of_the_requested_members() -> None:
    """--members 3 saves three networks, trained with different seeds (so they differ), and the served prediction
    is the mean of their own predictions; --no-log-inputs and --loss reach every member."""
    import torch

    from wine_quality.nets import WineEnsemble, WineNet, load_net

    argv = [*TINY_NET, "--members", "3", "--no-log-inputs", "--loss", "huber"]
    stored = bentoml.models.get(torch_model.main(argv)["tag"])
    ensemble = load_net(torch.load(stored.path_of("model.pt"), weights_only=True))
    assert isinstance(ensemble, WineEnsemble) and len(ensemble.members) == 3
    members = [m for m in ensemble.members if isinstance(m, WineNet)]
    assert [m.config["log_inputs"] for m in members] == [False] * 3
    rows = load_wines(RED)[list(FEATURE_NAMES)].to_numpy()[:200]
    own = [m.predict(rows) for m in members]
    assert ensemble.predict(rows) == pytest.approx(np.mean(own, axis=0), abs=1e-6)
    assert all(np.max(np.abs(own[i] - own[j])) > 1e-3 for i, j in ((0, 1), (0, 2), (1, 2)))
    native = served("torch", str(stored.tag), "native").predictor(1)(rows)
    assert native == pytest.approx(np.clip(ensemble.predict(rows), 0, 10), abs=1e-6)
    assert read_card("torch", stored).hyperparameters["loss"] == "huber"


def test_training_pins_what_it_saves_unless_told_not_to(tmp_path: Path) -> None:
    """The CLI writes the saved tag to the pin file; --no-pin leaves the file alone."""
    pins = tmp_path / "model-pins.json"
    env = {"WINE_MODEL_PINS": str(pins)}
    first = json.loads(run_cli("-m", "train.sklearn_model", "--estimator", "ridge", env=env).stdout)
    assert read_pins(pins) == {"sklearn": first["tag"]} and first["pinned"] is True
    run_cli("-m", "train.sklearn_model", "--estimator", "ridge", "--no-pin", env=env)
    assert read_pins(pins) == {"sklearn": first["tag"]}


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
    """--data takes the semicolon white file; the card names it and its row counts."""
    result = sklearn_model.main(["--no-pin", "--estimator", "ridge", "--data", str(WHITE)])
    data = read_card("sklearn", bentoml.models.get(result["tag"])).data
    assert (data.file, data.rows, data.rows_unique) == ("winequality-white.csv", 4898, 3961)


def test_a_model_with_other_features_is_refused_for_serving() -> None:
    """A stored model whose features differ from the schema cannot be served; the error names the fix."""
    with bentoml.models.create("wine_quality_sklearn", metadata={"features": ["alcohol"]}) as m:
        pass
    with pytest.raises(ModelStoreError, match=r"retrain with `python -m train\.sklearn_model`"):
        read_card("sklearn", bentoml.models.get(m.tag))


def test_a_model_saved_by_older_training_code_is_refused_naming_the_fix() -> None:
    """A card without the fields serving needs (a model from before the ONNX form) is refused, not half-served."""
    with bentoml.models.create("wine_quality_torch", metadata={"features": list(FEATURE_NAMES), "kind": "torch"}) as m:
        pass
    with pytest.raises(ModelStoreError, match=r"saved by an older version of the training code .* retrain with `pyt"):
        read_card("torch", bentoml.models.get(m.tag))


def test_intervals_hold_their_coverage_on_held_out_rows() -> None:
    """The 90 % interval, calibrated on out-of-fold predictions, covers 87-97 % of the held-out grades (grade by
    grade calibration covers the common grades beyond the level); wider levels, wider intervals."""
    result = sklearn_model.main(["--no-pin", "--param", "n_estimators=50"])
    card = read_card("sklearn", bentoml.models.get(result["tag"]))
    widths = card.interval.half_width
    assert widths["0.8"] < widths["0.9"] < widths["0.95"]
    assert 0.87 <= card.metrics.coverage["0.9"] <= 0.97
    assert card.metrics.coverage["0.8"] < card.metrics.coverage["0.95"]
    assert card.metrics.width["0.8"] < card.metrics.width["0.9"] < card.metrics.width["0.95"]


def test_a_served_model_needs_an_interval_at_the_served_coverage() -> None:
    """Serving at a coverage the model was not calibrated for is refused, naming the levels it has."""
    tag = sklearn_model.main(["--no-pin", "--estimator", "ridge"])["tag"]
    settings = Settings(models=ModelSettings(tags={"sklearn": tag}, interval_coverage=0.95))
    loaded = ServedModel.load("sklearn", settings)
    assert loaded.half_width == loaded.card.interval.half_width["0.95"]
    with pytest.raises(ModelStoreError, match=r"no prediction interval calibrated for coverage 0.99"):
        ServedModel.load("sklearn", Settings(models=ModelSettings(tags={"sklearn": tag}, interval_coverage=0.99)))
