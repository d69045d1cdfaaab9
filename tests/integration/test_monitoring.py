"""Drift monitoring of a real server with two entry workers: red wines, white wines sent as white, white wines sent
as red (left untyped), then red wines again.

The server is this module's own (its own BENTOML_HOME over the session's model store, its own capture database): no
other test's traffic enters its drift window or its live accuracy, and its Prometheus files are its own. The tests
run in order, each on the window the previous one left.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from harness.devserver import Server, start_server
from harness.traffic import feature_psi, private_home, sample_rows, samples, scrape, send_rows
from tests.promtool import (
    ALERTS,
    PromtoolUnavailable,
    dashboard_queries,
    ensure_promtool,
    exported_names,
    metric_names,
    promtool,
    rule_queries,
)
from train.data import RED, WHITE
from wine_quality.monitoring import MONITOR_NAME
from wine_quality.schema import EXAMPLE, FEATURE_NAMES

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WINDOW = 500
# Not made by the service: Prometheus records `up` for every scrape it attempts.
PROMETHEUS_OWN = {"up"}
LIVE = (
    "wine_live_mae",
    "wine_live_within_half",
    "wine_live_interval_coverage",
    "wine_live_brier",
    "wine_live_labelled",
)


@dataclass
class Monitored:
    """The module's server, and every row it has graded with each model, in order."""

    server: Server
    logs: Path
    sent: dict[tuple[str, str], list[np.ndarray]] = field(default_factory=dict)

    def send(self, kind: str, rows: np.ndarray, batch: int = 1, wine_type: str | None = None) -> None:
        """Grade rows; `wine_type` None sends them without a type, so as red wines."""
        send_rows(self.server.url, kind, rows, batch, wine_type=wine_type)
        self.sent.setdefault((kind, wine_type or "red"), []).append(rows)

    def report(self) -> dict[str, object]:
        answer = httpx.get(self.server.url + "/monitoring", timeout=30)
        assert answer.status_code == 200, answer.text
        data: dict[str, object] = answer.json()
        return data


@pytest.fixture(scope="module")
def monitored(trained: dict[str, dict[str, object]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    work = tmp_path_factory.mktemp("drift-home")
    logs = work / "monitor-logs"
    env = {
        "BENTOML_HOME": private_home(work),
        "WINE_ENTRY_WORKERS": "2",
        "WINE_DRIFT_WINDOW": str(WINDOW),
        "WINE_ACCESS_LOG": "false",
        "WINE_MONITOR_LOG": "true",
        "WINE_CAPTURE_DIR": str(work / "capture"),
        "BENTOML_CONFIG_OVERRIDES": json.dumps({"services": {"monitoring": {"options": {"log_path": str(logs)}}}}),
    }
    server = start_server(env=env, log_dir=work)
    yield Monitored(server, logs)
    server.stop()


@pytest.fixture(scope="module")
def labelled(monitored: Monitored) -> str:
    """/metrics once a wine graded by the sklearn model and one classified have their tasters' grades (6 and 5)."""
    url = monitored.server.url
    graded = httpx.post(url + "/predict", json=EXAMPLE, timeout=30).json()
    monitored.sent.setdefault(("sklearn", "red"), []).append(np.array([[EXAMPLE[n] for n in FEATURE_NAMES]]))
    classified = httpx.post(url + "/classify", json=EXAMPLE, timeout=30).json()
    grades = [{"id": graded["id"], "quality": 6}, {"id": classified["id"], "quality": 5}]
    assert httpx.post(url + "/feedback", json=grades, timeout=30).status_code == 200
    deadline = time.monotonic() + 30  # live figures are cached a few seconds
    while True:
        text = scrape(url)
        if all(samples(text, name) for name in LIVE):
            return text
        assert time.monotonic() < deadline, text
        time.sleep(0.5)


def _rule_test(tmp_path: Path, alert: str, values: dict[str, float], firing: list[str]) -> str:
    """A promtool test: each series held at its value for 15 minutes; the alert's expression must give exactly the
    series in `firing` (with their values) at minute 12. promtool's complaint, or "" when it does."""
    series = [{"series": name, "values": f"{v!r}x15"} for name, v in values.items()]
    expected = [{"labels": name, "value": values[name]} for name in firing]
    test = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [{"expr": rule_queries()[alert], "eval_time": "12m", "exp_samples": expected}],
            }
        ],
    }
    path = tmp_path / "scraped.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    try:
        ensure_promtool()
    except PromtoolUnavailable as exc:
        pytest.skip(f"no promtool: {exc}")
    done = promtool("test", "rules", str(path), cwd=tmp_path)
    return done.stdout + done.stderr if done.returncode else ""


def _psi_alert_test(tmp_path: Path, psi: dict[tuple[str, ...], float], firing: list[tuple[str, ...]]) -> str:
    """The scraped PSI values held for 15 minutes: the drift rule's expression must give `firing`."""
    name = 'wine_feature_drift_psi{{feature="{}", model="{}", type="{}"}}'.format
    values = {name(*labels): v for labels, v in psi.items()}
    return _rule_test(tmp_path, "WineFeatureDrift", values, [name(*labels) for labels in firing])


