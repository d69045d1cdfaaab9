"""What both training scripts share: the command-line options, the data step and the save step."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wine_quality.data import RED, DataError, Split, file_sha256, load_wines, split_wines
from wine_quality.metrics import regression_metrics
from wine_quality.registry import KINDS, training_metadata, write_pin
from wine_quality.settings import get_settings


def parser(kind: str, description: str) -> argparse.ArgumentParser:
    """The options every training script takes."""
    p = argparse.ArgumentParser(prog=KINDS[kind].train_command, description=description)
    p.add_argument("--data", type=Path, default=RED, help="wine CSV, either dialect (default: the red file)")
    p.add_argument("--test-size", type=float, default=0.2, help="held-out share of the unique rows (default 0.2)")
    p.add_argument("--seed", type=int, default=42, help="seed of the split and of the model (default 42)")
    p.add_argument("--name", default=KINDS[kind].name, help="model-store name (default %(default)s)")
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
    predict: Callable[[np.ndarray], np.ndarray],
    save: Callable[[dict[str, Any]], str],
    hyperparameters: dict[str, Any],
    libraries: tuple[str, ...],
) -> dict[str, Any]:
    """Score on the held-out rows, save with metadata, pin unless told not to, and print the result as JSON."""
    metrics = regression_metrics(split.y_test, predict(split.x_test))
    metadata = training_metadata(
        metrics=metrics,
        hyperparameters={**hyperparameters, "seed": args.seed, "test_size": args.test_size},
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
    tag = save(metadata)
    pinned = not args.no_pin
    if pinned:
        write_pin(get_settings().models_lock, kind, tag)
    result = {"tag": tag, "pinned": pinned, "metrics": metrics}
    print(json.dumps(result, indent=2))
    return result
