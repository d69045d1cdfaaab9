"""Held-out regression metrics, named as the paper and the seed name them."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error


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
