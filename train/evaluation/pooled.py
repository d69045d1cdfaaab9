"""Pooled candidates: one model on red and white wines together (the type an input), scored on each type's folds.

The outer folds are each type's own (RepeatedKFold with the plan's seed over that type's deduplicated rows, as its
per-type runs use): outer fold i of the pooled model trains on red fold i's and white fold i's training rows and is
scored on their test rows, each type apart. So fold i of the pooled model and fold i of the red-only (or white-only)
model are scored on the same wines, and their difference is paired.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

import numpy as np
from sklearn.model_selection import RepeatedKFold

from train.crossval import conformal_half_widths, cross_validate
from train.evaluation.candidates import BY_KEY, Params
from train.evaluation.classification import GOOD, PREDICTORS, SCORES, ClassifierResult
from train.evaluation.nested import CVPlan, Fold, MakeModel, Search
from train.evaluation.results import ModelResult, Stat
from train.evaluation.summary import model_result
from train.grade_calibration import grade_ranges
from train.metrics import baseline_probabilities, probability_metrics
from wine_quality.grade_classifier import GradeClassifier
from wine_quality.schema import TYPES, WineType

# per type: features [n, 11] and grades of the deduplicated rows, and the raw row count
TypeData = dict[WineType, tuple[np.ndarray, np.ndarray, int]]
POOLED_MODELS = ("extra_trees", "torch_ensemble")  # the served regressors' families


def stacked(data: TypeData) -> tuple[np.ndarray, np.ndarray, dict[WineType, np.ndarray]]:
    """Every type's rows in one array of MODEL_INPUTS (features, then white), their grades, and each type's rows."""
    xs, ys, index, start = [], [], {}, 0
    for wine_type, (x, y, _) in data.items():
        xs.append(np.column_stack([x, np.full(len(x), float(wine_type == "white"))]))
        ys.append(y)
        index[wine_type] = np.arange(start, start + len(x))
        start += len(x)
    return np.concatenate(xs), np.concatenate(ys), index


def pooled_splits(data: TypeData, plan: CVPlan) -> list[dict[WineType, tuple[np.ndarray, np.ndarray]]]:
    """Outer fold i of every type: the same train/test rows (of that type) as its per-type run's fold i."""
    splitter = RepeatedKFold(n_splits=plan.folds, n_repeats=plan.repeats, random_state=plan.seed)
    per_type = {t: list(splitter.split(x)) for t, (x, _, _) in data.items()}
    return [dict(zip(per_type, folds, strict=True)) for folds in zip(*per_type.values(), strict=True)]


def _search(
    make: MakeModel, grid: Sequence[Params], x: np.ndarray, y: np.ndarray, white: np.ndarray, seed: int, folds: int
) -> dict[WineType, Search]:
    """The inner search of one outer training fold (every type's rows): the setting with the lowest pooled inner
    MAD, and each type's intervals from its own rows' inner out-of-fold predictions."""
    runs = [cross_validate(partial(make, p), x, y, folds=folds, repeats=1, seed=seed) for p in grid]
    maes = [float(np.mean(r.residuals)) for r in runs]
    best = runs[int(np.argmin(maes))]
    found: dict[WineType, Search] = {}
    for wine_type, rows in zip(TYPES, (~white, white), strict=True):
        own = best.of(rows)
        if len(own.predicted):
            found[wine_type] = Search(
                grid[int(np.argmin(maes))],
                tuple(zip(grid, maes, strict=True)),
                conformal_half_widths(own.residuals),
                grade_ranges(own.predicted, own.truth),
            )
    return found


