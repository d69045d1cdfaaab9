"""The run: every candidate's nested CV on every data set, then the runs that depend on its choices, in parallel."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from train.data import RED, WHITE, deduplicate, load_wines, split_wines
from train.evaluation.candidates import BY_KEY, Params
from train.evaluation.classification import ClassifierResult, evaluate_classifier
from train.evaluation.curves import learning_curve
from train.evaluation.nested import CVPlan, nested_cv
from train.evaluation.pooled import POOLED_MODELS, TypeData, evaluate_pooled, evaluate_pooled_classifier
from train.evaluation.results import ByModel, Evaluation, LearningCurve, ModelResult
from train.evaluation.summary import model_result
from train.evaluation.verdicts import best_sklearn, recommended
from wine_quality.per_type import FEATURES
from wine_quality.schema import FEATURE_NAMES, TARGET, TYPES, WineType

DATASETS = {"red": RED, "white": WHITE}
ROW_WEIGHT = {"red": 1, "white": 3, "both": 4}  # white has about three times red's rows: its runs take that much longer


def load_xy(dataset: str, keep_duplicates: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """Features and grades of a data set, deduplicated unless told otherwise, and the raw row count."""
    frame = load_wines(DATASETS[dataset])
    rows = len(frame)
    if not keep_duplicates:
        frame = deduplicate(frame)
    return frame[list(FEATURE_NAMES)].to_numpy(np.float64), frame[TARGET].to_numpy(np.float64), rows


def evaluate_model(
    dataset: str, model: str, plan: CVPlan, keep_duplicates: bool = False, fixed: Params | None = None
) -> ModelResult:
    """Nested repeated K-fold CV of one candidate on one data set, intervals included.

    fixed= evaluates that one setting instead of searching, on the same outer folds, without intervals.
    """
    candidate = BY_KEY[model]
    grid = (fixed,) if fixed is not None else candidate.settings(plan.quick)
    x, y, rows = load_xy(dataset, keep_duplicates)
    started = time.perf_counter()
    folds = nested_cv(candidate.make, grid, x, y, plan, intervals=fixed is None)
    seconds = time.perf_counter() - started
    return model_result(
        dataset, candidate, grid, y, folds, plan.repeats, rows, seconds, duplicates_kept=keep_duplicates
    )


@dataclass(frozen=True)
class NestedJob:
    """One candidate's nested CV on one data set: searched, or with a fixed setting."""

    dataset: str
    model: str
    keep_duplicates: bool = False
    fixed: Params | None = None

    @property
    def name(self) -> str:
        stage = "/kept" if self.keep_duplicates else "/fixed" if self.fixed is not None else ""
        return f"{self.dataset}/{self.model}{stage}"

    def run(self, plan: CVPlan) -> ModelResult:
        return evaluate_model(self.dataset, self.model, plan, self.keep_duplicates, self.fixed)


@dataclass(frozen=True)
class CurveJob:
    """A learning curve of the network with one setting, on the training scripts' split of one data set."""

    dataset: str
    setting: str  # which one: "recommended", "current default"
    params: Params

    @property
    def name(self) -> str:
        return f"{self.dataset}/curve/{self.setting}"

    def run(self, plan: CVPlan) -> LearningCurve:
        split = split_wines(load_wines(DATASETS[self.dataset]), 0.2, plan.seed)
        features = replace(split, x_train=split.x_train[:, FEATURES], x_test=split.x_test[:, FEATURES])
        return learning_curve(self.dataset, features, self.params, plan.seed)


@dataclass(frozen=True)
class ClassifierJob:
    """The grade classifier on one data set's outer folds."""

    dataset: str

    @property
    def name(self) -> str:
        return f"{self.dataset}/classifier"

    def run(self, plan: CVPlan) -> ClassifierResult:
        x, y, _ = load_xy(self.dataset)
        return evaluate_classifier(x, y.astype(np.int64), self.dataset, plan)


def type_data() -> TypeData:
    """Every type's deduplicated features and grades, and its raw row count."""
    return {t: load_xy(t) for t in TYPES}


@dataclass(frozen=True)
class PooledJob:
    """A candidate trained on red and white wines pooled (the type an input), scored on each type's outer folds."""

    model: str
    dataset = "both"

    @property
    def name(self) -> str:
        return f"pooled/{self.model}"

    def run(self, plan: CVPlan) -> dict[WineType, ModelResult]:
        return evaluate_pooled(self.model, type_data(), plan)


