"""Training saves a drift reference per type in the card: bins per feature of that type's rows the saved model saw,
its out-of-fold grades'."""

from __future__ import annotations

import bentoml
import numpy as np

from train import sklearn_model
from train.data import DATA_FILES, is_type, load_files, split_wines
from wine_quality.drift import bin_counts
from wine_quality.schema import FEATURE_NAMES
from wine_quality.store import read_card


def test_the_card_carries_the_training_distributions() -> None:
    """Each feature's bins hold the shares of the rows the served model was fitted on (all of them, after the final
    fit); the grades' bins come from every out-of-fold grade of the cross-validation on the training rows."""
    result = sklearn_model.main(["--no-pin", "--estimator", "linear", "--seed", "3", "--cv-repeats", "2"])
    card = read_card("sklearn", bentoml.models.get(result["tag"]))
    split = split_wines(load_files(DATA_FILES), 0.2, 3)
    fitted = split.x_all[is_type(split.x_all, "red")]
    reference = card.types["red"].reference
    assert reference.rows == len(fitted) == card.types["red"].rows.rows_fitted
    assert set(reference.features) == set(FEATURE_NAMES)
    for i, name in enumerate(FEATURE_NAMES):
        dist = reference.features[name]
        counts = bin_counts(np.array(dist.edges), fitted[:, i])
        assert np.allclose(counts / counts.sum(), dist.shares), name
        assert 5 <= len(dist.shares) <= 10, name  # deciles, fewer where values tie
        assert dist.quantiles["0.5"] == np.quantile(fitted[:, i], 0.5), name
    red_train = is_type(split.x_train, "red")
    assert reference.predictions == 2 * red_train.sum()  # every red training row, once per repeat
    grades = reference.prediction
    assert len(grades.shares) == 10 and 4.0 < grades.edges[0] < grades.edges[-1] < 7.5
    assert abs(grades.quantiles["0.5"] - float(np.median(split.y_train[red_train]))) < 0.6


def test_each_type_has_its_own_reference() -> None:
    """White wines' reference is made of white training rows: a white wine is compared with white wines (drift is
    the distance between them, not between red and white)."""
    result = sklearn_model.main(["--no-pin", "--estimator", "linear", "--seed", "3", "--cv-repeats", "1"])
    card = read_card("sklearn", bentoml.models.get(result["tag"]))
    split = split_wines(load_files(DATA_FILES), 0.2, 3)
    sugar = FEATURE_NAMES.index("residual sugar")
    for wine_type in ("red", "white"):
        fitted = split.x_all[is_type(split.x_all, wine_type)]
        found = card.types[wine_type].reference.features["residual sugar"]
        assert found.quantiles["0.5"] == np.quantile(fitted[:, sugar], 0.5), wine_type
    red, white = (card.types[t].reference.features["residual sugar"].quantiles["0.5"] for t in ("red", "white"))
    assert white > 2 * red
