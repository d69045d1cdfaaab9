"""The model card: what a saved model carries in the model store, written by training and read by serving.

What is about the model as a whole sits at the top; what differs between red and white wines (figures, interval
calibration, training ranges, drift reference, row counts) sits in `types`, one `TypeCard` per type it was trained on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from wine_quality.schema import WineType

# The interval levels training calibrates, as the card's keys name them.
INTERVAL_LEVELS = (0.8, 0.9, 0.95)
# grade -> the range of predictions for which that grade belongs in a wine's interval
GradeRanges = dict[str, tuple[float, float]]
# how a model uses the two wines: one model on both, the type an input; or one model per type behind one estimator
Layout = Literal["pooled", "per_type"]


def level_key(level: float) -> str:
    """How a coverage level is written in the card: 0.9 -> "0.9"."""
    return f"{level:g}"


class _Card(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegressionMetrics(_Card):
    """Error of predicted grades: R², MAE (the paper's MAD), RMSE, and the share within 0.25, 0.5 and 1.0."""

    r2: float
    mae: float
    rmse: float
    within_0_25: float
    within_0_5: float
    within_1_0: float


class HeldOutMetrics(RegressionMetrics):
    """The metrics on the held-out rows, with the share of their grades inside each calibrated interval."""

    coverage: dict[str, float] = Field(description="interval level -> share of held-out grades inside the interval")
    width: dict[str, float] = Field(description="interval level -> mean width of the held-out rows' intervals")


class MeanStd(_Card):
    mean: float
    std: float


class CrossValidatedMetrics(_Card):
    """Mean and standard deviation over the folds of a repeated K-fold cross-validation on the training rows."""

    folds: int
    repeats: int
    r2: MeanStd
    mae: MeanStd
    rmse: MeanStd
    within_0_25: MeanStd
    within_0_5: MeanStd
    within_1_0: MeanStd


class IntervalCalibration(_Card):
    """How the prediction interval is made, at each level, from out-of-fold predictions of the training rows.

    With `by_grade`, a wine's interval spans the grades whose range of predictions holds its own prediction: each
    grade is covered at the level, rare grades too. Without it, prediction ± half_width (one width for all wines).
    """

    method: str
    half_width: dict[str, float] = Field(
        description="level -> the half-width of the one-width-for-all interval (served only without by_grade)"
    )
    by_grade: dict[str, GradeRanges] | None = Field(
        None, description="level -> grade -> [low, high]: the predictions for which that grade is in the interval"
    )


class DataFile(_Card):
    """One data file a model was trained on."""

    file: str
    sha256: str
    rows: int = Field(description="rows in the file")
    types: dict[WineType, int] = Field(description="rows of each type in the file")


class TrainingData(_Card):
    """The data files a model was trained on, and which rows the saved model was fitted on."""

    files: list[DataFile]
    fitted_on: Literal["all", "train"] = Field(
        description="rows the saved model was fitted on: all unique rows (the default), or the training rows only"
    )


class TypeRows(_Card):
    """How the rows of one type were used."""

    rows: int = Field(description="rows of this type read: the data files', and any tasted wines added (feedback)")
    rows_unique: int = Field(description="rows after removing exact duplicates")
    rows_train: int = Field(description="rows the cross-validation and the held-out model were fitted on")
    rows_test: int = Field(description="held-out rows, scored by the model fitted on the training rows only")
    rows_fitted: int = Field(description="how many rows of this type the saved model saw")


class OnnxForm(_Card):
    """The model's ONNX form, saved beside the native one, and how closely it predicts the same grades."""

    file: str
    precision: Literal["double", "float32"]
    opset: dict[str, int]
    max_abs_diff: float = Field(description="largest |ONNX - native| output over every distinct row of the data files")
    tolerance: float
    rows_checked: int


class Distribution(_Card):
    """Quantile bins of training values (wine_quality/drift.py): what recent values are compared with."""

    edges: list[float] = Field(description="interior bin edges, increasing: bin i holds edges[i-1] <= x < edges[i]")
    shares: list[float] = Field(description="share of the training values in each bin (one more bin than edges)")
    quantiles: dict[str, float] = Field(description="level -> quantile of the training values")


class DriftReference(_Card):
    """The training distributions that live drift is measured against: each feature's, and the predicted grades'."""

    rows: int = Field(description="training rows the feature bins were made from")
    features: dict[str, Distribution]
    predictions: int = Field(description="out-of-fold predictions the prediction bins were made from")
    prediction: Distribution = Field(description="the cross-validation's out-of-fold predicted grades")


class ProbabilityMetrics(_Card):
    """How well a distribution over grades fits the true grades of wines it did not see."""

    brier: float = Field(description="multi-class Brier score: mean over wines of Σ_grade (p − [true grade])², 0 best")
    brier_good: float = Field(description="Brier score of the probability of a good wine (grade ≥ the threshold)")
    accuracy: float = Field(description="share of wines whose most probable grade is the true one")


def good_probability(probabilities: np.ndarray, classes: np.ndarray, threshold: int) -> np.ndarray:
    """Each wine's probability of being good (a grade at or above the threshold): the sum over those grades' columns."""
    return np.asarray(probabilities[:, np.asarray(classes) >= threshold].sum(axis=1), dtype=np.float64)


class ClassifierCard(_Card):
    """What a grade classifier answers: a probability for each of its grades, and so of a good wine."""

    classes: list[int] = Field(description="the grades it gives a probability for: those seen in training")
    good_threshold: int = Field(description="a wine is good at this grade or above")
    calibration: str


class ProbabilityFigures(_Card):
    """A classifier's probabilities on the held-out wines of one type, beside simple baselines from that type."""

    held_out: ProbabilityMetrics = Field(description="of the model fitted on the training rows only")
    majority_baseline: ProbabilityMetrics = Field(description="certainty of the training rows' most common grade")
    prior_baseline: ProbabilityMetrics = Field(description="the training rows' grade frequencies for every wine")


class TypeCard(_Card):
    """What a model's card says about the wines of one type: figures, intervals, training ranges, drift reference."""

    rows: TypeRows
    metrics: HeldOutMetrics = Field(
        description="on the held-out rows of this type, of a model fitted on the training rows only (the same "
        "settings and seed as the saved one, which data.fitted_on says may have seen every row)"
    )
    cv_metrics: CrossValidatedMetrics = Field(
        description="repeated K-fold cross-validation of the training rows, scored on this type's rows of each fold"
    )
    interval: IntervalCalibration = Field(description="calibrated on the out-of-fold predictions of this type's rows")
    feature_ranges: dict[str, tuple[float, float]] = Field(
        description="min and max of each feature over this type's rows the saved model was fitted on"
    )
    reference: DriftReference = Field(description="this type's training distributions, for drift monitoring")
    probabilities: ProbabilityFigures | None = Field(
        None, description="a classifier's probability figures on this type (the metrics above: its expected grade's)"
    )


class TastedWines(_Card):
    """The tasted wines (tasters' true grades in the capture database) a model was trained with, beside the files.

    A tasted wine is its 11 measurements and type; one tasted more than once keeps the grade received last, and a
    data-file row of the same wine gives way to it. The most recent labelled wines are left out, for the gate
    (`python -m train.promote`): every wine graded at or after `cutoff`.
    """

    database: str = Field(description="the capture database read (its URL, any password hidden)")
    cutoff: datetime = Field(description="wines graded at or after this time were left out of training, for the gate")
    gate_share: float = Field(description="the share of labelled wines, the most recent, asked to be left out")
    rows: int = Field(description="labelled wines graded before the cutoff, as the database holds them")
    added: int = Field(description="distinct wines among them, added to the data files' rows")
    replaced: int = Field(description="data-file rows of a tasted wine, dropped for its tasted grade")
    types: dict[WineType, int] = Field(description="wines added, of each type")
    first: datetime | None = Field(None, description="when the earliest of those wines was graded")
    last: datetime | None = Field(None, description="when the latest of those wines was graded")
    held_out: int = Field(description="labelled wines graded at or after the cutoff at training: left for the gate")


class GateLine(_Card):
    """One metric of one wine type at the gate: both models on the same wines, and their paired difference."""

    metric: str = Field(description="mae, within_0_5, coverage (at the level), or a classifier's brier")
    challenger: float
    served: float
    difference: float = Field(description="challenger − served, wine by wine, averaged")
    se: float = Field(description="standard error of that mean difference (paired, over the wines)")


class GateVerdict(_Card):
    """The gate's finding on one wine type."""

    wines: int = Field(description="wines of this type neither model was trained on")
    decided: bool = Field(description="whether there were enough of them to decide on this type")
    passed: bool | None = Field(None, description="whether the challenger passed on this type (when decided)")
    lines: list[GateLine]
    reasons: list[str] = Field(description="why it failed on this type, or why the type was not decided")


class Promotion(_Card):
    """Why this model was pinned: the gate that compared it with the model served before (train/promote.py)."""

    decision: Literal["promoted", "forced"] = Field(
        description="promoted: it passed the gate; forced: pinned with --force, the gate's findings kept"
    )
    decided: datetime = Field(description="when it was pinned")
    served_before: str | None = Field(description="the tag served before it (none: nothing of its kind was)")
    evaluated_on: Literal["feedback", "file"] | None = Field(
        description="feedback: tasted wines neither model saw; file: the data files' held-out rows; none: no gate"
    )
    since: datetime | None = Field(None, description="tasted wines graded at or after this time were compared")
    database: str | None = Field(None, description="the capture database the tasted wines came from")
    coverage_level: float | None = Field(None, description="the interval level whose coverage was checked")
    rule: str
    types: dict[WineType, GateVerdict]
    reasons: list[str] = Field(description="why the gate refused (a forced pin) or could not compare")
    table: str = Field(description="the gate's table, as printed")


class ModelCard(_Card):
    """Everything serving and people need to know about a saved model."""

    kind: str
    estimator: str = Field(description="what predicts, e.g. extra_trees or mlp")
    layout: Layout = Field(
        description="pooled: one model trained on every type, the type an input; per_type: one model per type, the "
        "type input choosing which answers"
    )
    features: list[str] = Field(description="the model's inputs, in the order it takes them: the features, then white")
    hyperparameters: dict[str, str | int | float | bool | list[int] | list[float]]
    data: TrainingData
    native_file: str
    onnx: OnnxForm
    versions: dict[str, str] = Field(description="library versions at training")
    git_commit: str | None = None
    classification: ClassifierCard | None = Field(None, description="a classifier's grades and good threshold")
    types: dict[WineType, TypeCard] = Field(description="per type the model was trained on")
    feedback: TastedWines | None = Field(None, description="the tasted wines it was trained with, beside the files")
    promotion: Promotion | None = Field(None, description="the gate that let it be served (python -m train.promote)")
