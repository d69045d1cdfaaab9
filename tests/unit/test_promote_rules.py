"""The gate's rule and the feedback rows' rules, on small frames: paired differences, the verdict, which tasted
wines train a model and which are left for the gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from train.feedback import as_rows, cutoff, tasted_for_training
from train.gate import paired, passes, regression_lines, verdict
from train.gate_wines import unseen_tasted
from wine_quality.schema import FEATURE_NAMES, TARGET, TYPE_COLUMN

START = datetime(2025, 3, 1, tzinfo=UTC)


def wine(seed: int) -> dict[str, float]:
    return {name: float(seed + i) / 10 for i, name in enumerate(FEATURE_NAMES)}


def labelled(*tastings: tuple[int, int, int, int]) -> pd.DataFrame:
    """Labelled wines as the capture database gives them: (wine, grade, minute graded, minute the grade came)."""
    rows = [
        {
            "id": f"id{n}",
            "time": START + timedelta(minutes=graded),
            "received": START + timedelta(minutes=received),
            "model_tag": "wine_quality_sklearn:v1",
            "model_kind": "sklearn",
            "wine_type": "red",
            **wine(which),
            TARGET: grade,
        }
        for n, (which, grade, graded, received) in enumerate(tastings)
    ]
    return pd.DataFrame(rows).sort_values("time", ignore_index=True)


def files(*wines: tuple[int, int]) -> pd.DataFrame:
    return pd.DataFrame([{**wine(which), TARGET: grade, TYPE_COLUMN: "red"} for which, grade in wines])


def test_the_paired_difference_is_the_mean_of_the_differences_with_its_standard_error() -> None:
    """The difference is the challenger's mean minus the served model's; its error is that of the per-wine ones."""
    line = paired("mae", np.array([0.5, 0.7, 0.2, 0.6]), np.array([0.4, 0.5, 0.3, 0.4]))
    differences = np.array([0.1, 0.2, -0.1, 0.2])
    assert line.challenger == pytest.approx(0.5) and line.served == pytest.approx(0.4)
    assert line.difference == pytest.approx(0.1)
    assert line.se == pytest.approx(differences.std(ddof=1) / 2)


def test_the_verdict_allows_one_standard_error_and_three_points_of_coverage() -> None:
    """Worse by more than its standard error fails; worse by less passes; coverage 4 points under or 10 over the
    level fails, 5 over on 120 wines (chance) passes; a type with too few wines is not decided, and a gate with no
    decided type does not pass."""
    y = np.tile([5.0, 6.0, 5.0, 7.0], 30)
    served_errors = np.tile([0.3, 0.3, 0.2, 0.2], 30)
    served = y + served_errors * np.tile([1, -1], 60)
    ninety = (np.where(np.arange(120) < 108, y - 1, y + 0.5), y + 1)  # 0.9 of the grades inside

    def judged(grades: np.ndarray, intervals: tuple[np.ndarray, np.ndarray] = ninety, wines: int = 120) -> Any:
        return verdict(regression_lines(y, (grades, served), (intervals, ninety)), wines, 100, 0.9)

    worse = judged(y + 1.5 * served_errors)
    assert worse.decided and worse.passed is False and "MAE" in worse.reasons[0]
    slightly_worse = y + served_errors + 0.005 + 0.1 * np.tile([1, -1], 60)  # 0.005 worse, paired SE 0.009
    assert judged(slightly_worse).passed
    assert judged(served).passed
    under = judged(served, (np.where(np.arange(120) < 103, y - 1, y + 0.5), y + 1))  # 0.858
    assert under.passed is False and "under the level" in under.reasons[0]
    over = judged(served, (y - 1, y + 1))  # 1.0
    assert over.passed is False and "over the level" in over.reasons[0]
    # 0.95 on 120 wines: 5 points over, within chance (two standard errors of the coverage there are 5.5 points)
    assert judged(served, (np.where(np.arange(120) < 114, y - 1, y + 0.5), y + 1)).passed
    few = judged(served, wines=50)
    assert not few.decided and passes({"red": few}) is False


def test_a_tasted_grade_replaces_the_files_row_and_the_last_grade_received_wins() -> None:
    """A wine in the file and tasted keeps its tasted grade; tasted twice, the grade received last."""
    tasted = labelled((1, 7, 0, 50), (2, 4, 1, 2), (1, 6, 3, 4))  # wine 1: graded at 0 and 3, its 7 received last
    rows = as_rows(tasted)
    assert rows[TARGET].tolist() == [7, 4] and len(rows) == 2
    frame, section = tasted_for_training(files((1, 5), (3, 6)), tasted, 0.0, START + timedelta(days=1), "db")
    assert sorted(zip(frame["fixed acidity"], frame[TARGET], strict=True)) == [(0.1, 7), (0.2, 4), (0.3, 6)]
    assert (section.replaced, section.added, section.rows, section.held_out) == (1, 2, 3, 0)


def test_the_most_recent_share_is_left_for_the_gate_and_only_unseen_wines_are_scored() -> None:
    """With a share of 0.5 the later half is left out of training; the gate then scores the wines graded since the
    cutoff that were neither graded before it nor rows of the files."""
    tasted = labelled(*((w, 5, w, w) for w in range(1, 9)))
    cut = cutoff(tasted, 0.5, START)
    assert cut == START + timedelta(minutes=5)
    frame, section = tasted_for_training(files((20, 5)), tasted, 0.5, START, "db")
    assert (section.added, section.held_out, len(frame)) == (4, 4, 5)
    again = labelled(*((w, 5, w, w) for w in range(1, 9)), (2, 6, 9, 9), (20, 5, 10, 10))
    unseen = unseen_tasted(again, cut, files((20, 5)))
    assert unseen["fixed acidity"].tolist() == pytest.approx([0.5, 0.6, 0.7, 0.8])