def test_red_wines_keep_every_psi_low_and_both_workers_report_the_same(monitored: Monitored, tmp_path: Path) -> None:
    """500 red rows (one per request, to the sklearn model; in batches to the torch model) keep every feature's
    PSI below 0.1; the window holds rows from both entry workers, and every /metrics read gives the same figures."""
    red = sample_rows(RED, WINDOW, seed=1)
    monitored.send("sklearn", red)
    monitored.send("torch", red, batch=25)
    report = monitored.report()
    models = report["models"]
    assert isinstance(models, dict)
    for kind in ("sklearn", "torch"):
        assert models[kind]["red"]["rows"] == WINDOW and models[kind]["white"]["rows"] == 0
        assert models[kind]["red"]["workers"] == 2  # the window is the service's, not one worker's share
    reads = [scrape(monitored.server.url) for _ in range(6)]  # new connections: both workers answer some
    figures = [samples(text, "wine_feature_drift_psi") for text in reads]
    assert all(f == figures[0] for f in figures)
    psi = figures[0]
    assert {f for f, _, _ in psi} == set(FEATURE_NAMES) and {(m, t) for _, m, t in psi} == {
        ("sklearn", "red"),
        ("torch", "red"),
    }
    assert max(psi.values()) < 0.1, psi
    for kind in ("sklearn", "torch"):
        for name in FEATURE_NAMES:
            assert models[kind]["red"]["features"][name]["psi"] == pytest.approx(psi[name, kind, "red"])
    windows = {
        (kind, t): WINDOW if kind != "classifier" and t == "red" else 0 for kind in models for t in ("red", "white")
    }
    assert samples(reads[0], "wine_drift_window_rows") == windows
    assert samples(reads[0], "wine_ready") == {(): 1.0}
    assert _psi_alert_test(tmp_path, psi, firing=[]) == ""  # the drift alert's expression stays quiet


def test_white_wines_sent_as_white_are_no_drift(monitored: Monitored, tmp_path: Path) -> None:
    """500 white rows sent as white (one per request, and in batches with a type column) fill each model's white
    window and keep every PSI there below 0.1: the white wines' own training data is their reference. The red
    windows are untouched, and the drift rule stays quiet."""
    white = sample_rows(WHITE, WINDOW, seed=4)
    monitored.send("sklearn", white, wine_type="white")
    monitored.send("torch", white, batch=25, wine_type="white")
    text = scrape(monitored.server.url)
    for kind in ("sklearn", "torch"):
        as_white = feature_psi(text, kind, "white")
        assert set(as_white) == set(FEATURE_NAMES) and max(as_white.values()) < 0.1, (kind, as_white)
        assert max(feature_psi(text, kind, "red").values()) < 0.1
    assert monitored.report()["models"]["sklearn"]["white"]["rows"] == WINDOW  # type: ignore[index]
    psi = samples(text, "wine_feature_drift_psi")
    assert _psi_alert_test(tmp_path, psi, firing=[]) == ""


def test_white_wines_sent_as_red_push_the_drift_above_the_alert_level(monitored: Monitored, tmp_path: Path) -> None:
    """500 white rows sent without a type (so as red) to the sklearn model: in its red window, total sulfur
    dioxide's and residual sugar's PSI rise above 0.25, the drift rule's expression holds for them on the scraped
    values, the torch model's red window is untouched, and the out-of-range counters count every value outside the
    red training range, summed over both workers."""
    monitored.send("sklearn", sample_rows(WHITE, WINDOW, seed=2), batch=25)
    text = scrape(monitored.server.url)
    psi = samples(text, "wine_feature_drift_psi")
    sklearn, torch = feature_psi(text, "sklearn"), feature_psi(text, "torch")
    assert sklearn["total sulfur dioxide"] > 0.25 and sklearn["residual sugar"] > 0.25, sklearn
    assert max(torch.values()) < 0.1, torch
    assert max(feature_psi(text, "sklearn", "white").values()) < 0.1  # the white window holds real white wines
    grades = samples(text, "wine_prediction_drift_psi")
    assert {m for m, _ in grades} == {"sklearn", "torch"}
    drifted = [labels for labels, v in psi.items() if v > 0.25]
    assert ("total sulfur dioxide", "sklearn", "red") in drifted and all(t == "red" for _, _, t in drifted)
    assert _psi_alert_test(tmp_path, psi, firing=drifted) == ""

    types = httpx.get(monitored.server.url + "/models").json()["models"]["sklearn"]["types"]
    counted = samples(text, "wine_outside_training_range_total")
    for wine_type in ("red", "white"):
        graded = np.concatenate(monitored.sent["sklearn", wine_type])
        for i, name in enumerate(FEATURE_NAMES):
            low, high = types[wine_type]["feature_ranges"][name]
            expected = int(np.sum((graded[:, i] < low) | (graded[:, i] > high)))
            assert counted[name, "sklearn", wine_type] == expected, (wine_type, name)
    assert counted["residual sugar", "sklearn", "red"] > 0
    report = monitored.report()["models"]["sklearn"]["red"]  # type: ignore[index]
    so2 = report["features"]["total sulfur dioxide"]
    assert so2["recent_quantiles"]["0.5"] > 2 * so2["training_quantiles"]["0.5"]  # white wines hold far more SO2


