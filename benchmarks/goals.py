"""The issue's targets checked against one benchmark run, and our figures as ratios to the peers'."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OURS, NO_BATCHING, NO_COALESCING, SEED = "ours", "ours-no-batching", "ours-no-coalescing", "seed"
NO_DRIFT, NO_CAPTURE = "ours-no-drift", "ours-no-capture"
DRIFT_COST_CEILING = 0.05  # drift tracking may cost at most 5 % of the single-row throughput
CAPTURE_THROUGHPUT_FLOOR = 0.90  # with capture on, at least 90 % of the single-row req/s with it off
CAPTURE_P99_CEILING = 1.20  # and a p99 at most 20 % higher
MLSERVER_PREFIX = "mlserver"
MANY, ONE = 32, 1  # the clients the targets name
SINGLE_ROUTES = ("/predict", "/predict_net")
ROWS_FLOOR = {"torch": 200_000, "sklearn": 100_000}
RSS_CEILING_MB = 500
OURS_V2_ROUTE = "/v2/models/wine-quality-sklearn/infer"
PROTOCOL_COST_CEILING = 0.10  # the V2 layer may cost at most 10 % of our JSON endpoints' throughput
READY_CEILING_S = 3.0

Runs = list[dict[str, Any]]


@dataclass(frozen=True)
class Goal:
    """One target of the issue: what was measured, and whether it holds (None: not measured in this run)."""

    name: str
    measured: str
    met: bool | None


def find(runs: Runs, target: str | None, name: str, clients: int) -> dict[str, Any] | None:
    """The run of a target on a route (or batch name) at a number of clients, if measured."""
    return next((r for r in runs if r["target"] == target and r["name"] == name and r["clients"] == clients), None)


def single_row(runs: Runs, target: str, clients: int) -> dict[str, Any] | None:
    """A target's single-row run at a number of clients (for peers that serve one single-row route)."""
    return next(
        (r for r in runs if r["target"] == target and r["rows_per_request"] == 1 and r["clients"] == clients), None
    )


def pick_mlserver(runs: Runs) -> str | None:
    """Of the MLServer set-ups measured, the one with the most single-row requests/s at 32 clients."""
    candidates = [r for r in runs if r["target"].startswith(MLSERVER_PREFIX) and r["rows_per_request"] == 1]
    best = max((r for r in candidates if r["clients"] == MANY), key=lambda r: r["requests_per_s"], default=None)
    if best is None:
        return candidates[0]["target"] if candidates else None
    return str(best["target"])


def _missing(name: str) -> Goal:
    return Goal(name, "not measured in this run", None)


def _ratio(name: str, ours: dict[str, Any] | None, theirs: dict[str, Any] | None, key: str, at_least: float) -> Goal:
    """Ours against a peer on one figure: requests/s at least `at_least` times theirs (or, for a latency,
    at most 1/`at_least` of it)."""
    if not (ours and theirs):
        return _missing(name)
    ratio = ours[key] / theirs[key]
    unit = "req/s" if key == "requests_per_s" else "ms"
    digits = 1 if unit == "req/s" else 2
    text = f"{ours[key]:,.{digits}f} vs {theirs[key]:,.{digits}f} {unit} ({ratio:.2f} x)"
    return Goal(name, text, ratio >= at_least if unit == "req/s" else ratio <= 1 / at_least)


def _throughput_goals(runs: Runs, mlserver: str | None) -> list[Goal]:
    out = []
    ml = single_row(runs, mlserver, MANY) if mlserver else None
    seed = find(runs, SEED, "/predict", MANY)
    for route in SINGLE_ROUTES:
        ours = find(runs, OURS, route, MANY)
        model = "same extra-trees model" if route == "/predict" else "MLServer serves only the extra-trees model here"
        out.append(_ratio(f"`{route}`, {MANY} clients: >= MLServer's req/s ({model})", ours, ml, "requests_per_s", 1))
        out.append(
            _ratio(f"`{route}`, {MANY} clients: >= 3 x the seed's `/predict` req/s", ours, seed, "requests_per_s", 3)
        )
        out.append(_ratio(f"`{route}`, {MANY} clients: p99 <= half the seed's `/predict` p99", ours, seed, "p99_ms", 2))
        name = f"`{route}`, {MANY} clients: 0 failed"
        out.append(Goal(name, f"{ours['failures']} failed", ours["failures"] == 0) if ours else _missing(name))
    return out


def _per_route(runs: Runs, label: str, versus: tuple[str, str], clients: int, key: str, at_least: float) -> list[Goal]:
    """One goal a single-wine route: the first target against the second at that many clients; `label` is a
    format string of {route}."""
    ours, theirs = versus
    return [
        _ratio(
            label.format(route=route),
            find(runs, ours, route, clients),
            find(runs, theirs, route, clients),
            key,
            at_least,
        )
        for route in SINGLE_ROUTES
    ]


def _batch_goals(runs: Runs) -> list[Goal]:
    out = []
    for model, floor in ROWS_FLOOR.items():
        for form in ("samples", "columns"):
            mine = [r for r in runs if r["target"] == OURS and r["model"] == model and r["form"] == form]
            mine = [r for r in mine if r["rows_per_request"] > 1]
            name = f"`/predict_batch`, {model}, 1,000-row requests as `{form}`: >= {floor:,} rows/s"
            if not mine:
                out.append(_missing(name))
                continue
            best = max(mine, key=lambda r: r["requests_per_s"] * r["rows_per_request"])
            rows = best["requests_per_s"] * best["rows_per_request"]
            clients = f"{best['clients']} client{'s' * (best['clients'] > 1)}"
            out.append(Goal(name, f"{rows:,.0f} rows/s (the best, at {clients})", rows >= floor))
    return out


