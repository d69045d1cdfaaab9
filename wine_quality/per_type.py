"""One model per wine type behind one estimator: it takes rows of MODEL_INPUTS and answers each with its type's model.

Shared code, not a training script's: the native runtime unpickles it. Its ONNX form (train/onnx_export.py) computes
each type's model and keeps, row by row, the answer of the row's type.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone

from wine_quality.schema import MODEL_INPUTS, TYPES, WHITE_INPUT, WineType

WHITE = MODEL_INPUTS.index(WHITE_INPUT)
FEATURES = slice(0, WHITE)  # a type's own model takes the features only: within a type, `white` is constant


def white_rows(x: np.ndarray) -> np.ndarray:
    """Which rows of MODEL_INPUTS are white wines (the rest are red)."""
    return np.asarray(x[:, WHITE] > 0.5)


class PerType(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """A copy of `base` fitted on each type's rows; a row is answered by its type's copy.

    A type the fitted rows lacked is answered by the other type's model (the training ranges of its card say so).
    With a classifier as base, `predict_proba` has a column for every grade either model saw (`classes_`), zero
    where a type's model never saw that grade.
    """

    def __init__(self, base: Any) -> None:
        self.base = base

    def fit(self, x: np.ndarray, y: np.ndarray) -> PerType:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
        white = white_rows(x)
        self.models_: dict[WineType, Any] = {}
        for wine_type, rows in zip(TYPES, (~white, white), strict=True):
            if rows.any():
                self.models_[wine_type] = clone(self.base).fit(x[rows, FEATURES], y[rows])
        if all(hasattr(m, "classes_") for m in self.models_.values()):
            self.classes_ = np.unique(np.concatenate([m.classes_ for m in self.models_.values()]))
        self.n_features_in_ = x.shape[1]
        return self

    def model_of(self, wine_type: WineType) -> Any:
        """The model that answers wines of this type."""
        return self.models_.get(wine_type) or next(iter(self.models_.values()))

    def _answer(self, x: np.ndarray, answer: Any, width: tuple[int, ...] = ()) -> np.ndarray:
        """Each row's answer (`answer(model, rows)`, of shape `width` a row) from its type's model."""
        x = np.asarray(x, dtype=np.float64)
        white = white_rows(x)
        out = np.zeros((len(x), *width))
        for wine_type, rows in zip(TYPES, (~white, white), strict=True):
            if rows.any():
                out[rows] = answer(self.model_of(wine_type), x[rows, FEATURES])
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._answer(x, lambda model, rows: np.asarray(model.predict(rows), dtype=np.float64))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Each row's probability of every grade in `classes_`, from its type's model."""

        def aligned(model: Any, rows: np.ndarray) -> np.ndarray:
            out = np.zeros((len(rows), len(self.classes_)))
            out[:, np.searchsorted(self.classes_, model.classes_)] = model.predict_proba(rows)
            return out

        return self._answer(x, aligned, (len(self.classes_),))
