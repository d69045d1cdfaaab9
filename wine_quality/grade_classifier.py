"""The grade classifier: extra trees on the grades, their probabilities recalibrated on out-of-fold predictions.

Shared code, not a training script's: the native runtime unpickles it (it imports scikit-learn, which only the
native runtime and training have). Calibration is Dirichlet calibration (Kull et al., 2019): a multinomial logistic
regression on the logarithms of the forest's out-of-fold probabilities, so that it learns how far to trust each
grade's leaf frequencies from wines the forests did not see. Its ONNX form (train/onnx_export.py) computes the same
in double precision.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

# A floor under the forest's probabilities before their logarithm: a grade no leaf of a wine held is rare, not
# impossible. The calibration learns how rare.
PROBABILITY_FLOOR = 1e-3


class GradeClassifier(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """A probability for each grade seen in fitting (`predict_proba`, columns in `classes_` order).

    `predict` is the expected grade under those probabilities, so that the classifier is cross-validated and given
    conformal intervals by the same code as the regressors.
    """

    def __init__(
        self,
        n_estimators: int = 100,
        max_features: float = 0.67,
        min_samples_leaf: int = 3,
        calibration_folds: int = 5,
        random_state: int = 42,
    ) -> None:
        self.n_estimators, self.max_features, self.min_samples_leaf = n_estimators, max_features, min_samples_leaf
        self.calibration_folds, self.random_state = calibration_folds, random_state

    def _forest(self, seed: int) -> ExtraTreesClassifier:
        return ExtraTreesClassifier(
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            random_state=seed,
            n_jobs=1,
        )

    def _aligned(self, forest: ExtraTreesClassifier, x: np.ndarray) -> np.ndarray:
        """The forest's probabilities with a column for every grade of `classes_` (zero for one it never saw)."""
        out = np.zeros((len(x), len(self.classes_)))
        out[:, np.searchsorted(self.classes_, forest.classes_)] = forest.predict_proba(x)
        return out

    def fit(self, x: np.ndarray, y: np.ndarray) -> GradeClassifier:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y).astype(np.int64)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 3:
            raise ValueError(f"the grade classifier needs at least 3 grades to tell apart, not {self.classes_}")
        out_of_fold = np.zeros((len(x), len(self.classes_)))
        folds = KFold(self.calibration_folds, shuffle=True, random_state=self.random_state)
        for i, (train, test) in enumerate(folds.split(x)):
            forest = self._forest(self.random_state + 1 + i).fit(x[train], y[train])
            out_of_fold[test] = self._aligned(forest, x[test])
        self.calibrator_ = LogisticRegression(max_iter=5000).fit(np.log(out_of_fold + PROBABILITY_FLOOR), y)
        self.forest_ = self._forest(self.random_state).fit(x, y)
        self.n_features_in_ = x.shape[1]
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, one column per grade of `classes_`."""
        raw = self.forest_.predict_proba(np.asarray(x, dtype=np.float64))
        return np.asarray(self.calibrator_.predict_proba(np.log(raw + PROBABILITY_FLOOR)), dtype=np.float64)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The expected grade."""
        return np.asarray(self.predict_proba(x) @ self.classes_.astype(np.float64), dtype=np.float64)
