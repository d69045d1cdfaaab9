"""Turn benchmark results into BENCHMARKS.md, a PNG chart and a JSON file beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COMPOSED, NO_BATCH, ONE = "composed, batching on", "composed, batching off", "one process"


def _find(runs: list[dict[str, Any]], variant: str, route: str, connections: int) -> dict[str, Any] | None:
    return next(
        (r for r in runs if r["variant"] == variant and r["route"] == route and r["connections"] == connections), None
    )


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Each target of issue 4 with what was measured and whether it holds."""
    runs = results["runs"]
    out: list[tuple[str, str, bool]] = []
    failures = sum(r["failures"] for r in runs)
    out.append(("zero failed requests in every run", f"{failures} failed in {len(runs)} runs", failures == 0))
    c32, one32 = _find(runs, COMPOSED, "/predict", 32), _find(runs, ONE, "/predict", 32)
    if c32 and one32:
        out.append(
            (
                "/predict, composed + batching, 32 clients: >= 1,200 req/s",
                f"{c32['requests_per_s']:.0f} req/s",
                c32["requests_per_s"] >= 1200,
            )
        )
        out.append(("... p99 under 100 ms", f"{c32['p99_ms']:.1f} ms", c32["p99_ms"] < 100))
        ratio = c32["requests_per_s"] / one32["requests_per_s"]
        out.append(("... at least 0.9 of the one-process variant", f"{ratio:.2f}", ratio >= 0.9))
    wide = max((r["connections"] for r in runs if r["route"] == "/predict_net"), default=0)
    on, off = _find(runs, COMPOSED, "/predict_net", wide), _find(runs, NO_BATCH, "/predict_net", wide)
    if on and off and wide >= 64:
        gain = on["requests_per_s"] / off["requests_per_s"]
        out.append((f"/predict_net, {wide} clients: batching on >= 1.5 x off", f"{gain:.2f} x", gain >= 1.5))
    for kind, floor in (("sklearn", 200_000), ("torch", 100_000)):
        route = f"/predict_batch [{kind}]"
        best = max(
            (r for r in runs if r["variant"] == COMPOSED and r["route"] == route),
            key=lambda r: r["requests_per_s"],
            default=None,
        )
        one = _find(runs, COMPOSED, route, 1)
        if best:
            rows = best["requests_per_s"] * best["rows_per_request"]
            out.append((f"{route}, 1,000-row requests: >= {floor:,} rows/s", f"{rows:,.0f} rows/s", rows >= floor))
        if one:
            model = results["model_predict_ms_1000_rows"][kind]
            share = 1 - model / one["p50_ms"]
            out.append(
                (
                    f"{route}: all but the model's predict <= 25 % of a request",
                    f"{share:.0%} ({one['p50_ms']:.1f} ms request, {model:.1f} ms predict)",
                    share <= 0.25,
                )
            )
    ready = results["ready_s"].get(COMPOSED)
    if ready is not None:
        out.append(("ready under 5 s after `bentoml serve`", f"{ready:.1f} s", ready < 5))
    memory = results["peak_memory_mb"].get(COMPOSED)
    if memory is not None:
        out.append(("all serving processes under 800 MB", f"{memory:.0f} MB peak", memory < 800))
    return out


def chart(results: dict[str, Any], path: Path) -> None:
    """Throughput and p50/p99 latency against concurrent clients, per endpoint and variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for row, route in enumerate(("/predict", "/predict_net")):
        for variant, color in ((COMPOSED, "tab:blue"), (NO_BATCH, "tab:orange"), (ONE, "tab:green")):
            mine = sorted(
                (r for r in runs if r["variant"] == variant and r["route"] == route), key=lambda r: r["connections"]
            )
            if not mine:
                continue
            x = [r["connections"] for r in mine]
            axes[row][0].plot(x, [r["requests_per_s"] for r in mine], "o-", color=color, label=variant)
            axes[row][1].plot(x, [r["p50_ms"] for r in mine], "o-", color=color, label=f"{variant} p50")
            axes[row][1].plot(x, [r["p99_ms"] for r in mine], "s--", color=color, label=f"{variant} p99")
        axes[row][0].set(title=f"{route}: throughput", xlabel="concurrent clients", ylabel="requests/s", xscale="log")
        axes[row][1].set(
            title=f"{route}: latency", xlabel="concurrent clients", ylabel="ms", xscale="log", yscale="log"
        )
        for ax in axes[row]:
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(f"wine-quality service on {results['machine']['cores']} cores ({results['when']})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(results: dict[str, Any], out: Path) -> None:
    """Write the markdown report, its chart and the raw results."""
    png, raw = out.with_suffix(".png"), out.with_suffix(".json")
    chart(results, png)
    raw.write_text(json.dumps(results, indent=1) + "\n")
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` on {results['when']}; do not edit by hand. Raw figures: `{raw.name}`.",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GiB; Python {m['python']}, "
        f"BentoML {m['bentoml']}, torch {m['torch']}, scikit-learn {m['scikit-learn']}. "
        f"Load average before the run: {', '.join(f'{v:.2f}' for v in m['load_average_before'])}.",
        "",
        f"Load generator: {m['load_generator']}, one thread, on the same machine (it uses a fraction of one core; "
        "a Python generator such as locust saturates near the service's own rate). Payloads: 500 real rows in "
        "rotation; 1,000-row batches of real rows. Each run is a few seconds; access logs off in every variant.",
        "",
        "Variants: **composed, batching on** is what `make serve` runs (entry service + one service per model, "
        "adaptive batching, single rows coalesced in the entry); **batching off** is the same with "
        "`WINE_BATCHING=false` (one model call per request, no adaptive batching); **one process** has both models "
        "in the API process (`benchmarks/one_process.py`).",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {value} | {'yes' if ok else '**no**'} |" for name, value, ok in targets(results)]
    lines += [
        "",
        f"![throughput and latency]({png.name})",
        "",
        "## Single-row requests",
        "",
        "| variant | endpoint | clients | requests/s | p50 ms | p99 ms | failed | CPU ms per request, by process |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        if r["rows_per_request"] == 1:
            cpu = ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_ms_per_request"].items() if v >= 0.01)
            lines.append(
                f"| {r['variant']} | `{r['route']}` | {r['connections']} | {r['requests_per_s']:.0f} | "
                f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['failures']} | {cpu} |"
            )
    lines += [
        "",
        "## 1,000-row batches",
        "",
        "| variant | endpoint | clients | rows/s | p50 ms | p99 ms | failed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        if r["rows_per_request"] > 1:
            lines.append(
                f"| {r['variant']} | `{r['route']}` | {r['connections']} | "
                f"{r['requests_per_s'] * r['rows_per_request']:,.0f} | {r['p50_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['failures']} |"
            )
    model = results["model_predict_ms_1000_rows"]
    lines += [
        "",
        "Each model's own predict on 1,000 rows, in-process (median of 30): "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in model.items())
        + ".",
        "",
        "## Start-up and memory",
        "",
        "| variant | `bentoml serve` to `/readyz` | peak RSS, all serving processes |",
        "|---|---|---|",
    ]
    for variant, seconds in results["ready_s"].items():
        lines.append(f"| {variant} | {seconds:.1f} s | {results['peak_memory_mb'][variant]:.0f} MB |")
    out.write_text("\n".join(lines) + "\n")
