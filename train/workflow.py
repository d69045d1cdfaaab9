"""What every training script shares: its options, and load -> split -> cross-validate -> fit -> export -> save -> pin.

A training script describes its model kind as a `Recipe`; `run` does the rest the same way for every kind. Models take
MODEL_INPUTS (the features, then `white`) and are trained on every file given, red and white wines alike: pooled (one
model, the type an input) or per type (one model per type behind one estimator, wine_quality.per_type), as --layout
says. The figures come from the training rows (cross-validation) and the held-out rows (a model fitted on the
training rows), each type's on its own rows; the saved model is then fitted on every unique row, unless
--holdout-fit keeps the one the held-out rows scored. --with-feedback adds the capture database's tasted wines to the
files' rows (train/feedback.py) and pins nothing: the gate, `python -m train.promote`, decides what is served.
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
import pandas as pd

from train.crossval import Regressor, cross_validate
from train.data import DATA_FILES, DataError, Split, file_sha256, load_typed, split_wines
from train.feedback import add_tasted, gate_share
from train.onnx_export import TOLERANCE, OnnxGraph, ParityError, check_parity
from train.tracking import INSTALL, TrackOption, track_training
from train.type_sections import type_card
from wine_quality.card import (
    ClassifierCard,
    DataFile,
    Layout,
    ModelCard,
    OnnxForm,
    ProbabilityFigures,
    TastedWines,
    TrainingData,
)
from wine_quality.kinds import KINDS
from wine_quality.per_type import PerType
from wine_quality.pins import write_pin
from wine_quality.provenance import git_commit, library_versions
from wine_quality.runtimes import ONNX_FILE
from wine_quality.schema import MODEL_INPUTS, TYPE_COLUMN, TYPES, WineType
from wine_quality.settings import get_settings
from wine_quality.store import save_model

Hyperparameters = dict[str, str | int | float | bool | list[int] | list[float]]
# (model fitted on the training rows, saved model, split) -> the classifier's card section and its figures per type
Describe = Callable[[Any, Any, Split], tuple[ClassifierCard, dict[WineType, ProbabilityFigures]]]


@dataclass(frozen=True)
class Recipe:
    """How a training script makes, describes and saves its kind of model."""

    kind: str
    estimator: str  # what predicts, as the card names it
    make_model: Callable[[int], Regressor]  # seed -> a fresh, unfitted model (pooled; per type, each type's)
    hyperparameters: Callable[[Any], Hyperparameters]  # fitted model -> its settings
    write_native: Callable[[Any, Path], None]  # fitted model, file -> the native form saved
    to_onnx: Callable[[Any], OnnxGraph]  # fitted model (pooled, or PerType: train.onnx_per_type) -> its ONNX form
    libraries: tuple[str, ...]  # recorded in the card's versions
    # fitted model -> what its ONNX form must reproduce (a regressor's grades; a classifier's probabilities)
    native_output: Callable[[Any], Callable[[np.ndarray], np.ndarray]] = lambda model: model.predict
    describe: Describe | None = None  # a classifier's card section and probability figures


def parser(kind: str, description: str, cv_repeats: int, layout: Layout) -> argparse.ArgumentParser:
    """The options every training script takes; `layout` is the kind's default (the one `make evaluate` chose)."""
    registered = KINDS[kind]
    p = argparse.ArgumentParser(prog=registered.train_command, description=description)
    p.add_argument(
        "--data",
        type=Path,
        nargs="+",
        default=list(DATA_FILES),
        help="one or more wine CSVs, either dialect: a file with a `type` column (red/white) holds both wines, one "
        "without holds the type its name says or --type gives (default: the red file and the white file)",
    )
    p.add_argument(
        "--type",
        dest="wine_type",
        choices=TYPES,
        help="the type of the wines in the files without a type column (default: the one their name holds)",
    )
    p.add_argument(
        "--layout",
        choices=("pooled", "per_type"),
        default=layout,
        help="pooled: one model on every wine, the type an input; per_type: one model per type (default %(default)s)",
    )
    p.add_argument("--test-size", type=float, default=0.2, help="held-out share of each type's unique rows (0.2)")
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
    p.add_argument(
        "--with-feedback",
        action="store_true",
        help="add the tasted wines of the capture database (WINE_CAPTURE_URL, else capture.db in WINE_CAPTURE_DIR) "
        "to the files' rows, leave the most recent for the gate, and pin nothing (python -m train.promote does)",
    )
    p.add_argument(
        "--gate-share",
        type=gate_share,
        default=0.2,
        help="with --with-feedback: the share of labelled wines, the most recent, left out for the gate (0.2)",
    )
    p.add_argument("--track", action=TrackOption, help=f"also record the run in MLflow (needs `{INSTALL}`)")
    return p


def load_split(args: argparse.Namespace) -> tuple[Split, list[DataFile], TastedWines | None]:
    """Read, check, type, deduplicate and split the data (the files' rows, and the tasted wines with --with-feedback);
    a bad file or database ends the run with its one-line reason."""
    if not 0.0 < args.test_size < 1.0:
        sys.exit(f"--test-size must lie between 0 and 1, not {args.test_size}")
    if args.cv_folds < 2 or args.cv_repeats < 1:
        sys.exit("--cv-folds must be at least 2 and --cv-repeats at least 1 (the intervals are calibrated on them)")
    try:
        frames = [load_typed(path, args.wine_type) for path in args.data]
    except DataError as exc:
        sys.exit(f"error: {exc}")
    files = [
        DataFile(
            file=Path(path).name,
            sha256=file_sha256(path),
            rows=len(frame),
            types={t: int(n) for t in TYPES if (n := (frame[TYPE_COLUMN] == t).sum())},
        )
        for path, frame in zip(args.data, frames, strict=True)
    ]
    rows, tasted = pd.concat(frames, ignore_index=True), None
    if args.with_feedback:
        rows, tasted = add_tasted(rows, args.gate_share)
    try:
        split = split_wines(rows, args.test_size, args.seed)
    except ValueError as exc:  # a type with too few rows to hold some out
        sys.exit(f"error: cannot split the data: {exc}")
    return split, files, tasted


