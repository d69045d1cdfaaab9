"""What every training script shares: its options, and load -> split -> cross-validate -> fit -> export -> save -> pin.

A training script describes its model kind as a `Recipe`; `run` does the rest the same way for every kind. The
figures come from the training rows (cross-validation) and the held-out rows (a model fitted on the training rows);
the saved model is then fitted on every unique row, unless --holdout-fit keeps the one the held-out rows scored.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.crossval import Regressor, conformal_half_widths, cross_validate, share_spanned
from train.data import RED, DataError, Split, file_sha256, load_wines, split_wines
from train.grade_calibration import grade_ranges
from train.metrics import regression_metrics
from train.onnx_export import TOLERANCE, OnnxForm, ParityError, check_parity
from train.tracking import INSTALL, TrackOption, track_training
from wine_quality.card import (
    CrossValidatedMetrics,
    GradeRanges,
    HeldOutMetrics,
    IntervalCalibration,
    ModelCard,
    TrainingData,
)
from wine_quality.card import (
    OnnxForm as OnnxFormCard,
)
from wine_quality.drift import drift_reference
from wine_quality.kinds import KINDS
from wine_quality.pins import write_pin
from wine_quality.provenance import git_commit, library_versions
from wine_quality.runtimes import ONNX_FILE
from wine_quality.schema import FEATURE_NAMES
from wine_quality.settings import get_settings
from wine_quality.store import save_model

INTERVAL_METHOD = (
    "label-conditional cross-conformal: for each grade, the range of out-of-fold predictions of the training rows of "
    "that grade in a {folds}-fold CV ({repeats} repeat(s)) at which they are covered at the level once spanned, "
    "tails cut for the narrowest intervals (train.grade_calibration); a wine's interval spans the grades whose "
    "range holds its prediction"
)
Hyperparameters = dict[str, str | int | float | bool | list[int] | list[float]]


@dataclass(frozen=True)
class Recipe:
    """How a training script makes, describes and saves its kind of model."""

    kind: str
    estimator: str  # what predicts, as the card names it
    make_model: Callable[[int], Regressor]  # seed -> a fresh, unfitted model
    hyperparameters: Callable[[Any], Hyperparameters]  # fitted model -> its settings
    write_native: Callable[[Any, Path], None]  # fitted model, file -> the native form saved
    to_onnx: Callable[[Any], OnnxForm]  # fitted model -> its ONNX form
    libraries: tuple[str, ...]  # recorded in the card's versions
    # fitted model -> what its ONNX form must reproduce (a regressor's grades; a classifier's probabilities)
    native_output: Callable[[Any], Callable[[np.ndarray], np.ndarray]] = lambda model: model.predict
    # (model fitted on the training rows, split) -> more fields of the card (a classifier's figures)
    describe: Callable[[Any, Split], dict[str, Any]] | None = None


def parser(kind: str, description: str, cv_repeats: int) -> argparse.ArgumentParser:
    """The options every training script takes."""
    registered = KINDS[kind]
    p = argparse.ArgumentParser(prog=registered.train_command, description=description)
    p.add_argument("--data", type=Path, default=RED, help="wine CSV, either dialect (default: the red file)")
    p.add_argument("--test-size", type=float, default=0.2, help="held-out share of the unique rows (default 0.2)")
    p.add_argument("--seed", type=int, default=42, help="seed of the split and of the model (default 42)")
    p.add_argument("--name", default=registered.store_name, help="model-store name (default %(default)s)")
    p.add_argument("--cv-folds", type=int, default=5, help="cross-validation folds on the training rows (default 5)")
    p.add_argument("--cv-repeats", type=int, default=cv_repeats, help="cross-validation repeats (default %(default)s)")
    p.add_argument(
        "--holdout-fit",
        action="store_true",
        help="save the model fitted on the training rows only (default: refit on all rows once it is scored)",
    )
    p.add_argument(
        "--no-pin",
        action="store_true",
        help="save without making this the served version (the pin file is left as it is)",
    )
    p.add_argument("--track", action=TrackOption, help=f"also record the run in MLflow (needs `{INSTALL}`)")
    return p


def load_split(args: argparse.Namespace) -> tuple[Split, str]:
    """Read, check, deduplicate and split the data; a bad file ends the run with its one-line reason."""
    if not 0.0 < args.test_size < 1.0:
        sys.exit(f"--test-size must lie between 0 and 1, not {args.test_size}")
    if args.cv_folds < 2 or args.cv_repeats < 1:
        sys.exit("--cv-folds must be at least 2 and --cv-repeats at least 1 (the intervals are calibrated on them)")
    try:
        frame = load_wines(args.data)
    except DataError as exc:
        sys.exit(f"error: {exc}")
    return split_wines(frame, args.test_size, args.seed), file_sha256(args.data)


def _held_out(split: Split, predicted: np.ndarray, by_grade: dict[str, GradeRanges]) -> HeldOutMetrics:
    """The held-out figures, with the coverage and mean width of the served intervals at each level."""
    measured = {level: share_spanned(split.y_test, predicted, ranges) for level, ranges in by_grade.items()}
    coverage = {level: share for level, (share, _) in measured.items()}
    width = {level: mean_width for level, (_, mean_width) in measured.items()}
    return HeldOutMetrics(**regression_metrics(split.y_test, predicted), coverage=coverage, width=width)


def _onnx_card(recipe: Recipe, model: Any, every_row: np.ndarray) -> tuple[OnnxForm, OnnxFormCard]:
    """The ONNX form, checked against the native model on every distinct row of the training file."""
    form = recipe.to_onnx(model)
    try:
        diff = check_parity(recipe.native_output(model), form, every_row)
    except ParityError as exc:
        sys.exit(f"error: {exc}")
    opset = {entry.domain or "ai.onnx": entry.version for entry in form.model.opset_import}
    card = OnnxFormCard(
        file=ONNX_FILE,
        precision=form.precision,
        opset=opset,
        max_abs_diff=diff,
        tolerance=TOLERANCE[form.precision],
        rows_checked=len(every_row),
    )
    return form, card


def final_fit(recipe: Recipe, split: Split, seed: int, holdout: Any, holdout_fit: bool) -> tuple[Any, np.ndarray]:
    """The model to save and the rows it saw: a fresh one fitted on every unique row, or the held-out model itself."""
    if holdout_fit:
        return holdout, split.x_train
    every_x, every_y = np.concatenate([split.x_train, split.x_test]), np.concatenate([split.y_train, split.y_test])
    model = recipe.make_model(seed)
    model.fit(every_x, every_y)
    return model, every_x


def run(recipe: Recipe, args: argparse.Namespace) -> dict[str, Any]:
    """Cross-validate on the training rows, fit, score on the held-out rows, refit on all rows, export, save, pin.

    The out-of-fold predictions of the cross-validation calibrate the prediction intervals (cross-conformal, grade by
    grade): each comes from a model that did not see that row. Their coverage is then measured on the held-out rows.
    Every figure is of models that did not see the rows they were scored on; the saved model, refitted on all
    rows with the same settings and seed, has no held-out rows left and is only checked for ONNX parity.
    """
    split, sha = load_split(args)
    cv = cross_validate(recipe.make_model, split.x_train, split.y_train, args.cv_folds, args.cv_repeats, args.seed)
    holdout = recipe.make_model(args.seed)
    holdout.fit(split.x_train, split.y_train)
    held_out = np.asarray(holdout.predict(split.x_test), dtype=np.float64)
    by_grade = grade_ranges(cv.predicted, cv.truth, repeats=cv.repeats)
    interval = IntervalCalibration(
        method=INTERVAL_METHOD.format(folds=cv.folds, repeats=cv.repeats),
        half_width=conformal_half_widths(cv.residuals),
        by_grade=by_grade,
    )
    model, fitted = final_fit(recipe, split, args.seed, holdout, args.holdout_fit)
    form, onnx_card = _onnx_card(recipe, model, np.concatenate([split.x_train, split.x_test]))
    registered = KINDS[recipe.kind]
    card = ModelCard(
        kind=recipe.kind,
        estimator=recipe.estimator,
        features=list(FEATURE_NAMES),
        metrics=_held_out(split, held_out, by_grade),
        cv_metrics=CrossValidatedMetrics(folds=cv.folds, repeats=cv.repeats, **cv.summary()),
        interval=interval,
        hyperparameters={**recipe.hyperparameters(model), "seed": args.seed, "test_size": args.test_size},
        data=TrainingData(
            file=Path(args.data).name,
            sha256=sha,
            rows=split.rows_raw,
            rows_unique=split.rows_unique,
            rows_train=len(split.y_train),
            rows_test=len(split.y_test),
            fitted_on="train" if args.holdout_fit else "all",
            rows_fitted=len(fitted),
        ),
        feature_ranges={
            name: (float(lo), float(hi))
            for name, lo, hi in zip(FEATURE_NAMES, fitted.min(axis=0), fitted.max(axis=0), strict=True)
        },
        native_file=registered.native_file,
        onnx=onnx_card,
        versions=library_versions("bentoml", "numpy", "onnxruntime", *recipe.libraries),
        git_commit=git_commit(),
        reference=drift_reference(fitted, cv.predicted),
        **(recipe.describe(holdout, split) if recipe.describe else {}),
    )

    def write_files(folder: Path) -> None:
        recipe.write_native(model, folder / registered.native_file)
        (folder / ONNX_FILE).write_bytes(form.serialized())

    tag = save_model(args.name, card, write_files, labels={"estimator": recipe.estimator})
    pinned = not args.no_pin
    if pinned:
        write_pin(get_settings().models.pins, recipe.kind, tag)
    if args.track:
        track_training(card, tag, pinned)
    result = {
        "tag": tag,
        "pinned": pinned,
        **card.model_dump(mode="json", include={"metrics", "cv_metrics", "onnx", "classification"}, exclude_none=True),
    }
    print(json.dumps(result, indent=2))
    return result
