"""The operator kit in deploy/monitoring: alert rules, their unit tests, the Prometheus config, the dashboard."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.promtool import KIT, PromtoolUnavailable, dashboard_queries, ensure_promtool, metric_names, promtool


@pytest.fixture(scope="module", autouse=True)
def _promtool() -> None:
    try:
        ensure_promtool()
    except PromtoolUnavailable as exc:
        pytest.skip(f"no promtool: {exc}")


def test_the_alert_rules_parse() -> None:
    """`promtool check rules` accepts alerts.yml: drift, prediction drift, live accuracy, 5xx, p99 latency, readiness,
    down."""
    done = promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout


def test_the_drift_alert_fires_after_ten_minutes_and_stays_quiet_otherwise() -> None:
    """alerts.test.yml's series: PSI 0.9 fires after 10 minutes (not at 9), PSI 0.2 and a 9-minute burst never do;
    a live MAE 0.25 above the card's fires after 30 minutes (not at 29), not with 60 labelled wines, not 0.10 above;
    5 % of 500s, a slow p99, a model service down and a failed scrape each fire their alert."""
    done = promtool("test", "rules", "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_prometheus_config_loads_the_rules() -> None:
    """The example configuration scrapes the service and loads alerts.yml."""
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """Each panel's query, Grafana's variables filled in, parses (promtool checks it as a recording rule)."""
    queries = dashboard_queries()
    rules = [{"record": f"dashboard_query_{i}", "expr": q} for i, q in enumerate(queries.values())]
    (tmp_path / "dashboard.rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = promtool("check", "rules", "dashboard.rules.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboard_shows_traffic_latency_batches_drift_out_of_range_values_and_live_accuracy() -> None:
    """Throughput, latency percentiles, batch sizes, drift per feature, out-of-range counts and each live accuracy
    figure (the MAE beside the card's) have a panel."""
    used = set().union(*(metric_names(q) for q in dashboard_queries().values()))
    assert {
        "bentoml_service_request_total",
        "bentoml_service_request_duration_seconds_bucket",
        "bentoml_service_adaptive_batch_size_bucket",
        "wine_feature_drift_psi",
        "wine_prediction_drift_psi",
        "wine_outside_training_range_total",
        "wine_live_mae",
        "wine_model_cv_mae",
        "wine_live_within_half",
        "wine_live_interval_coverage",
        "wine_live_brier",
        "wine_live_labelled",
    } <= used
    assert (KIT / "grafana" / "wine-quality.json").stat().st_size < 64_000
