"""The wines the gate compares two models on: tasted wines neither was trained on, or held-out rows neither saw.

On tasted wines (`--on feedback`), a model trained with feedback saw the labelled wines graded before its cutoff
(its card's `feedback.cutoff`); one trained on the files alone saw none. The gate takes the wines graded at or after
the later cutoff of the two, leaves out any wine graded before it too (the challenger saw that one) and any wine
that is a row of the data files, and keeps each wine's latest grade.

On the files (`--on file`), the held-out rows of a split are unseen only by a model fitted on the training rows
(`--holdout-fit`, the card's `data.fitted_on: train`) of that same split: both models must have been, with the same
files, seed and test size, and without tasted wines, which move the split. Otherwise the gate refuses to compare,
naming what to retrain, rather than score a model on rows it has seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from train.data import DataError, file_sha256, load_typed, model_inputs, split_wines
from train.feedback import WINE, as_rows
from wine_quality.card import ModelCard
from wine_quality.schema import TARGET


class GateRefusal(Exception):
    """The gate cannot compare the two models fairly; the message says why and what would let it."""


@dataclass(frozen=True)
class GateWines:
    """Rows of MODEL_INPUTS and their true grades, unseen by both models, and where they came from."""

    x: np.ndarray
    y: np.ndarray
    source: Literal["feedback", "file"]
    since: datetime | None = None
    database: str | None = None

    def describe(self) -> str:
        if self.source == "file":
            return f"{len(self.y)} held-out rows of the data files, which neither model was fitted on"
        since = f" graded since {self.since.isoformat()}" if self.since else ""
        return f"{len(self.y)} tasted wines{since} in {self.database}, which neither model was trained on"


def _read(paths: Sequence[Path]) -> dict[str, tuple[Path, pd.DataFrame]]:
    """Each file's rows (with their type) by its SHA-256."""
    try:
        return {file_sha256(path): (Path(path), load_typed(path)) for path in paths}
    except DataError as exc:
        raise GateRefusal(str(exc)) from None


def trained_files(cards: dict[str, ModelCard], paths: Sequence[Path]) -> pd.DataFrame:
    """The rows of the files given, once every file each model was trained on is among them (by SHA-256)."""
    found = _read(paths)
    for role, card in cards.items():
        missing = [f.file for f in card.data.files if f.sha256 not in found]
        if missing:
            raise GateRefusal(
                f"the {role} model was trained on {', '.join(missing)}, which --data does not give (compared by "
                "SHA-256): give the files it was trained on with --data"
            )
    return pd.concat([frame for _, frame in found.values()], ignore_index=True)


def feedback_since(cards: dict[str, ModelCard], database: str) -> datetime | None:
    """From when tasted wines are unseen by both models: the later cutoff of those trained with feedback."""
    cutoffs = []
    for role, card in cards.items():
        if card.feedback is None:
            continue
        if card.feedback.database != database:
            raise GateRefusal(
                f"the {role} model was trained with the tasted wines of {card.feedback.database}, and the gate reads "
                f"{database}: it cannot tell which wines that model saw (set WINE_CAPTURE_URL to its database)"
            )
        cutoffs.append(card.feedback.cutoff)
    return max(cutoffs, default=None)


def unseen_tasted(labelled: pd.DataFrame, since: datetime | None, known: pd.DataFrame) -> pd.DataFrame:
    """The wines graded at or after `since` and not before it, which are no row of `known`: one row each (features,
    quality, type), with its latest grade."""
    after = labelled if since is None else labelled[labelled["time"] >= since]
    before = labelled.iloc[:0] if since is None else labelled[labelled["time"] < since]
    wines = as_rows(after)
    seen = pd.concat([as_rows(before)[WINE], known[WINE]], ignore_index=True).drop_duplicates()
    marked = wines.merge(seen.assign(_seen=True), on=WINE, how="left")
    return wines[marked["_seen"].isna().to_numpy()].reset_index(drop=True)


def tasted_wines(
    cards: dict[str, ModelCard], labelled: pd.DataFrame, database: str, paths: Sequence[Path]
) -> GateWines:
    """The tasted wines neither model was trained on (the module's rule)."""
    since = feedback_since(cards, database)
    wines = unseen_tasted(labelled, since, trained_files(cards, paths))
    y = wines[TARGET].to_numpy(np.float64)
    return GateWines(model_inputs(wines), y, "feedback", since=since, database=database)


def held_out_rows(cards: dict[str, ModelCard], tags: dict[str, str], paths: Sequence[Path]) -> GateWines:
    """The held-out rows of the split both models were fitted without (the module's rule)."""
    problems = []
    for role, card in cards.items():
        if card.data.fitted_on != "train":
            problems.append(
                f"the {role} model {tags[role]} was fitted on every row of its files (data.fitted_on: all), so no "
                "held-out row is unseen by it: retrain it with --holdout-fit, or gate on tasted wines (--on feedback)"
            )
        if card.feedback is not None:
            problems.append(
                f"the {role} model {tags[role]} was trained with tasted wines, which moved its split: gate it on "
                "tasted wines (--on feedback)"
            )
    splits = {
        (c.hyperparameters.get("seed"), c.hyperparameters.get("test_size"), tuple(f.sha256 for f in c.data.files))
        for c in cards.values()
    }
    if len(splits) > 1:
        problems.append("the two models held out different rows (their files, seed or test size differ)")
    if problems:
        raise GateRefusal("; ".join(problems))
    ((seed, test_size, shas),) = splits
    found = _read(paths)
    missing = [f.file for f in next(iter(cards.values())).data.files if f.sha256 not in found]
    if missing:
        raise GateRefusal(f"the models were trained on {', '.join(missing)}: give those files with --data")
    frame = pd.concat([found[sha][1] for sha in shas], ignore_index=True)  # in the order training read them
    split = split_wines(frame, float(test_size), int(seed))  # type: ignore[arg-type]
    return GateWines(split.x_test, split.y_test, "file")
