"""The benchmark's verdicts: targets checked against the right peer run, ratios paired like with like."""

from __future__ import annotations

from typing import Any

from benchmarks import goals
from benchmarks.load import parse_wrk


def _run(target: str, name: str, clients: int, rps: float, p50: float, p99: float, **extra: Any) -> dict[str, Any]:
    rows = extra.get("rows", 1)
    return {
        "target": target,
        "name": name,
        "route": name.split(" [")[0],
        "model": extra.get("model", "torch" if name == "/predict_net" else "sklearn"),
        "form": extra.get("form", "object"),
        "rows_per_request": rows,
        "clients": clients,
        "requests_per_s": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "failures": extra.get("failures", 0),
    }


V2 = "/v2/models/wine-et/infer"


def _results() -> dict[str, Any]:
    runs = [
        _run("ours", "/predict", 32, 2000, 10, 40),
        _run("ours", "/predict_net", 32, 1500, 12, 120),
        _run("ours", "/predict", 1, 500, 1.0, 3),
        _run("ours", "/predict_net", 1, 500, 3.0, 5),
        _run("ours", "/predict_batch [torch]", 1, 250, 4, 8, rows=1000, model="torch", form="columns"),
        _run("ours", "/predict_batch [torch]", 4, 150, 4, 8, rows=1000, model="torch", form="samples"),
        _run("ours", "/predict_batch [sklearn]", 1, 50, 20, 30, rows=1000, form="columns"),
        _run("seed", "/predict", 32, 600, 50, 100),
        _run("seed", "/predict_net", 32, 300, 100, 200),
        _run("seed", "/predict", 1, 400, 1.5, 40),
        _run("seed", "/predict_net", 1, 240, 2.5, 50),
        _run("mlserver-workers-0", V2, 32, 800, 35, 170),
        _run("mlserver-workers-default", V2, 32, 400, 80, 300),
        _run("mlserver-workers-0", V2, 1, 50, 20, 60),
        _run("mlserver-workers-0", f"{V2} [sklearn]", 1, 20, 40, 60, rows=1000, form="V2 tensor"),
    ]
    ours = {"label": "ours", "ready_s": 2.5, "peak_rss_mb": 520}
    return {"runs": runs, "targets": {"ours": ours}, "warmup_failures": {}, "mlserver": goals.pick_mlserver(runs)}


def _verdicts() -> dict[str, bool | None]:
    return {g.name: g.met for g in goals.goals(_results())}


def test_the_faster_mlserver_set_up_is_the_one_compared() -> None:
    """Of two MLServer set-ups, the one with more req/s at 32 clients stands for MLServer."""
    assert goals.pick_mlserver(_results()["runs"]) == "mlserver-workers-0"


def test_each_target_is_checked_against_its_own_reference() -> None:
    """Throughput against the seed's /predict, p50 against the seed's same endpoint, p99 against half the seed's."""
    met = _verdicts()
    assert met["`/predict`, 32 clients: >= MLServer's req/s (same extra-trees model)"] is True
    assert met["`/predict`, 32 clients: >= 3 x the seed's `/predict` req/s"] is True
    assert met["`/predict_net`, 32 clients: >= 3 x the seed's `/predict` req/s"] is False  # 1500 < 1800
    assert met["`/predict`, 32 clients: p99 <= half the seed's `/predict` p99"] is True
    assert met["`/predict_net`, 32 clients: p99 <= half the seed's `/predict` p99"] is False  # 120 > 50
    assert met["`/predict`, 1 client: p50 <= the seed's p50 on `/predict`"] is True
    assert met["`/predict_net`, 1 client: p50 <= the seed's p50 on `/predict_net`"] is False  # 3.0 > 2.5


