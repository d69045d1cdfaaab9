"""Nested repeated K-fold cross-validation: an inner search on each outer training fold, scored on its test fold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from sklearn.model_selection import RepeatedKFold

from train.crossval import Regressor, conformal_half_widths, cross_validate
from train.evaluation.candidates import Params
from train.grade_calibration import grade_ranges
from wine_quality.card import GradeRanges

# Builds a fresh, unfitted model with these settings and this seed (Candidate.make, or a test's own).
MakeModel = Callable[[Params, int], Regressor]


@dataclass(frozen=True)
class CVPlan:
    """The shape of the nested cross-validation: outer folds and repeats, inner folds, seed."""

    folds: int = 5
    repeats: int = 3
    inner_folds: int = 3
    seed: int = 42
    quick: bool = False


@dataclass(frozen=True)
class Search:
    """What the inner search of one outer training fold found."""

    params: Params  # the setting chosen (lowest inner out-of-fold MAE)
    inner_mae: tuple[tuple[Params, float], ...]  # every setting tried, in grid order; empty when none was needed
    half_widths: dict[str, float]  # conformal half-width per level, from the chosen setting's inner residuals
    ranges: dict[str, GradeRanges]  # grade-by-grade intervals per level, from its inner out-of-fold predictions


@dataclass(frozen=True)
class Fold:
    """One outer fold: its rows, the search on its training rows, and the refitted model's test predictions."""

    train: np.ndarray
    test: np.ndarray
    search: Search
    predicted: np.ndarray


def search_settings(
    make: MakeModel, grid: Sequence[Params], x: np.ndarray, y: np.ndarray, seed: int, folds: int, intervals: bool
) -> Search:
    """Score every setting by a K-fold CV of these rows only and keep the lowest out-of-fold MAE (the first on ties).

    The inner models are seeded seed, seed + 1, ... per inner fold, as the training scripts' cross_validate does;
    with one setting and no intervals wanted there is nothing to cross-validate.
    """
    if len(grid) == 1 and not intervals:
        return Search(grid[0], (), {}, {})
    runs = [cross_validate(partial(make, p), x, y, folds=folds, repeats=1, seed=seed) for p in grid]
    maes = [float(np.mean(r.residuals)) for r in runs]
    best = runs[int(np.argmin(maes))]
    return Search(
        grid[int(np.argmin(maes))],
        tuple(zip(grid, maes, strict=True)),
        conformal_half_widths(best.residuals),
        grade_ranges(best.predicted, best.truth),
    )


def nested_cv(
    make: MakeModel, grid: Sequence[Params], x: np.ndarray, y: np.ndarray, plan: CVPlan, intervals: bool = True
) -> list[Fold]:
    """Every outer fold of RepeatedKFold(folds, repeats, seed): search on its training rows, refit, predict its test.

    The model of outer fold i, and the first inner model of its search, are seeded plan.seed + i.
    """
    splitter = RepeatedKFold(n_splits=plan.folds, n_repeats=plan.repeats, random_state=plan.seed)
    folds = []
    for i, (train, test) in enumerate(splitter.split(x)):
        found = search_settings(make, grid, x[train], y[train], plan.seed + i, plan.inner_folds, intervals)
        model = make(found.params, plan.seed + i)
        model.fit(x[train], y[train])
        folds.append(Fold(train, test, found, np.asarray(model.predict(x[test]), dtype=np.float64)))
    return folds
