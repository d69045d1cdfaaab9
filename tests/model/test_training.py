"""Training runs: the card and files saved to the model store, the ONNX form's parity, reproducibility and pinning."""

from __future__ import annotations

import json
from pathlib import Path

import bentoml
import numpy as np
import onnx
import pandas as pd
import pytest

from tests.conftest import run_cli
from train import sklearn_model, torch_model
from train.data import DATA_FILES, RED, WHITE, file_sha256, is_type, load_files, load_wines, split_wines
from train.metrics import regression_metrics
from train.onnx_export import TOLERANCE, OnnxGraph, sklearn_to_onnx
from wine_quality.kinds import KINDS
from wine_quality.pins import read_pins
from wine_quality.schema import FEATURE_NAMES, MODEL_INPUTS
from wine_quality.served import ServedModel
from wine_quality.settings import ModelSettings, Settings
from wine_quality.store import ModelStoreError, read_card

# lr 0.05: with L1 loss the output moves towards the grades by about lr per step; 5 epochs at the default lr leave
# it far below them, where served grades are clipped at 0
TINY_NET = ["--no-pin", "--no-progress", "--epochs=5", "--hidden=8", "--lr=0.05", "--members=2", "--seed=3"]
TINY_TREES = ["--no-pin", "--param", "n_estimators=10", "--cv-repeats", "1", "--seed", "3"]
HOLDOUT = ["--holdout-fit"]  # the saved model is the one the held-out metrics score
RED_ONLY = ["--data", str(RED)]


def served(kind: str, tag: str, runtime: str) -> ServedModel:
    return ServedModel.load(kind, Settings(models=ModelSettings(tags={kind: tag}, runtime=runtime)))


def test_sklearn_run_saves_its_card_and_both_forms() -> None:
    """A linear run on the red file saves the Pipeline, its ONNX form and a card with the model inputs, the data
    file's checksum and rows, and the red section: figures, row counts and ranges."""
    result = sklearn_model.main(["--no-pin", "--estimator", "linear", "--seed", "3", *RED_ONLY])
    stored = bentoml.models.get(result["tag"])
    card = read_card("sklearn", stored)
    assert card.features == list(MODEL_INPUTS) and card.estimator == "linear" and card.layout == sklearn_model.LAYOUT
    assert list(card.types) == ["red"]
    red = card.types["red"]
    assert red.metrics.model_dump(mode="json") == result["types"]["red"]["metrics"]
    assert set(red.metrics.coverage) == {"0.8", "0.9", "0.95"}
    assert (red.cv_metrics.folds, red.cv_metrics.repeats) == (5, 3) and red.cv_metrics.mae.std > 0
    assert card.hyperparameters["seed"] == 3
    assert card.data.model_dump() == {
        "files": [{"file": "winequality-red.csv", "sha256": file_sha256(RED), "rows": 1599, "types": {"red": 1599}}],
        "fitted_on": "all",
    }
    assert red.rows.model_dump() == {
        "rows": 1599,
        "rows_unique": 1359,
        "rows_train": 1087,
        "rows_test": 272,
        "rows_fitted": 1359,
    }
    unique = load_wines(RED).drop_duplicates()
    assert red.feature_ranges["alcohol"] == (unique["alcohol"].min(), unique["alcohol"].max())
    assert {"python", "bentoml", "numpy", "onnxruntime", "scikit-learn"} <= set(card.versions)
    # the seed's linear regression reached R2 0.36 on raw rows; deduplicated data must not do much worse
    assert 0.25 < red.metrics.r2 < 0.6
    assert Path(stored.path_of("model.joblib")).is_file() and Path(stored.path_of("model.onnx")).is_file()


@pytest.fixture(scope="module")
def both() -> dict[str, ServedModel]:
    """Small forests trained on both files, pooled and per type, the held-out model saved."""
    tags = {
        layout: sklearn_model.main([*TINY_TREES, *HOLDOUT, "--layout", layout])["tag"]
        for layout in ("pooled", "per_type")
    }
    return {layout: served("sklearn", tag, "onnx") for layout, tag in tags.items()}