def test_the_window_forgets(monitored: Monitored) -> None:
    """After another 500 red rows the white ones have left the window: every feature's PSI is back below 0.1."""
    monitored.send("sklearn", sample_rows(RED, WINDOW, seed=3), batch=20)
    sklearn = feature_psi(scrape(monitored.server.url), "sklearn")
    assert max(sklearn.values()) < 0.1, sklearn


def test_every_graded_row_is_logged_with_bentoml_monitor(monitored: Monitored) -> None:
    """WINE_MONITOR_LOG=true: one JSON record per graded row, with its model, 11 features and grade, in BentoML's
    files (one per entry worker)."""
    files = sorted((monitored.logs / MONITOR_NAME / "data").glob("data.*.log"))
    records = [json.loads(line) for f in files for line in f.read_text().splitlines() if line]
    for kind in ("sklearn", "torch"):
        graded = np.concatenate([rows for (k, _), sent in monitored.sent.items() if k == kind for rows in sent])
        logged = [r for r in records if r["model"] == kind]
        assert len(logged) == len(graded), kind
        assert sorted(r["alcohol"] for r in logged) == sorted(graded[:, -1].tolist()), kind
    assert set(FEATURE_NAMES) | {"model", "quality", "timestamp", "request_id"} <= set(records[0])
    assert all(0 <= r["quality"] <= 10 for r in records)


def test_the_dashboard_and_the_alerts_read_only_metrics_the_service_exports(labelled: str) -> None:
    """Every metric name in the Grafana dashboard's and the alert rules' queries is on the real /metrics (with
    tasters' grades received, so that the live accuracy gauges are there)."""
    exported = exported_names(labelled)
    queries = {**rule_queries(), **dashboard_queries()}
    missing = {title: metric_names(q) - exported - PROMETHEUS_OWN for title, q in queries.items()}
    assert {title: names for title, names in missing.items() if names} == {}
    assert "bentoml_service_adaptive_batch_size_bucket" in exported


def test_monitoring_is_in_the_openapi_document(monitored: Monitored) -> None:
    """GET /monitoring is documented with its response schema: the drift report and the live accuracy."""
    doc = httpx.get(monitored.server.url + "/docs.json").json()
    ok = doc["paths"]["/monitoring"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/Monitoring")
    assert {"models", "live"} <= set(doc["components"]["schemas"]["Monitoring"]["properties"])
    assert {"ModelDrift", "LiveAccuracy"} <= set(doc["components"]["schemas"])


def test_the_live_accuracy_alert_matches_each_tag_with_its_cards_mae(
    monitored: Monitored, labelled: str, tmp_path: Path
) -> None:
    """wine_model_cv_mae is each served regressor's card MAE by tag, and the live accuracy alert's expression joins
    it to the exported wine_live_* series: held 0.2 worse with 150 labels, the sklearn tag's red wines fire; the same
    with the scraped label count (1), or 0.1 worse, not."""
    described = httpx.get(monitored.server.url + "/models", timeout=30).json()["models"]
    cv = samples(labelled, "wine_model_cv_mae")
    assert cv == {
        (described[k]["tag"], t): described[k]["types"][t]["cv_metrics"]["mae"]["mean"]
        for k in ("sklearn", "torch")
        for t in ("red", "white")
    }
    tag = described["sklearn"]["tag"]
    counted = samples(labelled, "wine_live_labelled")
    assert counted == {(tag, "red"): 1.0, (described["classifier"]["tag"], "red"): 1.0}
    series = 'wine_live_{}{{model="{}", type="red"}}'.format
    cv_series = {f'wine_model_cv_mae{{model="{t}", type="{w}"}}': v for (t, w), v in cv.items()}
    worse = {**cv_series, series("mae", tag): cv[tag, "red"] + 0.2, series("labelled", tag): 150.0}
    assert _rule_test(tmp_path, "WineLiveErrorAboveCard", worse, firing=[series("mae", tag)]) == ""
    few = {**worse, series("labelled", tag): counted[tag, "red"]}
    assert _rule_test(tmp_path, "WineLiveErrorAboveCard", few, firing=[]) == ""
    close = {**worse, series("mae", tag): cv[tag, "red"] + 0.1}
    assert _rule_test(tmp_path, "WineLiveErrorAboveCard", close, firing=[]) == ""