def test_batch_floors_take_the_best_client_count_per_form_and_missing_runs_are_not_judged() -> None:
    """250 x 1,000 rows/s meets the network's floor; 150 x 1,000 does not; an unmeasured form is n/a."""
    met = _verdicts()
    assert met["`/predict_batch`, torch, 1,000-row requests as `columns`: >= 200,000 rows/s"] is True
    assert met["`/predict_batch`, torch, 1,000-row requests as `samples`: >= 200,000 rows/s"] is False
    assert met["`/predict_batch`, sklearn, 1,000-row requests as `samples`: >= 100,000 rows/s"] is None
    assert met["all serving processes <= 500 MB RSS at peak"] is False
    assert met["`bentoml serve` to ready < 3 s"] is True


def test_a_failed_warm_up_request_fails_the_zero_failures_target() -> None:
    """Failures count whether they happened in a measured run or in a warm-up."""
    results = _results()
    results["warmup_failures"] = {"seed": 1}
    assert goals.goals(results)[0].met is False


def test_mlserver_ratios_pair_single_rows_and_scikit_learn_batches_only() -> None:
    """Both single-row endpoints meet MLServer's single rows; a network batch has no MLServer counterpart."""
    pairs = goals.ratios(_results(), "mlserver-workers-0")
    paired = sorted((p.ours["name"], p.ours["clients"], p.theirs["clients"]) for p in pairs)
    assert paired == [
        ("/predict", 1, 1),
        ("/predict", 32, 32),
        ("/predict_batch [sklearn]", 1, 1),
        ("/predict_net", 1, 1),
        ("/predict_net", 32, 32),
    ]
    batch = next(p for p in pairs if p.ours["rows_per_request"] > 1)
    assert batch.throughput == 50 / 20


def test_wrk_output_is_parsed_with_failures_summed() -> None:
    """Non-2xx answers and every kind of socket error count as failures; latencies come back in ms."""
    out = """Running 3s test @ http://127.0.0.1:1/predict
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    2.00ms
     99%    1.50s
  3000 requests in 3.00s, 1.00MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:   1000.50
"""
    figures = parse_wrk(out)
    assert figures == {"requests": 3000, "requests_per_s": 1000.5, "p50_ms": 0.812, "p99_ms": 1500.0, "failures": 7}


def test_drift_tracking_is_judged_against_the_same_service_without_it() -> None:
    """On at 96 % of off meets the 5 % ceiling; on at 94 % does not; unmeasured, it is not judged."""
    results = _results()
    assert _verdicts()["`/predict`, 32 clients: drift tracking on >= 95% of its req/s off"] is None
    results["runs"] += [
        _run(goals.NO_DRIFT, "/predict", 32, 2000 / 0.96, 10, 40),
        _run(goals.NO_DRIFT, "/predict_net", 32, 1500 / 0.94, 12, 120),
    ]
    met = {g.name: g.met for g in goals.goals(results)}
    assert met["`/predict`, 32 clients: drift tracking on >= 95% of its req/s off"] is True
    assert met["`/predict_net`, 32 clients: drift tracking on >= 95% of its req/s off"] is False


def test_capture_is_judged_against_the_same_service_without_it() -> None:
    """Capture on at 91 % of off's req/s with p99 1.19 x meets both goals; 89 % or p99 1.21 x does not; unmeasured,
    neither is judged."""
    results = _results()
    name = "`/predict`, 32 clients: capture on >= 90% of its req/s off"
    p99 = "`/predict`, 32 clients: capture on, p99 <= 1.2 x its p99 off"
    assert _verdicts()[name] is None and _verdicts()[p99] is None
    results["runs"] += [
        _run(goals.NO_CAPTURE, "/predict", 32, 2000 / 0.91, 10, 40 / 1.19),
        _run(goals.NO_CAPTURE, "/predict_net", 32, 1500 / 0.89, 12, 120 / 1.21),
    ]
    met = {g.name: g.met for g in goals.goals(results)}
    assert met[name] is True and met[p99] is True
    assert met[name.replace("/predict`", "/predict_net`")] is False
    assert met[p99.replace("/predict`", "/predict_net`")] is False