@pytest.mark.parametrize("layout", ["pooled", "per_type"])
def test_training_on_both_files_writes_a_card_with_both_types(both: dict[str, ServedModel], layout: str) -> None:
    """By default training reads both files: the card lists both with their checksums and rows, and holds a section
    per type with its own rows, figures, intervals, ranges and drift reference."""
    card = both[layout].card
    assert card.layout == layout and list(card.types) == ["red", "white"]
    assert [(f.file, f.sha256, f.rows, f.types) for f in card.data.files] == [
        ("winequality-red.csv", file_sha256(RED), 1599, {"red": 1599}),
        ("winequality-white.csv", file_sha256(WHITE), 4898, {"white": 4898}),
    ]
    assert card.types["red"].rows.rows_unique == 1359 and card.types["white"].rows.rows_unique == 3961
    assert (card.types["red"].rows.rows_test, card.types["white"].rows.rows_test) == (272, 793)
    assert card.types["white"].reference.rows == card.types["white"].rows.rows_fitted == 3168
    split = split_wines(load_files(DATA_FILES), 0.2, 3)
    seen = split.x_train[is_type(split.x_train, "white")]  # the held-out model is the saved one
    sugar = FEATURE_NAMES.index("residual sugar")
    assert card.types["white"].feature_ranges["residual sugar"] == (seen[:, sugar].min(), seen[:, sugar].max())
    assert card.types["red"].interval.by_grade != card.types["white"].interval.by_grade
    assert card.types["red"].metrics != card.types["white"].metrics
    assert card.onnx.rows_checked == 5320 and card.onnx.max_abs_diff <= card.onnx.tolerance == 1e-9


@pytest.mark.parametrize("layout", ["pooled", "per_type"])
def test_a_white_wine_is_graded_with_whites_calibration_and_ranges(both: dict[str, ServedModel], layout: str) -> None:
    """A white wine from the white file gets the white section's interval, is within the white training ranges and
    outside the red ones in its sugar; the same row sent as red gets red's interval."""
    model = both[layout]
    split = split_wines(load_files(DATA_FILES), 0.2, 3)
    rows = split.x_train[is_type(split.x_train, "white")]
    sweet = rows[np.argmax(rows[:, FEATURE_NAMES.index("residual sugar")])]  # sweeter than any red wine
    quality = model.predictor(1)(sweet[None, :])
    white, red = np.array([True]), np.array([False])
    spans = model.types["white"].spans
    assert spans is not None and np.array_equal(model.intervals(quality, white), spans(quality))
    red_spans = model.types["red"].spans
    assert red_spans is not None and np.array_equal(model.intervals(quality, red), red_spans(quality))
    assert model.outside_training_range(sweet[None, :11], white) == [[]]
    assert "residual sugar" in model.outside_training_range(sweet[None, :11], red)[0]
    assert model.types["white"].reference == model.card.types["white"].reference


def test_the_onnx_form_predicts_what_the_native_model_predicts_on_every_wine(both: dict[str, ServedModel]) -> None:
    """Both layouts' ONNX forms, on every distinct row of both files, together and each type's alone: exactly the
    native grades (double precision). Per type, each type's forest is an ensemble of its own, which its type's rows
    alone reach (gathered from the batch, and scattered back): a batch of one type, or of none, is answered too."""
    rows = split_wines(load_files(DATA_FILES), 0.2, 3).x_all
    for model in both.values():
        native = served("sklearn", model.tag, "native").predictor(1)
        for part in (rows, rows[is_type(rows, "red")], rows[is_type(rows, "white")]):
            assert np.array_equal(model.predictor(1)(part), native(part))
    assert both["per_type"].predictor(1)(rows[:0]).shape == (0,)
    graph = onnx.load(Path(both["per_type"].path) / both["per_type"].card.onnx.file).graph
    ensembles = [node for node in graph.node if node.op_type == "TreeEnsemble"]
    roots = [next(a.ints for a in ensemble.attribute if a.name == "tree_roots") for ensemble in ensembles]
    assert [len(r) for r in roots] == [10, 10]  # --param n_estimators=10, for each type


