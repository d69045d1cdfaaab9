"""What both training scripts share: the command-line options, the data step and the save step."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from train.crossval import Regressor, conformal_half_widths, coverage, cross_validate
from train.data import RED, DataError, Split, file_sha256, load_wines, split_wines
from train.metrics import regression_metrics
from wine_quality.registry import KINDS, training_metadata, write_pin
from wine_quality.settings import get_settings

INTERVAL_METHOD = "cross-conformal: out-of-fold absolute residuals of a {folds}-fold CV on the training rows"


def parser(kind: str, description: str, cv_repeats: int) -> argparse.ArgumentParser:
    """The options every training script takes."""
    p = argparse.ArgumentParser(prog=KINDS[kind].train_command, description=description)
    p.add_argument("--data", type=Path, default=RED, help="wine CSV, either dialect (default: the red file)")
    p.add_argument("--test-size", type=float, default=0.2, help="held-out share of the unique rows (default 0.2)")
    p.add_argument("--seed", type=int, default=42, help="seed of the split and of the model (default 42)")
    p.add_argument("--name", default=KINDS[kind].name, help="model-store name (default %(default)s)")
    p.add_argument("--cv-folds", type=int, default=5, help="cross-validation folds on the training rows (default 5)")
    p.add_argument("--cv-repeats", type=int, default=cv_repeats, help="cross-validation repeats (default %(default)s)")
    p.add_argument(
        "--no-pin",
        action="store_true",
        help="save without making this the served version (the pin file is left as it is)",
    )
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


def evaluate_and_save(
    *,
    kind: str,
    args: argparse.Namespace,
    split: Split,
    data_sha256: str,
    make_model: Callable[[int], Regressor],
    save: Callable[[Any, dict[str, Any]], str],
    hyperparameters: Callable[[Any], dict[str, Any]],
    libraries: tuple[str, ...],
) -> dict[str, Any]:
    """Cross-validate on the training rows, fit, score on the held-out rows, save, pin, print the result as JSON.

    The out-of-fold residuals of the cross-validation calibrate the prediction intervals (cross-conformal): each
    residual comes from a model that did not see that row. Their coverage is then measured on the held-out rows.
    """
    cv = cross_validate(make_model, split.x_train, split.y_train, args.cv_folds, args.cv_repeats, args.seed)
    model = make_model(args.seed)
    model.fit(split.x_train, split.y_train)
    predicted = np.asarray(model.predict(split.x_test), dtype=np.float64)
    half_widths = conformal_half_widths(cv.residuals)
    metrics = regression_metrics(split.y_test, predicted)
    for level, half_width in half_widths.items():
        metrics[f"coverage_{level.replace('.', '_')}"] = coverage(split.y_test, predicted, half_width)
    metadata = training_metadata(
        metrics=metrics,
        hyperparameters={**hyperparameters(model), "seed": args.seed, "test_size": args.test_size},
        data_path=args.data,
        data_sha256=data_sha256,
        rows={
            "rows": split.rows_raw,
            "rows_unique": split.rows_unique,
            "rows_train": len(split.y_train),
            "rows_test": len(split.y_test),
        },
        x_train=split.x_train,
        libraries=libraries,
    )
    metadata["cv_metrics"] = {"folds": cv.folds, "repeats": cv.repeats, **cv.summary()}
    metadata["interval"] = {"method": INTERVAL_METHOD.format(folds=cv.folds), "half_width": half_widths}
    tag = save(model, metadata)
    pinned = not args.no_pin
    if pinned:
        write_pin(get_settings().models_lock, kind, tag)
    result = {"tag": tag, "pinned": pinned, "metrics": metrics, "cv_metrics": metadata["cv_metrics"]}
    print(json.dumps(result, indent=2))
    return result