def model_maker(recipe: Recipe, layout: Layout) -> Callable[[int], Regressor]:
    """seed -> a fresh model of the layout: the recipe's own (pooled), or one of it per type."""
    if layout == "pooled":
        return recipe.make_model

    def make(seed: int) -> Regressor:
        model: Regressor = PerType(recipe.make_model(seed))
        return model

    return make


def hyperparameters(recipe: Recipe, model: Any) -> Hyperparameters:
    """The model's settings; per type, the settings every type's model shares, and the others named by type."""
    if not isinstance(model, PerType):
        return recipe.hyperparameters(model)
    each = {t: recipe.hyperparameters(m) for t, m in model.models_.items()}
    first = next(iter(each.values()))
    shared = {k: v for k, v in first.items() if all(found.get(k) == v for found in each.values())}
    own = {f"{k}.{t}": v for t, found in each.items() for k, v in found.items() if k not in shared}
    return {**shared, **own}


def _onnx_card(recipe: Recipe, model: Any, every_row: np.ndarray) -> tuple[OnnxGraph, OnnxForm]:
    """The ONNX form, checked against the native model on every distinct row of the training files."""
    form = recipe.to_onnx(model)
    try:
        diff = check_parity(recipe.native_output(model), form, every_row)
    except ParityError as exc:
        sys.exit(f"error: {exc}")
    opset = {entry.domain or "ai.onnx": entry.version for entry in form.model.opset_import}
    card = OnnxForm(
        file=ONNX_FILE,
        precision=form.precision,
        opset=opset,
        max_abs_diff=diff,
        tolerance=TOLERANCE[form.precision],
        rows_checked=len(every_row),
    )
    return form, card


def final_fit(
    make: Callable[[int], Regressor], split: Split, seed: int, holdout: Any, holdout_fit: bool
) -> tuple[Any, np.ndarray]:
    """The model to save and the rows it saw: a fresh one fitted on every unique row, or the held-out model itself."""
    if holdout_fit:
        return holdout, split.x_train
    model = make(seed)
    model.fit(split.x_all, split.y_all)
    return model, split.x_all


def run(recipe: Recipe, args: argparse.Namespace) -> dict[str, Any]:
    """Cross-validate on the training rows, fit, score on the held-out rows, refit on all rows, export, save, pin.

    The out-of-fold predictions of the cross-validation calibrate the prediction intervals of each type
    (cross-conformal, grade by grade): each comes from a model that did not see that row. Their coverage is then
    measured on the held-out rows of the type. Every figure is of models that did not see the rows they were scored
    on; the saved model, refitted on all rows with the same settings and seed, has no held-out rows left and is only
    checked for ONNX parity.
    """
    split, files, tasted = load_split(args)
    make = model_maker(recipe, args.layout)
    cv = cross_validate(make, split.x_train, split.y_train, args.cv_folds, args.cv_repeats, args.seed)
    holdout = make(args.seed)
    holdout.fit(split.x_train, split.y_train)
    held_out = np.asarray(holdout.predict(split.x_test), dtype=np.float64)
    model, fitted = final_fit(make, split, args.seed, holdout, args.holdout_fit)
    form, onnx_card = _onnx_card(recipe, model, split.x_all)
    classification, probabilities = recipe.describe(holdout, model, split) if recipe.describe else (None, {})
    registered = KINDS[recipe.kind]
    card = ModelCard(
        kind=recipe.kind,
        estimator=recipe.estimator,
        layout=args.layout,
        features=list(MODEL_INPUTS),
        hyperparameters={**hyperparameters(recipe, model), "seed": args.seed, "test_size": args.test_size},
        data=TrainingData(files=files, fitted_on="train" if args.holdout_fit else "all"),
        native_file=registered.native_file,
        onnx=onnx_card,
        versions=library_versions("bentoml", "numpy", "onnxruntime", *recipe.libraries),
        git_commit=git_commit(),
        classification=classification,
        types={t: type_card(t, split, cv, held_out, fitted, probabilities.get(t)) for t in split.types},
        feedback=tasted,
    )

    def write_files(folder: Path) -> None:
        recipe.write_native(model, folder / registered.native_file)
        (folder / ONNX_FILE).write_bytes(form.serialized())

    tag = save_model(args.name, card, write_files, labels={"estimator": recipe.estimator, "layout": args.layout})
    pinned = not (args.no_pin or args.with_feedback)  # a model trained on tasted wines is served through the gate
    if pinned:
        write_pin(get_settings().models.pins, recipe.kind, tag)
    if args.track:
        track_training(card, tag, pinned)
    if args.with_feedback:
        print(
            f"not pinned: gate it with `python -m train.promote --kind {recipe.kind} --challenger {tag}`",
            file=sys.stderr,
        )
    figures = {"metrics", "cv_metrics", "probabilities"}
    result = {
        "tag": tag,
        "pinned": pinned,
        "layout": card.layout,
        "onnx": card.onnx.model_dump(mode="json"),
        "types": {t: c.model_dump(mode="json", include=figures, exclude_none=True) for t, c in card.types.items()},
    }
    if tasted is not None:
        result["feedback"] = tasted.model_dump(mode="json", exclude_none=True)
    print(json.dumps(result, indent=2))
    return result
