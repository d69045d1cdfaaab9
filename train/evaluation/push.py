"""Issue 14's accuracy push: the models tried beside the training scripts' own, built for the nested protocol.

Each is a scikit-learn estimator, so that the evaluation fits it on outer (and inner) training folds only:
chemistry-aware features inside the Pipeline, an ordinal formulation and stacking (the network variants are
NetRegressor settings: train/evaluation/candidates.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, StackingRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVR

from train.network import NetRegressor
from wine_quality.schema import FEATURE_NAMES

_AT = {name: i for i, name in enumerate(FEATURE_NAMES)}
SO2_PKA = 1.81  # first dissociation constant of sulfurous acid: the molecular (antimicrobial) share of free SO2


def chemistry(x: np.ndarray) -> np.ndarray:
    """The 11 measurements and what a winemaker derives from them: bound SO2 (total - free), molecular SO2
    (free / (1 + 10^(pH - 1.81))), fixed / volatile acidity, citric / fixed acidity, and total acidity."""
    x = np.asarray(x, dtype=np.float64)
    fixed, volatile, citric = x[:, _AT["fixed acidity"]], x[:, _AT["volatile acidity"]], x[:, _AT["citric acid"]]
    free, total, ph = x[:, _AT["free sulfur dioxide"]], x[:, _AT["total sulfur dioxide"]], x[:, _AT["pH"]]
    derived = [
        total - free,
        free / (1.0 + 10.0 ** (ph - SO2_PKA)),
        fixed / np.maximum(volatile, 0.01),
        citric / np.maximum(fixed, 0.1),
        fixed + volatile + citric,
    ]
    return np.column_stack([x, *derived])


def extra_trees_chemistry(seed: int, max_features: float = 0.67, n_estimators: int = 200) -> Pipeline:
    """Extra trees on the measurements plus the chemistry features."""
    forest = ExtraTreesRegressor(n_estimators=n_estimators, max_features=max_features, random_state=seed, n_jobs=1)
    return Pipeline([("chemistry", FunctionTransformer(chemistry)), ("scale", StandardScaler()), ("model", forest)])


class OrdinalForest(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Frank and Hall's ordinal regression: one forest per threshold k estimates P(grade > k); the prediction is
    the lowest grade plus the sum of those probabilities (the expected grade, with the order of grades kept)."""

    def __init__(self, n_estimators: int = 100, min_samples_leaf: int = 3, random_state: int = 42) -> None:
        self.n_estimators, self.min_samples_leaf, self.random_state = n_estimators, min_samples_leaf, random_state

    def fit(self, x: np.ndarray, y: np.ndarray) -> OrdinalForest:
        grades = np.unique(y)
        self.low_, self.forests_ = float(grades[0]), []
        for i, k in enumerate(grades[:-1]):
            forest = ExtraTreesClassifier(
                n_estimators=self.n_estimators,
                min_samples_leaf=self.min_samples_leaf,
                max_features=0.67,
                random_state=self.random_state + i,
                n_jobs=1,
            )
            self.forests_.append((float(grades[i + 1] - k), forest.fit(x, y > k)))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        above = [step * f.predict_proba(x)[:, list(f.classes_).index(True)] for step, f in self.forests_]
        return np.asarray(self.low_ + np.sum(above, axis=0), dtype=np.float64)


def stacking(seed: int, net: dict[str, Any]) -> StackingRegressor:
    """Extra trees, the SVR and the network (NetRegressor with these settings), combined by a linear regression with
    non-negative weights on their 3-fold out-of-fold predictions."""
    forest = Pipeline(
        [("scale", StandardScaler()), ("model", ExtraTreesRegressor(200, max_features=0.67, random_state=seed))]
    )
    svr = Pipeline([("scale", StandardScaler()), ("model", SVR(C=1.0, epsilon=0.05, gamma=0.1))])
    return StackingRegressor(
        [("extra_trees", forest), ("svr", svr), ("net", NetRegressor(**net, random_state=seed))],
        final_estimator=LinearRegression(positive=True),
        cv=3,
        n_jobs=1,
    )
