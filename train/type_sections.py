"""Each type's section of a model card: its rows, figures, intervals, training ranges and drift reference."""

from __future__ import annotations

import numpy as np

from train.crossval import CrossValidation, conformal_half_widths, share_spanned
from train.data import Split, is_type
from train.grade_calibration import grade_ranges
from train.metrics import regression_metrics
from wine_quality.card import (
    CrossValidatedMetrics,
    GradeRanges,
    HeldOutMetrics,
    IntervalCalibration,
    ProbabilityFigures,
    TypeCard,
    TypeRows,
)
from wine_quality.drift import drift_reference
from wine_quality.per_type import FEATURES
from wine_quality.schema import FEATURE_NAMES, WineType

INTERVAL_METHOD = (
    "label-conditional cross-conformal, per wine type: for each grade, the range of out-of-fold predictions of the "
    "training rows of that type and grade in a {folds}-fold CV ({repeats} repeat(s)) at which they are covered at "
    "the level once spanned, tails cut for the narrowest intervals (train.grade_calibration); a wine's interval "
    "spans the grades whose range holds its prediction"
)


def _held_out(y: np.ndarray, predicted: np.ndarray, by_grade: dict[str, GradeRanges]) -> HeldOutMetrics:
    """The held-out figures, with the coverage and mean width of the served intervals at each level."""
    measured = {level: share_spanned(y, predicted, ranges) for level, ranges in by_grade.items()}
    coverage = {level: share for level, (share, _) in measured.items()}
    width = {level: mean_width for level, (_, mean_width) in measured.items()}
    return HeldOutMetrics(**regression_metrics(y, predicted), coverage=coverage, width=width)


def type_card(
    wine_type: WineType,
    split: Split,
    cv: CrossValidation,
    held_out: np.ndarray,
    fitted: np.ndarray,
    probabilities: ProbabilityFigures | None,
) -> TypeCard:
    """What the card says about one type: its rows' figures, intervals, ranges and drift reference.

    Its intervals are calibrated on the out-of-fold predictions of its own training rows, so a red wine's interval
    says how well red wines are graded, whatever the model saw of white ones.
    """
    train, test = is_type(split.x_train, wine_type), is_type(split.x_test, wine_type)
    own_cv = cv.of(train)
    by_grade = grade_ranges(own_cv.predicted, own_cv.truth, repeats=cv.repeats)
    seen = fitted[is_type(fitted, wine_type)][:, FEATURES]
    return TypeCard(
        rows=TypeRows(
            rows=split.rows_raw[wine_type],
            rows_unique=int(train.sum() + test.sum()),
            rows_train=int(train.sum()),
            rows_test=int(test.sum()),
            rows_fitted=len(seen),
        ),
        metrics=_held_out(split.y_test[test], held_out[test], by_grade),
        cv_metrics=CrossValidatedMetrics(folds=cv.folds, repeats=cv.repeats, **own_cv.summary()),
        interval=IntervalCalibration(
            method=INTERVAL_METHOD.format(folds=cv.folds, repeats=cv.repeats),
            half_width=conformal_half_widths(own_cv.residuals),
            by_grade=by_grade,
        ),
        feature_ranges={
            name: (float(lo), float(hi))
            for name, lo, hi in zip(FEATURE_NAMES, seen.min(axis=0), seen.max(axis=0), strict=True)
        },
        reference=drift_reference(seen, own_cv.predicted),
        probabilities=probabilities,
    )