@dataclass(frozen=True)
class PooledClassifierJob:
    """The grade classifier trained on both types pooled, scored on each type's outer folds."""

    @property
    def name(self) -> str:
        return "pooled/classifier"

    def run(self, plan: CVPlan) -> dict[WineType, ClassifierResult]:
        return evaluate_pooled_classifier(type_data(), plan)


Job = NestedJob | CurveJob | ClassifierJob | PooledJob | PooledClassifierJob


@contextmanager
def single_threaded() -> Iterator[None]:
    """One thread per job: reproducible, and no oversubscription when jobs run side by side."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


def _timed(job: Job, plan: CVPlan) -> object:
    started = time.perf_counter()
    with single_threaded():
        result = job.run(plan)
    print(f"  done {job.name} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return result


def second_stage(nested: ByModel, plan: CVPlan) -> list[Job]:
    """The runs whose settings the nested searches fixed: the recommended settings without a search, the paper's
    protocol (duplicates kept) and the network's learning curves; and the classifier, which has no search."""
    rec = recommended(nested)
    jobs: list[Job] = [ClassifierJob(d) for d in nested]
    if set(nested) == set(TYPES):
        jobs.append(PooledClassifierJob())
    for d, results in nested.items():
        jobs += [NestedJob(d, r.model, fixed=r.params) for r in rec.values()]
        sklearn = {m: r for m, r in results.items() if r.kind == "sklearn"}
        # under the paper's protocol: the counterparts of its two models, and the best of ours
        kept = {"linear", "svr", best_sklearn(sklearn, linear=True) or "linear"} & set(sklearn)
        jobs += [NestedJob(d, m, keep_duplicates=True, fixed=results[m].search.modal) for m in sorted(kept)]
        if "torch" in rec:
            jobs.append(CurveJob(d, "recommended", rec["torch"].params))
            if d == "red":
                jobs.append(CurveJob(d, "current default", {"epochs": 60, "patience": 10} if plan.quick else {}))
    return jobs


def run(datasets: Sequence[str], models: Sequence[str], plan: CVPlan, jobs: int) -> Evaluation:
    """Every candidate on every data set (nested CV), and the pooled candidates when both types are evaluated; then
    the second stage."""
    parallel = Parallel(n_jobs=jobs, verbose=0)
    pooled_jobs = [PooledJob(m) for m in POOLED_MODELS if m in models] if set(datasets) == set(TYPES) else []
    # the slowest first, so that the jobs finish together
    first: list[NestedJob | PooledJob] = sorted(
        [*(NestedJob(d, m) for d in datasets for m in models), *pooled_jobs],
        key=lambda j: -ROW_WEIGHT[j.dataset] * BY_KEY[j.model].cost,
    )
    print(f"nested CV: {len(first)} runs on {jobs} job(s)", file=sys.stderr, flush=True)
    nested: ByModel = {d: {} for d in datasets}
    pooled: dict[str, dict[str, ModelResult]] = {}
    for job, result in zip(first, parallel(delayed(_timed)(job, plan) for job in first), strict=True):
        if isinstance(job, PooledJob):
            pooled[job.model] = result
        else:
            nested[job.dataset][job.model] = result

    later = second_stage(nested, plan)
    print(f"second stage: {len(later)} runs", file=sys.stderr, flush=True)
    figures: ByModel = {d: {} for d in datasets}
    kept: ByModel = {d: {} for d in datasets}
    curves: dict[str, dict[str, LearningCurve]] = {d: {} for d in datasets}
    classifiers: dict[str, ClassifierResult] = {}
    pooled_classifiers: dict[str, ClassifierResult] = {}
    for stage, result in zip(later, parallel(delayed(_timed)(job, plan) for job in later), strict=True):
        if isinstance(stage, PooledClassifierJob):
            pooled_classifiers = result
        elif isinstance(stage, ClassifierJob):
            classifiers[stage.dataset] = result
        elif isinstance(stage, CurveJob):
            curves[stage.dataset][stage.setting] = result
        elif isinstance(stage, NestedJob) and stage.keep_duplicates:
            kept[stage.dataset][stage.model] = result
        elif isinstance(stage, NestedJob):
            figures[stage.dataset][stage.model] = result
    return Evaluation(
        nested,
        recommended(nested),
        figures,
        kept,
        curves,
        classifiers,
        pooled=pooled,
        pooled_classifiers=pooled_classifiers,
    )
