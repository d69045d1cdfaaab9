"""Grade-by-grade prediction intervals: a wine's interval spans the grades its prediction is plausible for."""

from __future__ import annotations

import numpy as np

from wine_quality.card import GradeRanges


def spans(quality: np.ndarray, ranges: GradeRanges) -> tuple[np.ndarray, np.ndarray]:
    """Low and high ends of each prediction's interval: from the lowest to the highest grade whose range holds the
    prediction, stretched to hold the prediction itself (which adds no grade, so no coverage)."""
    grades = np.array([float(g) for g in ranges])
    bounds = np.array(list(ranges.values()), dtype=np.float64).reshape(-1, 2)
    inside = (quality[:, None] >= bounds[None, :, 0]) & (quality[:, None] <= bounds[None, :, 1])
    low = np.where(inside, grades[None, :], np.inf).min(axis=1)
    high = np.where(inside, grades[None, :], -np.inf).max(axis=1)
    return np.minimum(low, quality), np.maximum(high, quality)
