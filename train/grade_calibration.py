"""Grade-by-grade interval calibration: the range of predictions for which each grade belongs in an interval.

Label-conditional (Mondrian) conformal prediction, fitted to how the intervals are built: a wine's interval spans
every grade from the lowest to the highest whose range holds its prediction (wine_quality.intervals.span), so a grade
is also covered where the ranges of grades on both sides of it hold the prediction. Each grade's range is therefore
chosen with the others in view: the smallest part of its own wines' out-of-fold predictions at which those wines,
spanned, are covered at the level, with its two tails cut in the proportion that gives the narrowest intervals over
all wines (cutting a rare grade's tail on the side of the common grades keeps it from spanning over them). A grade
ends up covered as often as the level says, rather than more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wine_quality.card import INTERVAL_LEVELS, GradeRanges, level_key
from wine_quality.intervals import span

SPLITS = (0.5, 0.0, 0.25, 0.75, 1.0)  # share of a range's cut taken from its low tail (central first: kept on ties)
SWEEPS = 3  # passes over the grades: a grade's range moves its neighbours' coverage
STEPS = 16  # bisection steps on a range's kept share (2**-16: finer than a wine of the largest grade)


class GradeCalibration:
    """Out-of-fold predictions grouped by true grade, and the coverage each grade's wines aim at per level."""

    def __init__(self, predicted: np.ndarray, truth: np.ndarray, repeats: int) -> None:
        self.grades = np.unique(truth)
        self.every = np.asarray(predicted, dtype=np.float64)
        self.by_grade = [self.every[truth == g] for g in self.grades]
        self.wines = [max(1, len(p) // repeats) for p in self.by_grade]

    def aim(self, k: int, level: float) -> float:
        """The share of grade k's n wines at rank round(level * (n + 1)): a new wine of that grade is then covered
        with probability about the level (the conformal rank, not rounded up)."""
        n = self.wines[k]
        return min(1.0, round(level * (n + 1)) / n)

    def covered(self, k: int, bounds: np.ndarray) -> float:
        low, high = span(self.by_grade[k], self.grades, bounds)
        return float(np.mean((low <= self.grades[k]) & (self.grades[k] <= high)))

    def width(self, bounds: np.ndarray) -> float:
        low, high = span(self.every, self.grades, bounds)
        return float(np.mean(high - low))

    def cut(self, k: int, kept: float, split: float, inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
        """Grade k's range keeping that share of its predictions, the cut split between the tails, holding its range
        at a lower level (inner) and inside its range at a higher one (outer)."""
        lo, hi = np.quantile(self.by_grade[k], [split * (1 - kept), 1 - (1 - split) * (1 - kept)])
        return np.array([min(max(lo, outer[0]), inner[0]), max(min(hi, outer[1]), inner[1])])

    def least(self, k: int, bounds: np.ndarray, level: float, split: float, nest: Nest) -> np.ndarray:
        """Grade k's smallest range with this split that covers its wines at the level (the others' fixed)."""
        trial = bounds.copy()

        def enough(kept: float) -> bool:
            trial[k] = self.cut(k, kept, split, nest.inner[k], nest.outer[k])
            return self.covered(k, trial) >= self.aim(k, level)

        if not enough(1.0):  # even its whole range falls short (ties, or a level above): keep the whole range
            return np.array(trial[k])
        lo, hi = 0.0, 1.0
        for _ in range(STEPS):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if enough(mid) else (mid, hi)
        return self.cut(k, hi, split, nest.inner[k], nest.outer[k])

    def level(self, level: float, nest: Nest) -> np.ndarray:
        """Every grade's range at this level, nested between the levels already calibrated."""
        medians = np.array([np.median(p) for p in self.by_grade])
        start = np.clip(medians, nest.outer[:, 0], nest.outer[:, 1])
        bounds = np.where(np.isfinite(nest.inner), nest.inner, np.column_stack([start, start]))
        for _ in range(SWEEPS):
            for k in range(len(self.grades)):
                options = [self.least(k, bounds, level, s, nest) for s in SPLITS]
                widths = [self.width(np.vstack([bounds[:k], [o], bounds[k + 1 :]])) for o in options]
                bounds[k] = options[int(np.argmin(widths))]
        for k in range(len(self.grades)):  # widening a range only adds to the others' coverage: none is left short
            if self.covered(k, bounds) < self.aim(k, level):
                bounds[k] = self.least(k, bounds, level, 0.5, Nest(bounds, nest.outer))
        return bounds


@dataclass(frozen=True)
class Nest:
    """Where a level's ranges must lie, per grade: around `inner` (a lower level's), inside `outer` (a higher's)."""

    inner: np.ndarray
    outer: np.ndarray

    @classmethod
    def free(cls, grades: int) -> Nest:
        return cls(np.tile([np.inf, -np.inf], (grades, 1)), np.tile([-np.inf, np.inf], (grades, 1)))


def grade_ranges(
    predicted: np.ndarray,
    truth: np.ndarray,
    levels: tuple[float, ...] = INTERVAL_LEVELS,
    repeats: int = 1,
    anchor: float = 0.9,
) -> dict[str, GradeRanges]:
    """Per level, each grade's range of predictions, from out-of-fold predictions (`repeats` of each wine).

    The anchor level (the one served by default) is calibrated first, free; the others outwards from it, each
    nested around the level below it and inside the level above it, so a wine's intervals nest.
    """
    calibration = GradeCalibration(predicted, truth, repeats)
    free = Nest.free(len(calibration.grades))
    first = min(levels, key=lambda level: abs(level - anchor))
    found = {first: calibration.level(first, free)}
    for level in sorted(lv for lv in levels if lv > first):
        found[level] = calibration.level(level, Nest(found[max(found)], free.outer))
    for level in sorted((lv for lv in levels if lv < first), reverse=True):
        found[level] = calibration.level(level, Nest(free.inner, found[min(found)]))
    grades = [str(int(g)) for g in calibration.grades]
    return {
        level_key(level): {g: (float(lo), float(hi)) for g, (lo, hi) in zip(grades, found[level], strict=True)}
        for level in levels
    }
