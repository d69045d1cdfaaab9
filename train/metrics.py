"""Held-out regression metrics, named as the paper and the seed name them."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

from wine_quality.card import good_probability


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """R2, MAE (the paper's MAD), RMSE and the share of predictions within 0.25, 0.5 and 1.0 of the true grade."""
    error = np.abs(np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float))
    return {
        "r2": float(r2_score(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
        "within_0_25": float(np.mean(error <= 0.25)),
        "within_0_5": float(np.mean(error <= 0.5)),
        "within_1_0": float(np.mean(error <= 1.0)),
    }


def probability_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, classes: np.ndarray, good: int
) -> dict[str, float]:
    """Multi-class Brier score, the Brier score of P(grade ≥ good), and the accuracy of the most probable grade.

    A grade outside `classes` counts as a class the probabilities gave nothing to.
    """
    y, classes = np.asarray(y_true).astype(int), np.asarray(classes).astype(int)
    onehot = (y[:, None] == classes[None, :]).astype(float)
    unseen = 1.0 - onehot.sum(axis=1)  # the missing class's (0 - 1)² for a grade the classes lack
    p_good = good_probability(probabilities, classes, good)
    return {
        "brier": float(np.mean(np.sum((probabilities - onehot) ** 2, axis=1) + unseen)),
        "brier_good": float(np.mean((p_good - (y >= good)) ** 2)),
        "accuracy": float(np.mean(classes[np.argmax(probabilities, axis=1)] == y)),
    }


def baseline_probabilities(y_train: np.ndarray, classes: np.ndarray, rows: int) -> dict[str, np.ndarray]:
    """The two baselines of a grade classifier for `rows` wines: certainty of the most common training grade
    ("majority"), and the training grades' frequencies ("prior")."""
    counts = np.array([np.sum(np.asarray(y_train) == c) for c in classes], dtype=float)
    majority = np.zeros(len(classes))
    majority[np.argmax(counts)] = 1.0
    return {"majority": np.tile(majority, (rows, 1)), "prior": np.tile(counts / counts.sum(), (rows, 1))}
