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

from train.data import Split
from train.metrics import baseline_probabilities, probability_metrics
from train.onnx_export import classifier_to_onnx
from train.workflow import Hyperparameters, Recipe, parser, run
from wine_quality.card import Classification, ProbabilityMetrics
from wine_quality.grade_classifier import GradeClassifier

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


def describe(good: int) -> Any:
    """The card's classification section: held-out Brier scores of the model fitted on the training rows, and of
    the baselines built from the same training rows."""

    def section(model: GradeClassifier, split: Split) -> dict[str, Any]:
        classes = np.asarray(model.classes_)

        def scored(probabilities: np.ndarray) -> ProbabilityMetrics:
            return ProbabilityMetrics(**probability_metrics(split.y_test, probabilities, classes, good))

        baselines = baseline_probabilities(split.y_train, classes, len(split.y_test))
        found = Classification(
            classes=[int(c) for c in classes],
            good_threshold=good,
            calibration=CALIBRATION.format(folds=model.calibration_folds),
            held_out=scored(model.predict_proba(split.x_test)),
            majority_baseline=scored(baselines["majority"]),
            prior_baseline=scored(baselines["prior"]),
        )
        return {"classification": found}

    return section


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train, evaluate, export, save and pin; print the held-out metrics as JSON."""
    d = GradeClassifier()
    p = parser("classifier", __doc__ or "", cv_repeats=1)
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
        to_onnx=classifier_to_onnx,
        libraries=("scikit-learn",),
        native_output=lambda model: model.predict_proba,
        describe=describe(args.good_threshold),
    )
    return run(recipe, args)


if __name__ == "__main__":
    main()
