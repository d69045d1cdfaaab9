"""The grade classifier under the evaluation's outer folds: Brier scores beside two baselines, and reliability."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.model_selection import RepeatedKFold

from train.evaluation.nested import CVPlan
from train.evaluation.results import Json, Stat
from train.metrics import baseline_probabilities, probability_metrics
from wine_quality.card import good_probability
from wine_quality.grade_classifier import GradeClassifier

GOOD = 7  # the training script's default threshold of a good wine
SCORES = ("brier", "brier_good", "accuracy")
PREDICTORS = ("classifier", "prior", "majority")  # the model, then its baselines from each training fold


@dataclass(frozen=True)
class ClassifierResult:
    """The classifier and its baselines on one data set's outer test folds, and its pooled out-of-fold probabilities."""

    dataset: str
    settings: dict[str, float | int]
    scores: dict[str, dict[str, Stat]]  # predictor -> score -> mean ± std over the outer folds
    per_fold: dict[str, list[dict[str, float]]]
    classes: list[int]
    y: np.ndarray  # the true grade of each pooled prediction (every row once per repeat)
    probabilities: np.ndarray  # [rows × repeats, classes], each from the fold's model that did not see the row
    seconds: float

    @property
    def good(self) -> np.ndarray:
        """Each pooled prediction's probability of a good wine."""
        return good_probability(self.probabilities, np.array(self.classes), GOOD)

    def as_json(self) -> Json:
        return {
            "dataset": self.dataset,
            "settings": self.settings,
            "good_threshold": GOOD,
            "classes": self.classes,
            "scores": {p: {s: asdict(stat) for s, stat in by.items()} for p, by in self.scores.items()},
            "per_fold": {p: [{s: round(v, 5) for s, v in f.items()} for f in fs] for p, fs in self.per_fold.items()},
            "seconds": round(self.seconds, 1),
        }


def evaluate_classifier(x: np.ndarray, y: np.ndarray, dataset: str, plan: CVPlan) -> ClassifierResult:
    """The training script's classifier (fewer trees in a quick run), fitted on each outer training fold (seeded
    plan.seed + i, as the regressors' folds) and scored on its test fold, beside the fold's baselines."""
    import time

    started = time.perf_counter()
    settings: dict[str, float | int] = {"n_estimators": 20 if plan.quick else GradeClassifier().n_estimators}
    classes = np.unique(y).astype(int)
    per_fold: dict[str, list[dict[str, float]]] = {p: [] for p in PREDICTORS}
    pooled_y, pooled_p = [], []
    splitter = RepeatedKFold(n_splits=plan.folds, n_repeats=plan.repeats, random_state=plan.seed)
    for i, (train, test) in enumerate(splitter.split(x)):
        model = GradeClassifier(**settings, random_state=plan.seed + i).fit(x[train], y[train])  # type: ignore[arg-type]
        probabilities = np.zeros((len(test), len(classes)))  # a grade missing from the training fold gets nothing
        probabilities[:, np.searchsorted(classes, model.classes_)] = model.predict_proba(x[test])
        baselines = baseline_probabilities(y[train], classes, len(test))
        answers = {"classifier": probabilities, **baselines}
        for name in PREDICTORS:
            per_fold[name].append(probability_metrics(y[test], answers[name], classes, GOOD))
        pooled_y.append(y[test])
        pooled_p.append(probabilities)
    scores = {p: {s: Stat.of([f[s] for f in folds]) for s in SCORES} for p, folds in per_fold.items()}
    return ClassifierResult(
        dataset=dataset,
        settings=settings,
        scores=scores,
        per_fold=per_fold,
        classes=[int(c) for c in classes],
        y=np.concatenate(pooled_y),
        probabilities=np.concatenate(pooled_p),
        seconds=time.perf_counter() - started,
    )


def reliability(predicted: np.ndarray, happened: np.ndarray, bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean predicted probability, observed frequency, count) in each non-empty bin of equal width."""
    edges = np.minimum((predicted * bins).astype(int), bins - 1)
    return [
        (float(predicted[edges == b].mean()), float(happened[edges == b].mean()), int(np.sum(edges == b)))
        for b in range(bins)
        if np.any(edges == b)
    ]
