"""BENCHMARKS.png: requests/s and p50/p99 latency of every target, single rows at each client count, and batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = ("tab:blue", "tab:cyan", "tab:purple", "tab:red", "tab:orange", "tab:olive")


def chart(results: dict[str, Any], path: Path) -> None:
    """One row of panels per client count (throughput, then latency), one bar per target and endpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    runs = results["runs"]
    labels = {key: t["label"] for key, t in results["targets"].items()}
    panels = [(f"single rows, {c} client{'s' * (c > 1)}", 1, c) for c in results["options"]["clients"]]
    panels += [(f"1,000-row requests, {c} client{'s' * (c > 1)}", 1000, c) for c in results["options"]["batch_clients"]]
    panels = [p for p in panels if any(r["rows_per_request"] == p[1] and r["clients"] == p[2] for r in runs)]
    if not panels:
        return
    height = sum(1.0 + 0.3 * len(group) for group in _groups(runs, panels))
    fig, axes = plt.subplots(len(panels), 2, figsize=(13, height), squeeze=False, sharey="row")
    colors = {key: COLORS[i % len(COLORS)] for i, key in enumerate(labels)}
    for row, (title, rows, clients) in enumerate(panels):
        mine = [r for r in runs if r["rows_per_request"] == rows and r["clients"] == clients]
        names = [f"{labels[r['target']]}  {_short(r)}" for r in mine]
        y = range(len(mine))
        bar_colors = [colors[r["target"]] for r in mine]
        rate = [r["requests_per_s"] * r["rows_per_request"] for r in mine]
        ax = axes[row][0]
        ax.barh(list(y), rate, color=bar_colors)
        ax.set_yticks(list(y), names, fontsize=7)
        ax.invert_yaxis()
        ax.set(title=f"{title}: throughput", xlabel="rows/s" if rows > 1 else "requests/s")
        for i, value in enumerate(rate):
            ax.text(value, i, f" {value:,.0f}", va="center", fontsize=6)
        ax = axes[row][1]  # shares the y axis (and its order) with the throughput panel
        ax.barh([i - 0.2 for i in y], [r["p50_ms"] for r in mine], height=0.4, color=bar_colors, label="p50")
        ax.barh(
            [i + 0.2 for i in y], [r["p99_ms"] for r in mine], height=0.4, color=bar_colors, alpha=0.45, label="p99"
        )
        ax.set(title=f"{title}: p50 (dark), p99 (light)", xlabel="ms (log scale)", xscale="log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        for ax in axes[row]:
            ax.grid(True, axis="x", alpha=0.3)
    m = results["machine"]
    fig.suptitle(f"wine-quality service and peers, {m['cores']} cores, {results['when']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _short(r: dict[str, Any]) -> str:
    route = "V2 infer" if r["route"].startswith("/v2/") else r["route"]
    return route + (f" [{r['model']}, {r['form']}]" if r["rows_per_request"] > 1 else "")


def _groups(runs: list[dict[str, Any]], panels: list[tuple[str, int, int]]) -> list[list[dict[str, Any]]]:
    return [[r for r in runs if r["rows_per_request"] == rows and r["clients"] == c] for _, rows, c in panels]
