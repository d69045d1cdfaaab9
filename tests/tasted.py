"""Tasted wines for the promotion tests: real data rows split into a training file and wines the service grades later,
whose true grades reach the capture database through the capture module's own write path and feedback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from train.data import RED, load_wines, model_inputs
from wine_quality.capture.batch import CaptureBatch
from wine_quality.capture.ids import new_ids
from wine_quality.capture.store import Capture
from wine_quality.schema import FEATURE_NAMES, TARGET, TYPE_COLUMN
from wine_quality.served import ServedModel
from wine_quality.settings import CaptureSettings


def split_red(folder: Path, new_wines: int, seed: int = 7) -> tuple[Path, pd.DataFrame]:
    """A red file without `new_wines` of its distinct wines (every copy of them gone), and those wines."""
    red = load_wines(RED)
    distinct = red.drop_duplicates(subset=list(FEATURE_NAMES), keep=False)  # a wine graded once in the file
    chosen = distinct.sample(n=new_wines, random_state=seed)
    rest = red.drop(index=chosen.index)
    path = folder / "winequality-red-base.csv"
    rest.to_csv(path, sep=";", index=False)
    return path, chosen.reset_index(drop=True).assign(**{TYPE_COLUMN: "red"})


def taste(settings: CaptureSettings, wines: pd.DataFrame, served: ServedModel, per_request: int = 25) -> int:
    """Grade the wines with the served model a request at a time, capture them, then store the tasters' grades
    with Capture.feedback, as POST /feedback does; the number of labelled wines written."""
    written = 0
    with Capture(settings) as capture:
        predict = served.predictor(1)
        for start in range(0, len(wines), per_request):
            part = wines.iloc[start : start + per_request]
            x = model_inputs(part)
            grades = np.asarray(predict(x), dtype=np.float64)
            low, high = served.intervals(grades, x[:, -1] > 0.5)
            ids = new_ids(len(part))
            capture.record(
                CaptureBatch(
                    ids=ids,
                    route="/predict_batch",
                    protocol="json",
                    model_tag=served.tag,
                    runtime=served.runtime,
                    kind=served.kind,
                    features=x[:, : len(FEATURE_NAMES)],
                    wine_types=list(part[TYPE_COLUMN]),
                    grades=grades,
                    interval_low=low,
                    interval_high=high,
                    interval_coverage=served.coverage,
                    outside=served.outside_training_range(x[:, : len(FEATURE_NAMES)], x[:, -1] > 0.5),
                )
            )
            capture.flush()
            stored = capture.feedback(zip(ids, (int(q) for q in part[TARGET]), strict=True))
            written += sum(f.new for f in stored)
    return written
