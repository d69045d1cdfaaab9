"""The monitor of one entry worker: what it keeps per graded row, and what /metrics and /monitoring show from it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from harness.traffic import sample_rows, samples
from train.data import RED, WHITE, split_wines
from train.data import load_wines as load
from wine_quality.drift import drift_reference
from wine_quality.monitoring import Monitor, exposition
from wine_quality.protocols.monitoring import router
from wine_quality.schema import FEATURE_NAMES, Wines
from wine_quality.served import ServedModel
from wine_quality.settings import DriftSettings, Settings


@pytest.fixture(scope="module")
def served() -> dict[str, ServedModel]:
    """A stand-in for a served red-wine model: its tag, and its red wines' training ranges and drift reference."""
    features = split_wines(load(RED), 0.2, 42).x_train[:, : len(FEATURE_NAMES)]
    reference = drift_reference(features, np.random.default_rng(0).normal(5.6, 0.5, 2000))
    red = SimpleNamespace(low=features.min(axis=0), high=features.max(axis=0), reference=reference)
    model = SimpleNamespace(tag="wine_quality_sklearn:test", types={"red": red})
    return {"sklearn": cast(ServedModel, model)}


@pytest.fixture()
def monitor(served: dict[str, ServedModel], tmp_path: Path) -> Monitor:
    return Monitor(served, DriftSettings(window=300, min_rows=50), folder=tmp_path)


def outside(rows: np.ndarray, served: ServedModel) -> list[list[str]]:
    return [
        [FEATURE_NAMES[i] for i in np.nonzero((r < served.types["red"].low) | (r > served.types["red"].high))[0]]
        for r in rows
    ]


def observe(monitor: Monitor, served: ServedModel, rows: np.ndarray) -> None:
    for row in rows:  # as single-row requests come
        monitor.observe("sklearn", Wines.of(row[None, :]), np.array([5.5]), outside(row[None, :], served))


def test_no_figures_before_enough_rows(monitor: Monitor, served: dict[str, ServedModel]) -> None:
    """Below WINE_DRIFT_MIN_ROWS the window is counted but has no PSI: a handful of rows is not a distribution."""
    observe(monitor, served["sklearn"], sample_rows(RED, 20, seed=0))
    drift = monitor.report().models["sklearn"]["red"]
    assert drift.rows == 20 and drift.workers == 1
    assert drift.features["alcohol"].psi is None and drift.prediction.psi is None
    text = exposition(monitor, ready=True)
    assert samples(text, "wine_drift_window_rows") == {("sklearn", "red"): 20.0}
    assert samples(text, "wine_feature_drift_psi") == {}


def test_the_report_and_metrics_show_the_same_drift(monitor: Monitor, served: dict[str, ServedModel]) -> None:
    """White wines sent as red, in a red model's window: /monitoring and /metrics give the same PSI, far above 0.25."""
    white = sample_rows(WHITE, 400, seed=0)
    monitor.observe("sklearn", Wines.of(white), np.full(400, 6.0), outside(white, served["sklearn"]))
    drift = monitor.report().models["sklearn"]["red"]
    assert drift.rows == 300  # the window's size
    text = exposition(monitor, ready=False)
    psi = samples(text, "wine_feature_drift_psi")
    assert {f: d.psi for f, d in drift.features.items()} == {f: psi[f, "sklearn", "red"] for f in FEATURE_NAMES}
    assert psi["total sulfur dioxide", "sklearn", "red"] > 0.25
    assert samples(text, "wine_prediction_drift_psi")[("sklearn", "red")] == drift.prediction.psi
    assert samples(text, "wine_ready") == {(): 0.0}
    sugar = drift.features["residual sugar"]
    low, high = served["sklearn"].types["red"].low[3], served["sklearn"].types["red"].high[3]
    assert sugar.outside_training_range == int(np.sum((white[-300:, 3] < low) | (white[-300:, 3] > high)))
    assert sugar.recent_quantiles is not None and sugar.recent_quantiles["0.5"] > sugar.training_quantiles["0.5"]


def test_values_outside_the_training_range_are_counted(monitor: Monitor, served: dict[str, ServedModel]) -> None:
    """The counter goes up by the number of values outside the range, per feature; values inside leave it alone."""

    def count(feature: str) -> float:
        value = REGISTRY.get_sample_value(
            "wine_outside_training_range_total", {"model": "sklearn", "type": "red", "feature": feature}
        )
        return value or 0.0

    before = {f: count(f) for f in FEATURE_NAMES}
    rows = np.repeat(sample_rows(RED, 1, seed=5), 3, axis=0)
    rows[:2, 3] = 80.0  # residual sugar far above any red wine's
    monitor.observe("sklearn", Wines.of(rows), np.full(3, 5.0), outside(rows, served["sklearn"]))
    after = {f: count(f) - before[f] for f in FEATURE_NAMES}
    assert after == {f: 2.0 if f == "residual sugar" else 0.0 for f in FEATURE_NAMES}


def test_with_drift_off_monitoring_says_so(served: dict[str, ServedModel]) -> None:
    """WINE_DRIFT=false: /monitoring answers 200 with enabled false and no models; /metrics has readiness only."""
    app = FastAPI()
    app.include_router(router)
    app.state.dataplane = SimpleNamespace(
        monitor=None, capture=None, settings=Settings(drift=DriftSettings(enabled=False))
    )
    answer = TestClient(app).get("/monitoring")
    assert answer.status_code == 200
    expected = {"enabled": False, "window": 1000, "max_age_s": 3600.0, "min_rows": 100, "models": {}, "live": None}
    assert answer.json() == expected
    assert [line for line in exposition(None, ready=True).splitlines() if line[0] != "#"] == ["wine_ready 1.0"]


def test_a_failing_monitor_never_costs_an_answer(
    monitor: Monitor, served: dict[str, ServedModel], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """If keeping rows fails (a full disk, say), observe() still returns, and says so in the log once."""

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(monitor.window, "append", broken)
    row = sample_rows(RED, 1, seed=0)
    for _ in range(3):
        monitor.observe("sklearn", Wines.of(row), np.array([5.0]), [[]])
    assert [r.message for r in caplog.records].count(
        "drift monitoring failed; answers are unaffected (logged once per process)"
    ) == 1
