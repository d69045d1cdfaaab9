"""From the outer folds of a nested run to its reported figures: metrics per fold and per run, intervals, searches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from train.crossval import share_covered
from train.evaluation.candidates import Candidate, Params, params_key
from train.evaluation.nested import Fold
from train.evaluation.results import METRICS, GradeByGrade, GradeCoverage, Interval, ModelResult, SearchSummary, Stat
from train.metrics import regression_metrics
from wine_quality.card import INTERVAL_LEVELS
from wine_quality.intervals import spans


def per_fold_metrics(y: np.ndarray, folds: Sequence[Fold]) -> list[dict[str, float]]:
    """Each outer fold's metrics on its own test rows."""
    return [regression_metrics(y[f.test], f.predicted) for f in folds]


def out_of_fold(y: np.ndarray, folds: Sequence[Fold], repeats: int) -> np.ndarray:
    """One row per repeat: every row's prediction by the model of the fold that held it out."""
    per_repeat = len(folds) // repeats
    predicted = np.empty((repeats, len(y)))
    for i, fold in enumerate(folds):
        predicted[i // per_repeat, fold.test] = fold.predicted
    return predicted


def summarise_metrics(measured: Sequence[dict[str, float]]) -> dict[str, Stat]:
    """Mean ± std of each metric over folds or runs."""
    return {name: Stat.of([m[name] for m in measured]) for name in METRICS}


def _by_grade(grade: np.ndarray, covered: np.ndarray) -> dict[int, GradeCoverage]:
    return {
        int(g): GradeCoverage(int(np.sum(grade == g)), float(np.mean(covered[grade == g]))) for g in np.unique(grade)
    }


def _grade_by_grade(y: np.ndarray, folds: Sequence[Fold], level: str) -> GradeByGrade:
    """Each outer fold's grade-by-grade intervals, calibrated on its inner predictions, on its test rows."""
    per_fold = [spans(f.predicted, f.search.ranges[level]) for f in folds]
    covered = [(low <= y[f.test]) & (y[f.test] <= high) for f, (low, high) in zip(folds, per_fold, strict=True)]
    return GradeByGrade(
        coverage=Stat.of([float(np.mean(c)) for c in covered]),
        coverage_pooled=float(np.mean(np.concatenate(covered))),
        width=Stat.of([float(np.mean(high - low)) for low, high in per_fold]),
        by_grade=_by_grade(np.concatenate([y[f.test] for f in folds]).astype(int), np.concatenate(covered)),
    )


def intervals(y: np.ndarray, folds: Sequence[Fold]) -> dict[str, Interval]:
    """Coverage of each outer fold's conformal intervals on that fold's test rows, per level; empty without any."""
    if not folds[0].search.half_widths:
        return {}
    truth = np.concatenate([y[f.test] for f in folds])
    abs_error = np.abs(truth - np.concatenate([f.predicted for f in folds]))
    found = {}
    for level in (f"{lv:g}" for lv in INTERVAL_LEVELS):
        widths = np.concatenate([np.full(len(f.test), f.search.half_widths[level]) for f in folds])
        covered = abs_error <= widths
        found[level] = Interval(
            coverage=Stat.of([share_covered(y[f.test], f.predicted, f.search.half_widths[level]) for f in folds]),
            coverage_pooled=float(np.mean(covered)),
            half_width=Stat.of([f.search.half_widths[level] for f in folds]),
            by_grade=_by_grade(truth.astype(int), covered),
            grade_by_grade=_grade_by_grade(y, folds, level),
        )
    return found


def summarise_search(grid: Sequence[Params], folds: Sequence[Fold]) -> SearchSummary:
    """The settings tried, their inner MAE over the outer folds, and how often each won (most often first)."""
    # every fold tried the same settings in the same order
    scores = zip(*([mae for _, mae in f.search.inner_mae] for f in folds), strict=True)
    inner = tuple((params, Stat.of(s)) for (params, _), s in zip(folds[0].search.inner_mae, scores, strict=True))
    chosen = Counter(params_key(f.search.params) for f in folds)
    # keys in sorted order, as the search tables and evaluation.json name a setting
    settings = {params_key(f.search.params): dict(sorted(f.search.params.items())) for f in folds}
    return SearchSummary(tuple(grid), inner, tuple((settings[k], n) for k, n in chosen.most_common()))


def model_result(
    dataset: str,
    candidate: Candidate,
    grid: Sequence[Params],
    y: np.ndarray,
    folds: Sequence[Fold],
    repeats: int,
    rows_raw: int,
    seconds: float,
    label: str = "",
    duplicates_kept: bool = False,
) -> ModelResult:
    """A candidate's nested run on one data set, from its outer folds: figures per fold and per run, intervals,
    searches."""
    measured = per_fold_metrics(y, folds)
    runs = out_of_fold(y, folds, repeats)
    return ModelResult(
        dataset=dataset,
        model=candidate.key,
        label=label or candidate.label,
        kind=candidate.kind,
        duplicates_kept=duplicates_kept,
        rows_raw=rows_raw,
        y=y,
        metrics=summarise_metrics(measured),
        metrics_per_run=summarise_metrics([regression_metrics(y, run) for run in runs]),
        per_fold=measured,
        intervals=intervals(y, folds),
        search=summarise_search(grid, folds),
        seconds=seconds,
        first_run=runs[0],
    )
