"""What the evaluation measured, as typed records, and their JSON form (evaluation.json)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from train.evaluation.candidates import Kind, Params, params_key
from train.network import NetConfig

if TYPE_CHECKING:
    from train.evaluation.classification import ClassifierResult

METRICS = ("r2", "mae", "rmse", "within_0_25", "within_0_5", "within_1_0")
Json = dict[str, Any]


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of a figure over folds or runs."""

    mean: float
    std: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        return cls(float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)


@dataclass(frozen=True)
class GradeCoverage:
    """How many test rows have one true grade, and the share of them inside their interval."""

    rows: int
    coverage: float


def _covered(coverage: Stat, pooled: float, by_grade: dict[int, GradeCoverage]) -> Json:
    """Coverage over the folds, over every test row, and by true grade (string keys, as JSON has them)."""
    return {
        "coverage": asdict(coverage),
        "coverage_pooled": pooled,
        "by_grade": {str(g): asdict(c) for g, c in by_grade.items()},
    }


@dataclass(frozen=True)
class GradeByGrade:
    """One level's grade-by-grade (label-conditional) intervals, the served ones, measured on the outer test folds."""

    coverage: Stat  # over the outer folds
    coverage_pooled: float
    width: Stat  # each fold's mean interval width
    by_grade: dict[int, GradeCoverage]

    def as_json(self) -> Json:
        return {**_covered(self.coverage, self.coverage_pooled, self.by_grade), "width": asdict(self.width)}


@dataclass(frozen=True)
class Interval:
    """One level's conformal intervals, measured on the outer test folds."""

    coverage: Stat  # over the outer folds
    coverage_pooled: float  # over every test row of every fold
    half_width: Stat
    # the intervals are marginal: they cover the common grades more, the rare ones less
    by_grade: dict[int, GradeCoverage]
    grade_by_grade: GradeByGrade | None = None  # the same level, calibrated grade by grade

    def as_json(self) -> Json:
        return {
            **_covered(self.coverage, self.coverage_pooled, self.by_grade),
            "half_width": asdict(self.half_width),
            "grade_by_grade": self.grade_by_grade.as_json() if self.grade_by_grade else None,
        }


@dataclass(frozen=True)
class SearchSummary:
    """Every outer fold's search together: the settings tried, their inner MAE, and how often each was chosen."""

    grid: tuple[Params, ...]
    inner_mae: tuple[tuple[Params, Stat], ...]  # in grid order; empty where no inner CV ran
    chosen: tuple[tuple[Params, int], ...]  # most chosen first

    @property
    def modal(self) -> Params:
        """The setting chosen most often (the first found among equals)."""
        return self.chosen[0][0]

    def as_json(self) -> Json:
        return {
            "grid": [dict(p) for p in self.grid],
            "inner_mae": {params_key(p): asdict(s) for p, s in self.inner_mae},
            "chosen": {params_key(p): n for p, n in self.chosen},
            "modal": self.modal,
        }


@dataclass(frozen=True)
class ModelResult:
    """One candidate on one data set under the nested protocol."""

    dataset: str
    model: str
    label: str
    kind: Kind
    duplicates_kept: bool
    rows_raw: int
    y: np.ndarray  # the grades of the rows used
    metrics: dict[str, Stat]  # over the outer folds
    metrics_per_run: dict[str, Stat]  # over runs (one repeat = every row predicted once): the paper's unit
    per_fold: list[dict[str, float]]
    intervals: dict[str, Interval]  # by level, "0.8"; empty for a fixed setting
    search: SearchSummary
    seconds: float
    first_run: np.ndarray  # the first repeat's out-of-fold predictions, for the plots

    @property
    def mae(self) -> float:
        return self.metrics["mae"].mean

    def as_json(self) -> Json:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "label": self.label,
            "kind": self.kind,
            "duplicates": "kept" if self.duplicates_kept else "removed",
            "rows": {"raw": self.rows_raw, "used": len(self.y)},
            "metrics": {name: asdict(self.metrics[name]) for name in METRICS},
            "metrics_per_run": {name: asdict(self.metrics_per_run[name]) for name in METRICS},
            "per_fold": [{name: round(fold[name], 5) for name in METRICS if name in fold} for fold in self.per_fold],
            "intervals": {level: interval.as_json() for level, interval in self.intervals.items()},
            "search": self.search.as_json(),
            "seconds": round(self.seconds, 1),
        }


@dataclass(frozen=True)
class LearningCurve:
    """fit_net's validation loss (config.loss) per epoch on the training scripts' split, of the network or an
    ensemble's first member, and the test figures of the whole."""

    dataset: str
    config: NetConfig
    val_loss: list[float]
    best_epoch: int
    epochs_run: int
    test_metrics: dict[str, float]

    def as_json(self) -> Json:
        return {
            "dataset": self.dataset,
            "config": {**asdict(self.config), "hidden": list(self.config.hidden)},
            "val_loss": self.val_loss,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "test_metrics": self.test_metrics,
        }


@dataclass(frozen=True)
class Recommendation:
    """A training default this run suggests: the model and its setting."""

    model: str
    params: Params


# data set -> model -> result
ByModel = dict[str, dict[str, ModelResult]]


@dataclass(frozen=True)
class Evaluation:
    """Everything one run measured."""

    nested: ByModel  # each candidate with its own search
    recommended: dict[Kind, Recommendation]
    recommended_figures: ByModel  # the recommended settings, fixed, on the same outer folds
    duplicates_kept: ByModel  # the paper's protocol, settings fixed to the nested search's modal choice
    curves: dict[str, dict[str, LearningCurve]]  # data set -> which setting ("recommended", ...) -> curve
    classifiers: dict[str, ClassifierResult] = field(default_factory=dict)  # data set -> the grade classifier
    # model -> type -> the model trained on both types pooled, scored on that type's outer folds
    pooled: dict[str, dict[str, ModelResult]] = field(default_factory=dict)
    pooled_classifiers: dict[str, ClassifierResult] = field(default_factory=dict)  # type -> the pooled classifier

    @property
    def datasets(self) -> list[str]:
        return list(self.nested)


def by_model_json(results: ByModel) -> Json:
    return {d: {m: r.as_json() for m, r in rs.items()} for d, rs in results.items()}
