"""Drift monitoring in the entry service: every graded row is kept in a window; /metrics and /monitoring compare it.

The per-request work is an append to this worker's ring buffer (wine_quality/window.py) and, only for values outside
the training range, a Prometheus counter increment; the statistics are computed when they are read, over the
newest rows of every entry worker together, so that each worker answers /metrics with the same drift figures.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from wine_quality.drift import Comparison, Reference
from wine_quality.kinds import KINDS
from wine_quality.schema import FEATURE_NAMES, Wines, WineType, by_type
from wine_quality.served import ServedModel
from wine_quality.settings import DriftSettings
from wine_quality.window import PREDICTION, STAMP, WIDTH, Window, server_folder

logger = logging.getLogger(__name__)
MONITOR_NAME = "wine_quality"  # bentoml.monitor's files: <log_path>/wine_quality/data/data.<worker>.log


class Drift(BaseModel):
    """Recent values against the training distribution; the figures are null while the window is too small."""

    psi: float | None = Field(description="population stability index against the training bins")
    ks: float | None = Field(description="Kolmogorov-Smirnov statistic at the training bins' edges")
    training_quantiles: dict[str, float]
    recent_quantiles: dict[str, float] | None


class FeatureDrift(Drift):
    """One feature's drift, with how many rows of the window lie outside the training range of that feature."""

    outside_training_range: int


class ModelDrift(BaseModel):
    """The drift window of one served model's wines of one type, against that type's training data."""

    model: str = Field(description="the served tag, name:version")
    type: WineType = Field(description="the wines' type: red or white, as they were sent")
    rows: int = Field(description="rows in the window, from every entry worker")
    workers: int = Field(description="entry worker processes those rows came from")
    oldest_s: float | None = Field(description="age of the window's oldest row, seconds")
    features: dict[str, FeatureDrift]
    prediction: Drift = Field(description="predicted grades against the out-of-fold predictions of training")


class MonitoringReport(BaseModel):
    """Drift of the recent inputs and predictions of each served model against its training data."""

    enabled: bool = Field(description="false when the service runs with WINE_DRIFT=false")
    window: int = Field(description="most rows per model in a window (WINE_DRIFT_WINDOW)")
    max_age_s: float = Field(description="older rows leave the window (WINE_DRIFT_MAX_AGE_S)")
    min_rows: int = Field(description="fewer rows: no figures yet (WINE_DRIFT_MIN_ROWS)")
    models: dict[str, dict[WineType, ModelDrift]] = Field(description="model kind -> wine type -> its drift")


@dataclass(frozen=True)
class _Reference:
    tag: str
    low: np.ndarray
    high: np.ndarray
    features: list[Reference]
    prediction: Reference


@cache
def _outside_counter() -> Any:
    # made once per process, in the worker: prometheus_client then writes it to the multiprocess files that
    # BentoML's /metrics sums over every process
    from prometheus_client import Counter as PrometheusCounter

    return PrometheusCounter(
        "wine_outside_training_range",
        "Values received outside the range the model saw in training (for that type), per model, type and feature",
        ["model", "type", "feature"],
    )


class Monitor:
    """Records the rows an entry worker grades, and measures the drift of every worker's recent rows."""

    def __init__(self, served: dict[str, ServedModel], settings: DriftSettings, folder: Path | None = None) -> None:
        self.settings = settings
        self.window = Window(folder or server_folder(), settings.window, settings.max_age_s)
        self.references = {
            (kind, wine_type): _Reference(
                tag=s.tag,
                low=typed.low,
                high=typed.high,
                features=[Reference(typed.reference.features[name]) for name in FEATURE_NAMES],
                prediction=Reference(typed.reference.prediction),
            )
            for kind, s in served.items()
            for wine_type, typed in s.types.items()
        }
        self._outside = _outside_counter()
        self._failed = False
        for kind, wine_type in self.references:  # every series exists from the start, at 0: a rate counts the first
            for name in FEATURE_NAMES:
                self._outside.labels(kind, wine_type, name)

    def observe(self, kind: str, wines: Wines, predicted: np.ndarray, outside: list[list[str]]) -> None:
        """Keep graded wines, each in its type's window, with their grades; count the values outside the training
        range of their type.

        Never raises: monitoring that fails (a full disk, a removed folder) is logged once and costs no answer.
        """
        try:
            for wine_type, of_type in by_type(wines.white):
                self.window.append(f"{kind}-{wine_type}", wines.rows[of_type], predicted[of_type])
            if any(outside):
                counted = Counter((t, name) for t, names in zip(wines.types, outside, strict=True) for name in names)
                for (wine_type, name), n in counted.items():
                    self._outside.labels(kind, wine_type, name).inc(n)
            if self.settings.monitor_log:
                log_rows(kind, wines.rows, predicted)
        except Exception:  # noqa: BLE001 - whatever it is, the answer goes out
            if not self._failed:
                self._failed = True
                logger.exception("drift monitoring failed; answers are unaffected (logged once per process)")

    def model_drift(self, kind: str, wine_type: WineType) -> ModelDrift:
        """The drift of one model's window of one type."""
        ref = self.references[kind, wine_type]
        recent, workers = self.window.recent(f"{kind}-{wine_type}")
        enough = len(recent) >= self.settings.min_rows
        values = recent[:, :WIDTH]
        outside = ((values < ref.low) | (values > ref.high)).sum(axis=0)
        features = {
            name: FeatureDrift(**_drift(r, values[:, i], enough).model_dump(), outside_training_range=int(outside[i]))
            for i, (name, r) in enumerate(zip(FEATURE_NAMES, ref.features, strict=True))
        }
        return ModelDrift(
            model=ref.tag,
            type=wine_type,
            rows=len(recent),
            workers=workers,
            oldest_s=time.time() - float(np.min(recent[:, STAMP])) if len(recent) else None,
            features=features,
            prediction=_drift(ref.prediction, recent[:, PREDICTION], enough),
        )

    def report(self) -> MonitoringReport:
        """Every served model's drift, per type."""
        models: dict[str, dict[WineType, ModelDrift]] = {}
        for kind, wine_type in self.references:
            models.setdefault(kind, {})[wine_type] = self.model_drift(kind, wine_type)
        return report(self.settings, models)


