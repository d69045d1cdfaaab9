"""Grade-by-grade prediction intervals: a wine's interval spans the grades its prediction is plausible for."""

from __future__ import annotations

import numpy as np

from wine_quality.card import GradeRanges


def span(quality: np.ndarray, grades: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Low and high ends of each prediction's interval: from the lowest to the highest grade whose range
    (bounds[i] = low, high of grades[i]) holds the prediction, stretched to hold the prediction itself (which adds
    no grade, so no coverage)."""
    inside = (quality[:, None] >= bounds[None, :, 0]) & (quality[:, None] <= bounds[None, :, 1])
    low = np.where(inside, grades[None, :], np.inf).min(axis=1)
    high = np.where(inside, grades[None, :], -np.inf).max(axis=1)
    return np.minimum(low, quality), np.maximum(high, quality)


class GradeSpans:
    """The grade-by-grade ranges of one level as arrays, made once (at start-up when serving)."""

    def __init__(self, ranges: GradeRanges) -> None:
        self.grades = np.array([float(g) for g in ranges])
        self.bounds = np.array(list(ranges.values()), dtype=np.float64).reshape(-1, 2)
        self._listed = list(zip(self.grades.tolist(), *self.bounds.T.tolist(), strict=True))

    def __call__(self, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each prediction's interval (span)."""
        if len(quality) == 1:  # one wine, as most requests: a few Python comparisons, not ten array operations
            q = float(quality[0])
            held = [grade for grade, low, high in self._listed if low <= q <= high]
            return np.array([min([*held, q])]), np.array([max([*held, q])])
        return span(quality, self.grades, self.bounds)


def spans(quality: np.ndarray, ranges: GradeRanges) -> tuple[np.ndarray, np.ndarray]:
    """Each prediction's interval under these ranges (GradeSpans, for one call)."""
    return GradeSpans(ranges)(quality)