def pooled_nested_cv(
    make: MakeModel, grid: Sequence[Params], data: TypeData, plan: CVPlan
) -> dict[WineType, list[Fold]]:
    """Every outer fold: search on both types' training rows, refit, predict both types' test rows; the folds of
    each type, in that type's own row numbers. The model of outer fold i is seeded plan.seed + i, as per type."""
    x, y, index = stacked(data)
    found: dict[WineType, list[Fold]] = {t: [] for t in data}
    for i, split in enumerate(pooled_splits(data, plan)):
        train = np.concatenate([index[t][tr] for t, (tr, _) in split.items()])
        test = np.concatenate([index[t][te] for t, (_, te) in split.items()])
        searches = _search(make, grid, x[train], y[train], x[train, -1] > 0.5, plan.seed + i, plan.inner_folds)
        model = make(searches[next(iter(searches))].params, plan.seed + i)
        model.fit(x[train], y[train])
        predicted = np.asarray(model.predict(x[test]), dtype=np.float64)
        start = 0
        for wine_type, (tr, te) in split.items():
            found[wine_type].append(Fold(tr, te, searches[wine_type], predicted[start : start + len(te)]))
            start += len(te)
    return found


def evaluate_pooled(model: str, data: TypeData, plan: CVPlan) -> dict[WineType, ModelResult]:
    """A candidate trained on every type pooled, under the nested protocol, as one result per type."""
    candidate = BY_KEY[model]
    grid = candidate.settings(plan.quick)
    started = time.perf_counter()
    folds = pooled_nested_cv(candidate.make, grid, data, plan)
    seconds = time.perf_counter() - started
    label = f"{candidate.label}, pooled: red and white wines, the type an input"
    return {
        t: model_result(t, candidate, grid, y, folds[t], plan.repeats, rows, seconds, label=label)
        for t, (_, y, rows) in data.items()
    }


def evaluate_pooled_classifier(data: TypeData, plan: CVPlan) -> dict[WineType, ClassifierResult]:
    """The training script's classifier fitted on both types' outer training rows (seeded plan.seed + i) and scored
    on each type's test rows beside that type's baselines: the same folds as the per-type classifier runs."""
    started = time.perf_counter()
    settings: dict[str, float | int] = {"n_estimators": 20 if plan.quick else GradeClassifier().n_estimators}
    x, y, index = stacked(data)
    y = y.astype(np.int64)
    classes = np.unique(y)
    per_fold: dict[WineType, dict[str, list[dict[str, float]]]] = {t: {p: [] for p in PREDICTORS} for t in data}
    pooled: dict[WineType, tuple[list[np.ndarray], list[np.ndarray]]] = {t: ([], []) for t in data}
    for i, split in enumerate(pooled_splits(data, plan)):
        train = np.concatenate([index[t][tr] for t, (tr, _) in split.items()])
        model = GradeClassifier(**settings, random_state=plan.seed + i).fit(x[train], y[train])  # type: ignore[arg-type]
        for wine_type, (tr, te) in split.items():
            rows = index[wine_type][te]
            probabilities = np.zeros((len(rows), len(classes)))
            probabilities[:, np.searchsorted(classes, model.classes_)] = model.predict_proba(x[rows])
            own_classes = np.unique(y[index[wine_type]])  # the baselines of the per-type run: its own grades
            baselines = baseline_probabilities(y[index[wine_type][tr]], own_classes, len(rows))
            answers = {"classifier": (probabilities, classes), **{k: (v, own_classes) for k, v in baselines.items()}}
            for name in PREDICTORS:
                answer, seen = answers[name]
                per_fold[wine_type][name].append(probability_metrics(y[rows], answer, seen, GOOD))
            pooled[wine_type][0].append(y[rows])
            pooled[wine_type][1].append(probabilities)
    seconds = time.perf_counter() - started
    return {
        t: ClassifierResult(
            dataset=t,
            settings=settings,
            scores={p: {s: Stat.of([f[s] for f in folds]) for s in SCORES} for p, folds in per_fold[t].items()},
            per_fold=per_fold[t],
            classes=[int(c) for c in classes],
            y=np.concatenate(pooled[t][0]),
            probabilities=np.concatenate(pooled[t][1]),
            seconds=seconds,
        )
        for t in data
    }