def _capture_goals(runs: Runs) -> list[Goal]:
    """Ours against the same service with WINE_CAPTURE=false: single rows at 32 clients, req/s and p99."""
    out = []
    for route in SINGLE_ROUTES:
        on, off, at = find(runs, OURS, route, MANY), find(runs, NO_CAPTURE, route, MANY), f"`{route}`, {MANY} clients"
        rate = f"{at}: capture on >= {CAPTURE_THROUGHPUT_FLOOR:.0%} of its req/s off"
        p99 = f"{at}: capture on, p99 <= {CAPTURE_P99_CEILING:.1f} x its p99 off"
        out += [
            _ratio(rate, on, off, "requests_per_s", CAPTURE_THROUGHPUT_FLOOR),
            _ratio(p99, on, off, "p99_ms", 1 / CAPTURE_P99_CEILING),
        ]
    return out


def _protocol_goals(runs: Runs) -> list[Goal]:
    """Our V2 route against our JSON routes on the same model: single rows at 32 clients, 1,000-row batches at best."""

    def best_rows(name: str) -> dict[str, Any] | None:
        mine = [r for r in runs if r["target"] == OURS and r["name"] == name]
        return max(mine, key=lambda r: r["requests_per_s"], default=None)

    floor = 1 - PROTOCOL_COST_CEILING
    single = f"`{OURS_V2_ROUTE}`, {MANY} clients: >= {floor:.0%} of `/predict`'s req/s"
    batch_v2 = best_rows(f"{OURS_V2_ROUTE} [sklearn, 1,000 rows, V2 tensor]")
    batch_json = best_rows("/predict_batch [sklearn, 1,000 rows, samples]")
    return [
        _ratio(
            single, find(runs, OURS, OURS_V2_ROUTE, MANY), find(runs, OURS, "/predict", MANY), "requests_per_s", floor
        ),
        _ratio(
            f"`{OURS_V2_ROUTE}`, 1,000-row tensors: >= {floor:.0%} of `/predict_batch`'s rows/s (samples, best)",
            batch_v2,
            batch_json,
            "requests_per_s",
            floor,
        ),
    ]


def goals(results: dict[str, Any]) -> list[Goal]:
    """Every target of the issue, in the issue's order."""
    runs: Runs = results["runs"]
    failed = sum(r["failures"] for r in runs) + sum(results.get("warmup_failures", {}).values())
    out = [
        Goal("0 failed requests in every run, warm-ups included", f"{failed} failed in {len(runs)} runs", failed == 0)
    ]
    out += _throughput_goals(runs, results.get("mlserver"))
    out += _per_route(
        runs, f"`{{route}}`, {ONE} client: p50 <= the seed's p50 on `{{route}}`", (OURS, SEED), ONE, "p50_ms", 1
    )
    out += _batch_goals(runs)
    drift = f"`{{route}}`, {MANY} clients: drift tracking on >= {1 - DRIFT_COST_CEILING:.0%} of its req/s off"
    out += _per_route(runs, drift, (OURS, NO_DRIFT), MANY, "requests_per_s", 1 - DRIFT_COST_CEILING)
    out += _capture_goals(runs)
    out += _protocol_goals(runs)
    ours = results["targets"].get(OURS)
    name = f"all serving processes <= {RSS_CEILING_MB} MB RSS at peak"
    out.append(
        Goal(name, f"{ours['peak_rss_mb']:.0f} MB", ours["peak_rss_mb"] <= RSS_CEILING_MB) if ours else _missing(name)
    )
    name = f"`bentoml serve` to ready < {READY_CEILING_S:g} s"
    out.append(Goal(name, f"{ours['ready_s']:.2f} s", ours["ready_s"] < READY_CEILING_S) if ours else _missing(name))
    return out


@dataclass(frozen=True)
class Ratio:
    """Our run against a peer's run of the same kind: throughput, p50 and p99 as ours / theirs."""

    ours: dict[str, Any]
    theirs: dict[str, Any]

    @property
    def throughput(self) -> float:
        ours = self.ours["requests_per_s"] * self.ours["rows_per_request"]
        return float(ours / (self.theirs["requests_per_s"] * self.theirs["rows_per_request"]))

    @property
    def p50(self) -> float:
        return float(self.ours["p50_ms"] / self.theirs["p50_ms"])

    @property
    def p99(self) -> float:
        return float(self.ours["p99_ms"] / self.theirs["p99_ms"])


def ratios(results: dict[str, Any], peer: str) -> list[Ratio]:
    """Our runs set against the same kind of run of a peer (or of one of our variants), where both were measured.

    The seed and our variants pair by route; MLServer pairs single rows with single rows (it serves the extra-trees
    model only) and its 1,000-row tensors with our 1,000-row scikit-learn batches.
    """
    runs: Runs = results["runs"]
    out = []
    for mine in (r for r in runs if r["target"] == OURS):
        if peer.startswith(MLSERVER_PREFIX):
            rows, same_model = mine["rows_per_request"], mine["rows_per_request"] == 1 or mine["model"] == "sklearn"
            theirs = next(
                (
                    r
                    for r in runs
                    if r["target"] == peer and r["rows_per_request"] == rows and r["clients"] == mine["clients"]
                ),
                None,
            )
            theirs = theirs if same_model else None
        else:
            theirs = find(runs, peer, mine["name"], mine["clients"])
        if theirs:
            out.append(Ratio(mine, theirs))
    return out
