"""Training saves the drift reference in the card: bins per feature of the rows the saved model saw, the out-of-fold
grades'."""

from __future__ import annotations

import bentoml
import numpy as np

from train import sklearn_model
from train.data import RED, load_wines, split_wines
from wine_quality.drift import bin_counts
from wine_quality.schema import FEATURE_NAMES
from wine_quality.store import read_card


def test_the_card_carries_the_training_distributions() -> None:
    """Each feature's bins hold the shares of the rows the served model was fitted on (all of them, after the final
    fit); the grades' bins come from every out-of-fold grade of the cross-validation on the training rows."""
    result = sklearn_model.main(["--no-pin", "--estimator", "linear", "--seed", "3", "--cv-repeats", "2"])
    card = read_card("sklearn", bentoml.models.get(result["tag"]))
    split = split_wines(load_wines(RED), 0.2, 3)
    fitted = np.concatenate([split.x_train, split.x_test])
    reference = card.reference
    assert reference.rows == len(fitted) == card.data.rows_fitted
    assert set(reference.features) == set(FEATURE_NAMES)
    for i, name in enumerate(FEATURE_NAMES):
        dist = reference.features[name]
        counts = bin_counts(np.array(dist.edges), fitted[:, i])
        assert np.allclose(counts / counts.sum(), dist.shares), name
        assert 5 <= len(dist.shares) <= 10, name  # deciles, fewer where values tie
        assert dist.quantiles["0.5"] == np.quantile(fitted[:, i], 0.5), name
    assert reference.predictions == 2 * len(split.x_train)  # every training row, once per repeat
    grades = reference.prediction
    assert len(grades.shares) == 10 and 4.0 < grades.edges[0] < grades.edges[-1] < 7.5
    assert abs(grades.quantiles["0.5"] - float(np.median(split.y_train))) < 0.6
