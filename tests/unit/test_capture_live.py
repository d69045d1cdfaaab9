"""Live accuracy on SQLite and PostgreSQL: the same figures as numpy on the same rows, as gauges and as JSON."""

from __future__ import annotations

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from tests.capture_data import (  # noqa: F401  (any_database: fixture database_url)
    CLASSIFIER_TAG,
    GRADE_LABELS,
    REGRESSOR_TAG,
    any_database,
    classifier_batch,
    regression_batch,
    settings,
)
from tests.postgres import postgres_server  # noqa: F401  (fixture: postgres)
from wine_quality.capture.batch import CaptureBatch
from wine_quality.capture.live import LiveFigures
from wine_quality.capture.store import Capture

WINDOW = 40


def _expected(batches: list[CaptureBatch], truth: dict[str, int], window: int) -> dict[tuple[str, str], LiveFigures]:
    """The figures computed with numpy from what was recorded: per tag and type, the newest labelled wines."""
    columns: dict[tuple[str, str], dict[str, list[object]]] = {}
    for b in batches:  # recorded in this order, ids increasing: the newest wines come last
        types = [b.wine_types] * len(b) if isinstance(b.wine_types, str) else list(b.wine_types)
        for i, wine in enumerate(b.ids):
            if wine not in truth:
                continue
            group = columns.setdefault(
                (b.model_tag, types[i]), {"truth": [], "grade": [], "low": [], "high": [], "p": []}
            )
            group["truth"].append(truth[wine])
            group["grade"].append(None if b.grades is None else b.grades[i])
            group["low"].append(None if b.interval_low is None else b.interval_low[i])
            group["high"].append(None if b.interval_high is None else b.interval_high[i])
            group["p"].append(None if b.probabilities is None else b.probabilities[i])
    found = {}
    for (tag, kind), g in columns.items():
        recent = {name: values[-window:] for name, values in g.items()}
        t = np.array(recent["truth"], dtype=float)
        mae = within = coverage = brier = None
        if recent["grade"][0] is not None:
            error = np.abs(np.array(recent["grade"], dtype=float) - t)
            mae, within = error.mean(), (error <= 0.5).mean()
            low, high = np.array(recent["low"], dtype=float), np.array(recent["high"], dtype=float)
            coverage = ((low <= t) & (t <= high)).mean()
        if recent["p"][0] is not None:
            p = np.array(recent["p"], dtype=float)
            onehot = (np.array(GRADE_LABELS, dtype=float)[None, :] == t[:, None]).astype(float)
            # a true grade the classifier has no column for still counts (0 - 1)^2
            brier = (((p - onehot) ** 2).sum(axis=1) + (onehot.sum(axis=1) == 0)).mean()
        found[(tag, kind)] = LiveFigures(
            model=tag, type=kind, labelled=len(t), mae=mae, within_half=within, interval_coverage=coverage, brier=brier
        )
    return found


def _traffic(capture: Capture) -> tuple[list[CaptureBatch], dict[str, int]]:
    """Two regressors and the classifier, red and white, more labelled wines than the window for some."""
    rng = np.random.default_rng(11)
    batches = []
    for round_ in range(6):
        batches.append(regression_batch(rng, 15, tag=REGRESSOR_TAG, wine_types=["red", "white", "red"] * 5))
        batches.append(regression_batch(rng, 5, tag="wine_quality_torch:t1"))
        batches.append(classifier_batch(rng, 12 + round_))
    truth: dict[str, int] = {}
    for b in batches:
        capture.record(b)
        for wine in b.ids[::2]:  # half the wines get a true grade, some outside the classifier's 3-8 (2 and 9)
            truth[wine] = int(rng.integers(2, 10))
    capture.feedback(list(truth.items()))
    return batches, truth


def test_live_figures_equal_numpy_on_the_same_rows(database_url: str) -> None:
    """MAE, share within 0.5, interval coverage, Brier and counts per model and type, over the newest 40."""
    with Capture(settings(database_url, live_window=WINDOW), live_ttl_s=0) as capture:
        batches, truth = _traffic(capture)
        report = capture.live()
    expected = _expected(batches, truth, WINDOW)
    assert report.window == WINDOW
    assert (
        {(f.model, f.type) for f in report.models}
        == set(expected)
        == {
            (REGRESSOR_TAG, "red"),
            (REGRESSOR_TAG, "white"),
            ("wine_quality_torch:t1", "red"),
            (CLASSIFIER_TAG, "white"),
        }
    )
    for figures in report.models:
        want = expected[(figures.model, figures.type)]
        assert figures.labelled == want.labelled
        for name in ("mae", "within_half", "interval_coverage", "brier"):
            got, wanted = getattr(figures, name), getattr(want, name)
            assert (got is None) == (wanted is None), name
            if wanted is not None:
                assert np.isclose(got, wanted, rtol=1e-12), (figures.model, figures.type, name, got, wanted)
    assert max(f.labelled for f in report.models) == WINDOW  # the window did cut


def test_the_gauges_carry_the_same_figures(database_url: str) -> None:
    """wine_live_* in Prometheus text: labelled by model and type, absent where a figure is null."""
    with Capture(settings(database_url, live_window=WINDOW), live_ttl_s=0) as capture:
        _traffic(capture)
        report, text = capture.live(), capture.exposition()
    samples = {
        (s.name, s.labels["model"], s.labels["type"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    for figures in report.models:
        for name in ("mae", "within_half", "interval_coverage", "brier", "labelled"):
            key = (f"wine_live_{name}", figures.model, figures.type)
            value = getattr(figures, name)
            assert samples.get(key) == (None if value is None else float(value)), key


def test_scrapes_within_the_cache_time_read_the_database_once(database_url: str) -> None:
    """A second read within the time to live returns the same report, though a new grade arrived meanwhile."""
    with Capture(settings(database_url), live_ttl_s=600) as capture:
        batch = regression_batch(np.random.default_rng(12), 2)
        capture.record(batch)
        capture.feedback([(batch.ids[0], 5)])
        first = capture.live()
        capture.feedback([(batch.ids[1], 6)])
        assert capture.live() is first and first.models[0].labelled == 1


def test_no_labelled_wine_no_figures(database_url: str) -> None:
    """Before any feedback the report is empty and the gauges have no samples."""
    with Capture(settings(database_url), live_ttl_s=0) as capture:
        capture.record(regression_batch(np.random.default_rng(13), 3))
        capture.flush()
        assert capture.live().models == []
        assert all(not f.samples for f in text_string_to_metric_families(capture.exposition()))
