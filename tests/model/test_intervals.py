"""Intervals that fit each wine: calibrated grade by grade, they cover rare grades too, and their width varies."""

from __future__ import annotations

import bentoml
import numpy as np
import pytest

from train import sklearn_model
from train.data import WHITE, load_typed, split_wines
from train.grade_calibration import grade_ranges
from wine_quality.intervals import spans
from wine_quality.served import ServedModel
from wine_quality.settings import ModelSettings, Settings
from wine_quality.store import read_card

SEED = 42


def test_each_grade_is_covered_at_the_level_on_fresh_wines() -> None:
    """Grades whose wines are predicted with different biases and spreads (the rare ones pulled towards the middle,
    and predicted less surely) are each covered about 90 % of the time, no more, by intervals calibrated on other
    wines of the same kind; the middle grades, which the rare grades' ranges straddle, are not over-covered."""
    rng = np.random.default_rng(0)

    def wines(n: int) -> tuple[np.ndarray, np.ndarray]:
        grade = rng.choice([4, 5, 6, 7], size=n, p=[0.08, 0.42, 0.42, 0.08]).astype(float)
        pulled = 5.5 + 0.3 * (grade - 5.5)  # predictions shrink towards the mean grade
        spread = np.where((grade == 4) | (grade == 7), 0.7, 0.35)
        return pulled + rng.normal(0, 1, n) * spread, grade

    calibration, fresh = wines(3000), wines(20000)
    ranges = grade_ranges(*calibration)
    low, high = spans(fresh[0], ranges["0.9"])
    covered = (low <= fresh[1]) & (fresh[1] <= high)
    for grade in (4, 5, 6, 7):
        assert 0.87 <= np.mean(covered[fresh[1] == grade]) <= 0.93, (grade, np.mean(covered[fresh[1] == grade]))
    assert np.all(low <= fresh[0]) and np.all(fresh[0] <= high)  # the prediction lies inside its interval
    narrow, wide = spans(fresh[0], ranges["0.8"]), spans(fresh[0], ranges["0.95"])
    assert np.all(wide[0] <= narrow[0]) and np.all(narrow[1] <= wide[1])  # the levels nest, wine by wine
    # one half-width for all, calibrated on the same wines, leaves the rare grades mostly out
    half = np.quantile(np.abs(calibration[1] - calibration[0]), 0.9)
    assert np.mean(np.abs(fresh[1] - fresh[0])[fresh[1] == 7] <= half) < 0.6


@pytest.fixture(scope="module")
def white() -> ServedModel:
    """A small forest on the white file's training rows (the saved model is the held-out one)."""
    argv = ["--no-pin", "--holdout-fit", "--data", str(WHITE), "--param", "n_estimators=30", "--cv-repeats", "1"]
    tag = sklearn_model.main([*argv, "--seed", str(SEED)])["tag"]
    return ServedModel.load("sklearn", Settings(models=ModelSettings(tags={"sklearn": tag})))


def test_the_served_intervals_cover_every_grade_of_30_held_out_wines_or_more(white: ServedModel) -> None:
    """On the held-out white wines, every grade with at least 30 wines (4 to 8) is covered by the served 90 %
    intervals at a floor well above what one width for all reaches on the rare grades 4 and 8."""
    split = split_wines(load_typed(WHITE), 0.2, SEED)
    quality = white.predictor(1)(split.x_test)
    low, high = white.intervals(quality, np.ones(len(quality), dtype=bool))
    covered = (low <= split.y_test) & (split.y_test <= high)
    for grade in (4, 5, 6, 7, 8):
        rows = split.y_test == grade
        assert rows.sum() >= 30
        assert np.mean(covered[rows]) >= (0.75 if rows.sum() < 100 else 0.85), (grade, np.mean(covered[rows]))
    half = white.card.types["white"].interval.half_width["0.9"]
    for grade in (4, 8):
        rows = split.y_test == grade
        assert np.mean(np.abs(split.y_test - quality)[rows] <= half) < 0.6  # what one half-width gave them
    card = read_card("sklearn", bentoml.models.get(white.tag)).types["white"]
    assert card.metrics.coverage["0.9"] == pytest.approx(np.mean(covered))
    assert card.metrics.width["0.9"] == pytest.approx(np.mean(high - low))
    assert "label-conditional" in card.interval.method


def test_two_different_wines_get_intervals_of_different_widths(white: ServedModel) -> None:
    """A wine predicted in the middle of the scale and one predicted near a rare grade get intervals of other
    widths; each interval holds its prediction and is ordered by coverage level."""
    split = split_wines(load_typed(WHITE), 0.2, SEED)
    quality = white.predictor(1)(split.x_test)
    low, high = white.intervals(quality, np.ones(len(quality), dtype=bool))
    widths = high - low
    assert len(np.unique(np.round(widths, 9))) > 2
    assert np.all((low <= quality) & (quality <= high))
    ranges = white.card.types["white"].interval.by_grade
    assert ranges is not None
    narrow, wide = (spans(quality, ranges[level]) for level in ("0.8", "0.95"))
    assert np.all(narrow[0] >= wide[0]) and np.all(narrow[1] <= wide[1])
