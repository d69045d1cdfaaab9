"""The gate's arithmetic: both models' figures on the same wines, their paired differences, the verdict and the table.

Every figure is a mean over wines of a per-wine quantity (absolute error, within ±0.5, inside the interval, Brier
score), so the challenger and the served model are compared wine by wine: the difference of the means is the mean of
the differences, and its standard error is that of a paired comparison, much smaller than either model's own spread.
"""

from __future__ import annotations

import math

import numpy as np

from wine_quality.card import GateLine, GateVerdict, good_probability, level_key
from wine_quality.schema import WineType

MIN_WINES = 100  # at the 0.9 level, coverage on 100 wines has a standard error of 3 points: the coverage rule's slack
COVERAGE_SLACK = 0.03
NAMES = {"mae": "MAE", "within_0_5": "within ±0.5", "brier": "Brier", "brier_good": "Brier (good)"}


def rule(task: str, level: float, min_wines: int) -> str:
    """The decision rule, in words, as the table and the card state it."""
    if task == "classification":
        what = "a Brier score not more than one paired standard error above the served model's"
    else:
        what = (
            "an MAE not more than one paired standard error above the served model's, and the "
            f"{level_key(level)} interval covering at least {level - COVERAGE_SLACK:.2f} of the grades (3 points under "
            f"the level at most) and not above {level + COVERAGE_SLACK:.2f} by more than two sampling standard errors "
            "of the coverage"
        )
    return f"on every wine type with {min_wines} wines or more (and at least one such type): {what}"


def paired(metric: str, challenger: np.ndarray, served: np.ndarray) -> GateLine:
    """Both models' means of a per-wine quantity, and the mean of their differences with its standard error."""
    difference = np.asarray(challenger, dtype=np.float64) - np.asarray(served, dtype=np.float64)
    se = float(np.std(difference, ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else 0.0
    return GateLine(
        metric=metric,
        challenger=float(np.mean(challenger)),
        served=float(np.mean(served)),
        difference=float(np.mean(difference)),
        se=se,
    )


def regression_lines(
    y: np.ndarray, grades: tuple[np.ndarray, np.ndarray], intervals: tuple[tuple[np.ndarray, np.ndarray], ...]
) -> list[GateLine]:
    """MAE, within ±0.5 and interval coverage of (challenger, served) grades and (low, high) intervals."""
    errors = [np.abs(g - y) for g in grades]
    covered = [((low <= y) & (y <= high)).astype(np.float64) for low, high in intervals]
    return [
        paired("mae", *errors),
        paired("within_0_5", *((e <= 0.5).astype(np.float64) for e in errors)),
        paired("coverage", *covered),
    ]


def brier_per_wine(y: np.ndarray, probabilities: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each wine's multi-class Brier score; a grade the model has no column for costs its missing (0 - 1)²."""
    onehot = (np.asarray(y).astype(int)[:, None] == np.asarray(classes).astype(int)[None, :]).astype(np.float64)
    return np.asarray(np.sum((probabilities - onehot) ** 2, axis=1) + 1.0 - onehot.sum(axis=1), dtype=np.float64)


def classification_lines(
    y: np.ndarray, answers: tuple[tuple[np.ndarray, np.ndarray], ...], good: int
) -> list[GateLine]:
    """Brier score, and that of a good wine, of (challenger, served) (probabilities, classes), per wine."""
    good_brier = [(good_probability(p, c, good) - (y >= good)) ** 2 for p, c in answers]
    return [
        paired("brier", *(brier_per_wine(y, p, c) for p, c in answers)),
        paired("brier_good", *good_brier),
    ]


def verdict(lines: list[GateLine], wines: int, min_wines: int, level: float) -> GateVerdict:
    """Whether the challenger passes on one type's wines: not worse than the served model by more than the paired
    standard error (MAE, or a classifier's Brier score) and, for a regressor, its coverage not more than 3 points
    under the level, nor clearly over it (an interval that covers far more than it says is too wide to be told)."""
    if wines < min_wines:
        reason = f"{wines} wines, fewer than {min_wines}: not decided"
        return GateVerdict(wines=wines, decided=False, lines=lines, reasons=[reason])
    reasons = []
    by_metric = {line.metric: line for line in lines}
    main = by_metric.get("mae") or by_metric["brier"]
    if main.difference > main.se:
        reasons.append(
            f"{NAMES[main.metric]} {main.challenger:.3f} is {main.difference:.3f} above the served model's "
            f"{main.served:.3f}, more than the paired standard error {main.se:.3f}"
        )
    coverage = by_metric.get("coverage")
    # Under-coverage breaks the interval's promise: 3 points at most. Over-coverage errs on the safe side and, on a
    # few hundred wines, is mostly chance (at 200 wines the coverage's own standard error is 2 points): it fails
    # only past 3 points by more than two of those errors, an interval clearly wider than it says.
    noise = 2 * math.sqrt(level * (1 - level) / wines)
    if coverage is not None and coverage.challenger < level - COVERAGE_SLACK - 1e-9:
        reasons.append(
            f"its {level_key(level)} interval covers {coverage.challenger:.3f} of the grades, more than 3 points "
            "under the level"
        )
    elif coverage is not None and coverage.challenger > level + COVERAGE_SLACK + noise + 1e-9:
        reasons.append(
            f"its {level_key(level)} interval covers {coverage.challenger:.3f} of the grades, more than 3 points "
            f"over the level and {noise:.3f} (two sampling standard errors) beyond"
        )
    return GateVerdict(wines=wines, decided=True, passed=not reasons, lines=lines, reasons=reasons)


def passes(verdicts: dict[WineType, GateVerdict]) -> bool:
    """Whether the challenger passes the gate: on every decided type, and at least one type is decided."""
    decided = [v for v in verdicts.values() if v.decided]
    return bool(decided) and all(v.passed for v in decided)


def table(verdicts: dict[WineType, GateVerdict], level: float) -> str:
    """The figures side by side, a line per type and metric."""
    head = f"{'type':<6} {'wines':>5}  {'metric':<14} {'challenger':>10} {'served':>8} {'difference':>10} {'± SE':>7}"
    lines = [head, "-" * len(head)]
    for wine_type, found in verdicts.items():
        for i, line in enumerate(found.lines):
            name = NAMES.get(line.metric, f"coverage {level_key(level)}")
            first = f"{wine_type:<6} {found.wines:>5}" if i == 0 else " " * 12
            lines.append(
                f"{first}  {name:<14} {line.challenger:>10.3f} {line.served:>8.3f} {line.difference:>+10.3f} "
                f"{line.se:>7.3f}"
            )
        if not found.decided:
            lines.append(f"{'':14}{found.reasons[0]}")
            continue
        lines.append(f"{'':14}{'passes' if found.passed else 'fails'}")
        lines += [f"{'':16}- {reason}" for reason in found.reasons]
    return "\n".join(lines)