@pytest.mark.parametrize(
    ("kind", "argv"),
    [
        ("sklearn", ["--no-pin", "--estimator", "ridge", "--cv-repeats", "1"]),
        ("torch", TINY_NET),
        ("classifier", ["--no-pin", "--n-estimators", "5"]),
    ],
)
def test_every_kind_per_type_is_one_graph_with_parity(kind: str, argv: list[str]) -> None:
    """Per type, each kind's ONNX form (both types' graphs, each row answered by its type's) predicts what its native
    form predicts on every distinct row of both files, within the tolerance of its precision."""
    tag = json.loads(run_cli("-m", KINDS[kind].train_module, *argv, "--layout", "per_type").stdout)["tag"]
    onnx_model, native = served(kind, tag, "onnx"), served(kind, tag, "native")
    rows = split_wines(load_files(DATA_FILES), 0.2, 42).x_all
    card = onnx_model.card
    assert card.layout == "per_type" and card.onnx.rows_checked == len(rows) == 5320
    difference = np.max(np.abs(onnx_model.predictor(1)(rows) - native.predictor(1)(rows)))
    assert difference <= card.onnx.tolerance == TOLERANCE[card.onnx.precision]


@pytest.mark.parametrize(("kind", "argv"), [("sklearn", TINY_TREES + HOLDOUT), ("torch", TINY_NET + HOLDOUT)])
def test_the_onnx_form_predicts_what_the_native_model_predicts(kind: str, argv: list[str]) -> None:
    """Parity is checked on every distinct row of the red file at training, recorded, and holds for the saved files:
    extra trees exactly (double precision), the network within float32 rounding; held-out metrics agree to 3 places."""
    main = sklearn_model.main if kind == "sklearn" else torch_model.main
    tag = main([*argv, *RED_ONLY])["tag"]
    onnx, native = served(kind, tag, "onnx"), served(kind, tag, "native")
    card = onnx.card
    assert card.onnx.rows_checked == 1359 and card.onnx.max_abs_diff <= card.onnx.tolerance
    assert card.onnx.precision == ("double" if kind == "sklearn" else "float32")
    split = split_wines(load_wines(RED), 0.2, 3)
    whites = split_wines(load_wines(WHITE), 0.2, 3).x_test[:500]
    rows = np.concatenate([split.x_test, whites])
    a, b = onnx.predictor(1)(rows), native.predictor(1)(rows)
    if kind == "sklearn":
        assert np.array_equal(a, b)
    else:
        assert np.max(np.abs(a - b)) <= TOLERANCE["float32"]
    for name, value in regression_metrics(split.y_test, a[: len(split.y_test)]).items():
        assert round(value, 3) == round(getattr(card.types["red"].metrics, name), 3), name


