"""The final fit: figures from models that did not see the scored rows, the saved model refitted on every row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bentoml
import joblib
import numpy as np
import pytest

from train import sklearn_model
from train.data import RED, load_wines, split_wines
from wine_quality.card import TypeCard
from wine_quality.per_type import PerType
from wine_quality.store import read_card

SEED = 3
TREES = ["--no-pin", "--param", "n_estimators=10", "--cv-repeats", "1", "--seed", str(SEED), "--data", str(RED)]


def _fitted(x: np.ndarray, y: np.ndarray) -> Any:
    """The script's model in its default layout, fitted on these rows as the script fits it."""
    pipeline = sklearn_model.build_pipeline("extra_trees", SEED, {"n_estimators": 10})
    return (PerType(pipeline) if sklearn_model.LAYOUT == "per_type" else pipeline).fit(x, y)


def _saved(tag: str) -> tuple[object, np.ndarray]:
    stored = bentoml.models.get(tag)
    pipeline = joblib.load(Path(stored.path_of("model.joblib")))
    split = split_wines(load_wines(RED), 0.2, SEED)
    return pipeline, split.x_test


@pytest.fixture(scope="module")
def runs() -> dict[str, str]:
    """One run with the default final fit and one with --holdout-fit, same settings and seed."""
    return {
        "all": sklearn_model.main(TREES)["tag"],
        "train": sklearn_model.main([*TREES, "--holdout-fit"])["tag"],
    }


def test_the_saved_model_is_fitted_on_every_unique_row(runs: dict[str, str]) -> None:
    """By default the saved model equals one fitted on all rows (training then held-out) and differs from the
    held-out model on the held-out rows, which it has now seen."""
    split = split_wines(load_wines(RED), 0.2, SEED)
    every_x = np.concatenate([split.x_train, split.x_test])
    every_y = np.concatenate([split.y_train, split.y_test])
    on_all, on_train = _fitted(every_x, every_y), _fitted(split.x_train, split.y_train)
    saved, x_test = _saved(runs["all"])
    predicted = saved.predict(x_test)  # type: ignore[attr-defined]
    assert np.array_equal(predicted, on_all.predict(x_test))
    assert not np.allclose(predicted, on_train.predict(x_test))
    # having seen them, it is closer to the held-out grades than the model that did not
    assert np.mean(np.abs(predicted - split.y_test)) < np.mean(np.abs(on_train.predict(x_test) - split.y_test))


def test_holdout_fit_saves_the_model_the_held_out_rows_scored(runs: dict[str, str]) -> None:
    """With --holdout-fit the saved model is the one fitted on the training rows only."""
    split = split_wines(load_wines(RED), 0.2, SEED)
    on_train = _fitted(split.x_train, split.y_train)
    saved, x_test = _saved(runs["train"])
    assert np.array_equal(saved.predict(x_test), on_train.predict(x_test))  # type: ignore[attr-defined]


def test_the_card_says_which_rows_the_model_saw_and_where_figures_come_from(runs: dict[str, str]) -> None:
    """Row counts and fitted_on in the card; the held-out figures are the same whichever model was saved, since
    they are always those of the model fitted on the training rows; ranges are of the rows the model saw."""
    cards = {how: read_card("sklearn", bentoml.models.get(tag)) for how, tag in runs.items()}
    every, red = cards["all"].data, cards["all"].types["red"]
    assert (every.fitted_on, red.rows.rows_fitted, red.rows.rows_train, red.rows.rows_test) == ("all", 1359, 1087, 272)
    assert (cards["train"].data.fitted_on, cards["train"].types["red"].rows.rows_fitted) == ("train", 1087)
    held_out = cards["train"].types["red"]
    assert red.metrics == held_out.metrics
    assert red.cv_metrics == held_out.cv_metrics
    assert red.interval == held_out.interval
    assert "fitted on the training rows only" in str(TypeCard.model_fields["metrics"].description)
    x = load_wines(RED).drop_duplicates()["total sulfur dioxide"]
    assert red.feature_ranges["total sulfur dioxide"] == (x.min(), x.max())
    # the ONNX form checked is the saved model's, on every unique row
    assert cards["all"].onnx.rows_checked == 1359 and cards["all"].onnx.max_abs_diff <= cards["all"].onnx.tolerance