def report(settings: DriftSettings, models: dict[str, dict[WineType, ModelDrift]]) -> MonitoringReport:
    """The /monitoring answer, also when drift monitoring is off (no models then)."""
    s = settings
    return MonitoringReport(
        enabled=s.enabled, window=s.window, max_age_s=s.max_age_s, min_rows=s.min_rows, models=models
    )


def _drift(reference: Reference, values: np.ndarray, enough: bool) -> Drift:
    found: Comparison | None = reference.compare(values) if enough else None
    return Drift(
        psi=found.psi if found else None,
        ks=found.ks if found else None,
        training_quantiles=reference.quantiles,
        recent_quantiles=found.quantiles if found else None,
    )


def log_rows(kind: str, rows: np.ndarray, predicted: np.ndarray) -> None:
    """Log each row's model, features and grade with bentoml.monitor (WINE_MONITOR_LOG=true): one record per row.

    One monitor, MONITOR_NAME, for both models: BentoML's default monitor configures one process-wide logger, so a
    second monitor name in the same process would take over the first one's files.
    """
    import bentoml

    # the first record of a process defines the columns, once each: logged alone, it draws no duplicate warnings
    for part in (slice(0, 1), slice(1, None)):
        if not len(rows[part]):
            continue
        with bentoml.monitor(MONITOR_NAME) as mon:
            mon.log_batch([kind] * len(rows[part]), "model", "feature", "categorical")
            for i, name in enumerate(FEATURE_NAMES):
                mon.log_batch(rows[part, i].tolist(), name, "feature", "numerical")
            mon.log_batch(predicted[part].tolist(), "quality", "prediction", "numerical")


def exposition(monitor: Monitor | None, ready: bool, served: Mapping[str, ServedModel] | None = None) -> str:
    """Prometheus text of the entry service's own gauges, to append to BentoML's /metrics.

    Computed when read, from every entry worker's window, so any worker answers with the same values: gauges of
    the service as a whole, not one per process that Prometheus would have to combine. With the served models, each
    regressor's cross-validated MAE too (whether drift monitoring is on or off).
    """
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector

    ready_gauge = GaugeMetricFamily("wine_ready", "1 when every model service answers its readiness probe (/readyz)")
    ready_gauge.add_metric([], 1.0 if ready else 0.0)
    families = [ready_gauge]
    if served is not None:
        families.append(cv_mae_family(served, GaugeMetricFamily))
    if monitor is not None:
        families += _drift_families(monitor.report(), GaugeMetricFamily)

    class Families(Collector):
        def collect(self) -> Any:
            return families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families())
    return generate_latest(registry).decode()


def cv_mae_family(served: Mapping[str, ServedModel], gauge: Any) -> Any:
    """Each served regressor's cross-validated MAE by tag and type: what the live MAE (wine_live_mae) is held
    against."""
    family = gauge(
        "wine_model_cv_mae",
        "Cross-validated MAE of a served model on a wine type, from its card",
        labels=["model", "type"],
    )
    for kind, s in served.items():
        if KINDS[kind].task == "regression":  # the classifier's live figure is its Brier score, not an MAE
            for wine_type, typed in s.types.items():
                family.add_metric([s.tag, wine_type], typed.card.cv_metrics.mae.mean)
    return family


def _drift_families(report: MonitoringReport, gauge: Any) -> list[Any]:
    labels = ["model", "type"]
    rows = gauge("wine_drift_window_rows", "Rows in the drift window, from every entry worker", labels=labels)
    psi = gauge("wine_feature_drift_psi", "PSI of recent inputs vs training", labels=[*labels, "feature"])
    ks = gauge("wine_feature_drift_ks", "KS of recent inputs vs training, at bin edges", labels=[*labels, "feature"])
    pred_psi = gauge("wine_prediction_drift_psi", "PSI of recent predicted grades vs training", labels=labels)
    pred_ks = gauge("wine_prediction_drift_ks", "KS of recent predicted grades vs training", labels=labels)
    for kind, of_kind in report.models.items():
        for wine_type, m in of_kind.items():
            rows.add_metric([kind, wine_type], m.rows)
            for name, f in m.features.items():
                if f.psi is not None and f.ks is not None:
                    psi.add_metric([kind, wine_type, name], f.psi)
                    ks.add_metric([kind, wine_type, name], f.ks)
            if m.prediction.psi is not None and m.prediction.ks is not None:
                pred_psi.add_metric([kind, wine_type], m.prediction.psi)
                pred_ks.add_metric([kind, wine_type], m.prediction.ks)
    return [rows, psi, ks, pred_psi, pred_ks]
