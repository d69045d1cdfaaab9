"""Repeated K-fold cross-validation and conformal prediction intervals, one protocol for every model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sklearn.model_selection import RepeatedKFold

from train.metrics import regression_metrics
from wine_quality.card import INTERVAL_LEVELS, GradeRanges, level_key
from wine_quality.intervals import spans


class Regressor(Protocol):
    """Anything with scikit-learn's fit/predict."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> Any: ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class CrossValidation:
    """Per-fold metrics and the out-of-fold predictions of a repeated K-fold run."""

    folds: int
    repeats: int
    per_fold: list[dict[str, float]]
    predicted: np.ndarray  # every row's prediction in every repeat, each from a model that did not see it
    truth: np.ndarray  # the true grade of each of those predictions
    rows: np.ndarray  # the row each of those predictions is of
    fold: np.ndarray  # the fold (over all repeats) that held that row out

    def of(self, rows: np.ndarray) -> CrossValidation:
        """The same run scored on some rows only (a mask over the rows): each fold's metrics on those of its rows."""
        keep = rows[self.rows]
        fold, predicted, truth = self.fold[keep], self.predicted[keep], self.truth[keep]
        per_fold = [regression_metrics(truth[fold == i], predicted[fold == i]) for i in range(len(self.per_fold))]
        return CrossValidation(self.folds, self.repeats, per_fold, predicted, truth, self.rows[keep], fold)

    @property
    def residuals(self) -> np.ndarray:
        """|y - prediction| of every out-of-fold prediction."""
        return np.asarray(np.abs(self.truth - self.predicted), dtype=np.float64)

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean and standard deviation of each metric over the folds of all repeats."""
        names = self.per_fold[0]
        return {
            name: {
                "mean": float(np.mean([m[name] for m in self.per_fold])),
                "std": float(np.std([m[name] for m in self.per_fold], ddof=1)) if len(self.per_fold) > 1 else 0.0,
            }
            for name in names
        }


def cross_validate(
    make_model: Callable[[int], Regressor], x: np.ndarray, y: np.ndarray, folds: int, repeats: int, seed: int
) -> CrossValidation:
    """Fit a fresh model (seeded per fold) on each training fold and score it on the fold it did not see."""
    per_fold, predictions, tests = [], [], []
    splitter = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    for i, (train, test) in enumerate(splitter.split(x)):
        model = make_model(seed + i)
        model.fit(x[train], y[train])
        predicted = np.asarray(model.predict(x[test]), dtype=np.float64)
        per_fold.append(regression_metrics(y[test], predicted))
        predictions.append(predicted)
        tests.append(test)
    rows = np.concatenate(tests)
    fold = np.repeat(np.arange(len(tests)), [len(t) for t in tests])
    truth = np.asarray(y[rows], dtype=np.float64)
    return CrossValidation(folds, repeats, per_fold, np.concatenate(predictions), truth, rows, fold)


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The split-conformal quantile: the ceil((n + 1) * level)-th smallest score (the largest when n is too small)."""
    ordered = np.sort(scores)
    n = len(ordered)
    return float(ordered[min(n - 1, int(np.ceil((n + 1) * level)) - 1)])


def conformal_half_widths(residuals: np.ndarray, levels: tuple[float, ...] = INTERVAL_LEVELS) -> dict[str, float]:
    """Half-width of the interval prediction ± q that covers each level, from out-of-fold absolute residuals."""
    return {level_key(level): conformal_quantile(residuals, level) for level in levels}


def share_covered(y: np.ndarray, predicted: np.ndarray, half_width: float) -> float:
    """Share of true grades inside prediction ± half_width."""
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(predicted)) <= half_width))


def share_spanned(y: np.ndarray, predicted: np.ndarray, ranges: GradeRanges) -> tuple[float, float]:
    """Share of true grades inside the grade-by-grade intervals, and the intervals' mean width."""
    low, high = spans(np.asarray(predicted, dtype=np.float64), ranges)
    return float(np.mean((low <= y) & (y <= high))), float(np.mean(high - low))