def test_a_parity_failure_stops_training_and_saves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ONNX form that predicts other grades (here: another model's) ends the run with the measured difference."""
    other = sklearn_model.build_pipeline("ridge", 0).fit(np.ones((3, 12)) * [[1], [2], [3]], np.array([3.0, 5.0, 8.0]))
    wrong = sklearn_to_onnx(other)
    monkeypatch.setattr(sklearn_model, "sklearn_per_type", lambda pipeline: OnnxGraph(wrong.model, wrong.precision))
    before = {str(m.tag) for m in bentoml.models.list("wine_quality_sklearn")}
    with pytest.raises(SystemExit, match=r"the ONNX form \(double\) predicts up to .* \(tolerance 1e-09\): not saved"):
        sklearn_model.main(["--no-pin", "--estimator", "linear", *RED_ONLY])
    assert {str(m.tag) for m in bentoml.models.list("wine_quality_sklearn")} == before


def test_same_seed_same_metrics() -> None:
    """Two runs with one seed on one file give identical metrics; a model differs only in its tag."""
    forest = ["--no-pin", "--estimator", "random_forest", "--param", "n_estimators=20", "--seed", "5", *RED_ONLY]
    first, second = sklearn_model.main(forest), sklearn_model.main(forest)
    assert first["types"] == second["types"] and first["tag"] != second["tag"]
    a, b = torch_model.main([*TINY_NET, *RED_ONLY]), torch_model.main([*TINY_NET, *RED_ONLY])
    assert a["types"] == b["types"]


def test_the_torch_entry_carries_its_scaling() -> None:
    """The saved checkpoint holds each member's input scaling; the card records the training settings and each
    member's early stopping."""
    import torch

    result = torch_model.main([*TINY_NET, *RED_ONLY])
    stored = bentoml.models.get(result["tag"])
    checkpoint = torch.load(stored.path_of("model.pt"), weights_only=True)
    for member in checkpoint["members"]:
        assert member["config"]["hidden"] == [8] and member["config"]["log_inputs"] is True
        assert member["config"]["n_features"] == len(MODEL_INPUTS)
        assert not torch.allclose(member["state_dict"]["mean"][:11], torch.zeros(len(FEATURE_NAMES)))
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

    argv = [*TINY_NET, "--members", "3", "--no-log-inputs", "--loss", "huber", *RED_ONLY]
    stored = bentoml.models.get(torch_model.main(argv)["tag"])
    ensemble = load_net(torch.load(stored.path_of("model.pt"), weights_only=True))
    assert isinstance(ensemble, WineEnsemble) and len(ensemble.members) == 3
    members = [m for m in ensemble.members if isinstance(m, WineNet)]
    assert [m.config["log_inputs"] for m in members] == [False] * 3
    rows = split_wines(load_wines(RED), 0.2, 3).x_all[:200]
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
    first = json.loads(run_cli("-m", "train.sklearn_model", "--estimator", "ridge", *RED_ONLY, env=env).stdout)
    assert read_pins(pins) == {"sklearn": first["tag"]} and first["pinned"] is True
    run_cli("-m", "train.sklearn_model", "--estimator", "ridge", "--no-pin", *RED_ONLY, env=env)
    assert read_pins(pins) == {"sklearn": first["tag"]}


def test_a_broken_data_file_stops_training_with_one_line(tmp_path: Path) -> None:
    """Training on a file with a bad cell exits non-zero naming the file, line and column."""
    bad = tmp_path / "bad-red.csv"
    lines = RED.read_text().splitlines()
    lines[3] = lines[3].replace("3.26", "x", 1)
    bad.write_text("\n".join(lines))
    done = run_cli("-m", "train.sklearn_model", "--no-pin", "--data", str(bad), check=False)
    assert done.returncode != 0
    assert done.stderr.strip() == f"error: {bad}: line 4, column 'pH': non-numeric value 'x'"


def test_training_on_the_white_file_records_it() -> None:
    """--data takes the semicolon white file alone: the card names it, and has a white section only."""
    result = sklearn_model.main(["--no-pin", "--estimator", "ridge", "--data", str(WHITE)])
    card = read_card("sklearn", bentoml.models.get(result["tag"]))
    assert [(f.file, f.rows, f.types) for f in card.data.files] == [("winequality-white.csv", 4898, {"white": 4898})]
    assert list(card.types) == ["white"] and card.types["white"].rows.rows_unique == 3961


def test_data_takes_a_file_with_a_type_column_or_a_typed_one(tmp_path: Path) -> None:
    """A combined file with a `type` column trains on both types; a file whose name tells no type trains as --type
    says, and a red-only model flags a white wine's type."""
    combined = tmp_path / "wines.csv"
    frames = [load_wines(path).assign(type=name) for path, name in ((RED, "red"), (WHITE, "white"))]
    pd.concat(frames).to_csv(combined, index=False)
    typed = sklearn_model.main(["--no-pin", "--estimator", "ridge", "--data", str(combined)])
    card = read_card("sklearn", bentoml.models.get(typed["tag"]))
    assert card.data.files[0].types == {"red": 1599, "white": 4898} and list(card.types) == ["red", "white"]
    cellar = tmp_path / "cellar.csv"
    cellar.write_text(RED.read_text())
    refused = run_cli("-m", "train.sklearn_model", "--no-pin", "--data", str(cellar), check=False)
    assert refused.returncode != 0 and "give --type red or --type white" in refused.stderr
    tag = sklearn_model.main(["--no-pin", "--estimator", "ridge", "--data", str(cellar), "--type", "red"])["tag"]
    red_only = served("sklearn", tag, "onnx")
    assert list(red_only.card.types) == ["red"] and red_only.types["white"] is red_only.types["red"]
    row = load_wines(RED)[list(FEATURE_NAMES)].to_numpy()[:1]
    assert red_only.outside_training_range(row, np.array([True])) == [["type"]]
    assert red_only.outside_training_range(row, np.array([False])) == [[]]


def test_a_model_with_other_features_is_refused_for_serving() -> None:
    """A stored model whose inputs differ from MODEL_INPUTS cannot be served; the error names the fix."""
    with bentoml.models.create("wine_quality_sklearn", metadata={"features": ["alcohol"]}) as m:
        pass
    with pytest.raises(ModelStoreError, match=r"retrain with `python -m train\.sklearn_model`"):
        read_card("sklearn", bentoml.models.get(m.tag))


def test_a_model_of_the_11_features_is_refused_naming_the_retraining_command() -> None:
    """A model saved before the type was an input (the 11 features only) is refused, naming the inputs it lacks and
    the command that retrains it."""
    with bentoml.models.create("wine_quality_torch", metadata={"features": list(FEATURE_NAMES), "kind": "torch"}) as m:
        pass
    expected = (
        r"takes inputs \[.*'alcohol'\], not the service's \[.*'alcohol', 'white'\] .*"
        r"retrain with `python -m train\.torch_model`"
    )
    with pytest.raises(ModelStoreError, match=expected):
        read_card("torch", bentoml.models.get(m.tag))


def test_a_model_saved_by_older_training_code_is_refused_naming_the_fix() -> None:
    """A card without the fields serving needs (a model from before the ONNX form) is refused, not half-served."""
    with bentoml.models.create("wine_quality_torch", metadata={"features": list(MODEL_INPUTS), "kind": "torch"}) as m:
        pass
    with pytest.raises(ModelStoreError, match=r"saved by an older version of the training code .* retrain with `pyt"):
        read_card("torch", bentoml.models.get(m.tag))


def test_intervals_hold_their_coverage_on_held_out_rows() -> None:
    """Each type's 90 % interval, calibrated on its out-of-fold predictions, covers 87-97 % of its held-out grades
    (grade by grade calibration covers the common grades beyond the level); wider levels, wider intervals."""
    result = sklearn_model.main(["--no-pin", "--param", "n_estimators=50"])
    card = read_card("sklearn", bentoml.models.get(result["tag"]))
    for section in card.types.values():
        widths = section.interval.half_width
        assert widths["0.8"] < widths["0.9"] < widths["0.95"]
        assert 0.87 <= section.metrics.coverage["0.9"] <= 0.97
        assert section.metrics.coverage["0.8"] < section.metrics.coverage["0.95"]
        assert section.metrics.width["0.8"] < section.metrics.width["0.9"] < section.metrics.width["0.95"]


def test_a_served_model_needs_an_interval_at_the_served_coverage() -> None:
    """Serving at a coverage the model was not calibrated for is refused, naming the levels it has."""
    tag = sklearn_model.main(["--no-pin", "--estimator", "ridge", *RED_ONLY])["tag"]
    settings = Settings(models=ModelSettings(tags={"sklearn": tag}, interval_coverage=0.95))
    loaded = ServedModel.load("sklearn", settings)
    assert loaded.types["red"].half_width == loaded.card.types["red"].interval.half_width["0.95"]
    with pytest.raises(ModelStoreError, match=r"no prediction interval calibrated for coverage 0.99 for red wines"):
        ServedModel.load("sklearn", Settings(models=ModelSettings(tags={"sklearn": tag}, interval_coverage=0.99)))
