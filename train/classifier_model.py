"""Fit the grade classifier (calibrated extra trees); save it and its ONNX form to the model store.

It answers a probability for each grade seen in training, and so of a good wine (grade ≥ --good-threshold). Its
card holds the held-out Brier scores beside two baselines, and, like every model's, the regression figures and
intervals of its expected grade.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from train.data import Split, is_type
from train.metrics import baseline_probabilities, probability_metrics
from train.onnx_export import classifier_to_onnx
from train.onnx_per_type import per_type
from train.workflow import Describe, Hyperparameters, Recipe, parser, run
from wine_quality.card import ClassifierCard, Layout, ProbabilityFigures, ProbabilityMetrics
from wine_quality.grade_classifier import GradeClassifier
from wine_quality.per_type import PerType
from wine_quality.schema import WineType

# one forest per type: pooled was a little more accurate on red (Brier -0.0024 ± 0.0009) but cost red wines 1.17x to
# serve (reports/pooling/serving_cost.json); the rule is train.evaluation.pooling.served_layout
LAYOUT: Layout = "per_type"

CALIBRATION = (
    "Dirichlet calibration: a multinomial logistic regression on the log of the forest's {folds}-fold out-of-fold "
    "probabilities (floored at 1e-3)"
)


def hyperparameters(model: GradeClassifier) -> Hyperparameters:
    settings: Hyperparameters = dict(model.get_params())
    return settings


def write_joblib(model: GradeClassifier, path: Path) -> None:
    import joblib

    joblib.dump(model, path)


def describe(good: int) -> Describe:
    """The card's classification section (the saved model's grades), and per type the held-out Brier scores of the
    model fitted on the training rows beside the baselines built from that type's training rows."""

    def section(holdout: Any, saved: Any, split: Split) -> tuple[ClassifierCard, dict[WineType, ProbabilityFigures]]:
        classes = np.asarray(holdout.classes_)
        figures = {}
        for wine_type in split.types:
            train, test = is_type(split.x_train, wine_type), is_type(split.x_test, wine_type)
            y_test = split.y_test[test]

            def scored(probabilities: np.ndarray, y: np.ndarray = y_test) -> ProbabilityMetrics:
                return ProbabilityMetrics(**probability_metrics(y, probabilities, classes, good))

            baselines = baseline_probabilities(split.y_train[train], classes, len(y_test))
            figures[wine_type] = ProbabilityFigures(
                held_out=scored(holdout.predict_proba(split.x_test[test])),
                majority_baseline=scored(baselines["majority"]),
                prior_baseline=scored(baselines["prior"]),
            )
        calibration_folds = (saved.base if isinstance(saved, PerType) else saved).calibration_folds
        found = ClassifierCard(
            classes=[int(c) for c in saved.classes_],
            good_threshold=good,
            calibration=CALIBRATION.format(folds=calibration_folds),
        )
        return found, figures

    return section


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train, evaluate, export, save and pin; print the held-out metrics as JSON."""
    d = GradeClassifier()
    p = parser("classifier", __doc__ or "", cv_repeats=1, layout=LAYOUT)
    p.add_argument("--good-threshold", type=int, default=7, help="a good wine's lowest grade (default %(default)s)")
    p.add_argument("--n-estimators", type=int, default=d.n_estimators, help="trees (default %(default)s)")
    p.add_argument("--min-samples-leaf", type=int, default=d.min_samples_leaf, help="default %(default)s")
    p.add_argument("--max-features", type=float, default=d.max_features, help="default %(default)s")
    p.add_argument(
        "--calibration-folds", type=int, default=d.calibration_folds, help="folds of the out-of-fold probabilities"
    )
    args = p.parse_args(argv)
    if min(args.n_estimators, args.min_samples_leaf) < 1 or args.calibration_folds < 2:
        p.error("--n-estimators and --min-samples-leaf must be positive, --calibration-folds at least 2")
    settings = {
        "n_estimators": args.n_estimators,
        "min_samples_leaf": args.min_samples_leaf,
        "max_features": args.max_features,
        "calibration_folds": args.calibration_folds,
    }
    recipe = Recipe(
        kind="classifier",
        estimator="calibrated_extra_trees",
        make_model=lambda seed: GradeClassifier(**settings, random_state=seed),
        hyperparameters=lambda model: {**hyperparameters(model), "good_threshold": args.good_threshold},
        write_native=write_joblib,
        to_onnx=per_type(classifier_to_onnx),
        libraries=("scikit-learn",),
        native_output=lambda model: model.predict_proba,
        describe=describe(args.good_threshold),
    )
    return run(recipe, args)


if __name__ == "__main__":
    main()
