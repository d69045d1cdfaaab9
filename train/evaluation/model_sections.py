"""The report's sections on the models themselves: their searches, intervals, plots and the recommended defaults."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from train.evaluation.candidates import NET_BASE, NET_REGIME_NOTE, SERVED_NETWORK
from train.evaluation.formats import METRIC_LABELS, cell, setting
from train.evaluation.results import METRICS, ModelResult
from train.evaluation.verdicts import shown_models
from train.network import NetConfig
from wine_quality.card import INTERVAL_LEVELS

if TYPE_CHECKING:
    from train.evaluation.report import Report

SHOWN = 5  # settings listed per search


def _search_row(m: str, r: ModelResult) -> str:
    ranked = sorted(r.search.inner_mae, key=lambda item: item[1].mean)
    tried = "<br>".join(f"{setting(params)}: {stat.mean:.3f}" for params, stat in ranked[:SHOWN])
    if len(ranked) > SHOWN:
        tried += f"<br>… {len(ranked) - SHOWN} more, up to {ranked[-1][1].mean:.3f} (evaluation.json)"
    chosen = "<br>".join(f"{setting(params)}: {n}" for params, n in r.search.chosen)
    return f"| {m} | {tried} | {chosen} | {r.seconds:.0f} s |"


def searches(report: Report) -> list[str]:
    """Per data set and model: the settings tried, best first, and how often each outer fold chose each."""
    n_outer = report.plan.folds * report.plan.repeats
    lines = ["", "## What each search explored and what it chose", ""]
    for d, results in report.evaluation.nested.items():
        lines += [
            f"### {d.capitalize()}",
            "",
            "| model | settings tried, best first (inner MAD, mean over outer folds) | "
            f"chosen (times of {n_outer}) | run time |",
            "|---|---|---|---|",
            *(_search_row(m, r) for m, r in results.items()),
            "",
        ]
    return [
        *lines,
        f"Fixed in every setting of the `torch` search: one network, batch {NET_BASE['batch_size']}, Adam, learning "
        f"rate {NET_BASE['lr']}, {NET_BASE['loss'].upper()} loss on the raw inputs, at most {NET_BASE['epochs']} "
        f"epochs, early stopping with patience {NET_BASE['patience']} on fit_net's own 15 % validation split of the "
        f"training rows; {NET_REGIME_NOTE}.",
        "",
    ]


def intervals(report: Report, plots: dict[str, str]) -> list[str]:
    """Measured coverage and half-width per level and model, then the 90 % coverage by true grade."""
    nested = report.evaluation.nested
    levels = [f"{lv:g}" for lv in INTERVAL_LEVELS]
    lines = [
        "## Prediction intervals",
        "",
        "Measured coverage of prediction ± half-width on the outer test folds, pooled over all test rows "
        "(in brackets: the standard deviation over the outer folds), and the mean half-width in grades.",
        "",
        "| data | model | " + " | ".join(f"{100 * float(lv):.0f} %: coverage | half-width" for lv in levels) + " |",
        "|---|---|" + "---|---|" * len(levels),
    ]
    for d, results in nested.items():
        for m, r in ((m, r) for m, r in results.items() if r.intervals):
            cells = " | ".join(
                f"{100 * r.intervals[lv].coverage_pooled:.1f} % (± {100 * r.intervals[lv].coverage.std:.1f}) | "
                f"±{r.intervals[lv].half_width.mean:.2f}"
                for lv in levels
            )
            lines.append(f"| {d} | {m} | {cells} |")
    lines += [
        "",
        f"![interval coverage]({plots['interval_coverage']})",
        "",
        "The coverage is marginal: one half-width for every wine, so the stated level holds over wines like "
        "the data's, not for each grade. The common middle grades are covered more often than nominal and the rare "
        "extremes far less, because the models pull them towards the mean (next section). At the 90 % level, "
        "by true grade (rows counted over all repeats):",
        "",
    ]
    for d, results in nested.items():
        shown = [m for m in shown_models(results) if m != "linear"]
        if not shown:
            continue
        by_grade = {m: results[m].intervals["0.9"].by_grade for m in shown}
        grades = sorted(by_grade[shown[0]])
        lines += [
            f"| {d}: grade | " + " | ".join(map(str, grades)) + " |",
            "|---|" + "---|" * len(grades),
            "| rows | " + " | ".join(str(by_grade[shown[0]][g].rows) for g in grades) + " |",
            *(f"| {m} | " + " | ".join(f"{100 * by_grade[m][g].coverage:.0f} %" for g in grades) + " |" for m in shown),
            "",
        ]
    return lines


def plots_and_curves(report: Report, plots: dict[str, str]) -> list[str]:
    """The plots, what they show, and each learning curve's best epoch and test figures."""
    lines = [
        "## Plots",
        "",
        f"![predicted vs true]({plots['predicted_vs_true']})",
        "",
        "All models pull predictions towards the mean grade: the rare good (7-8) and poor (3-4) wines are "
        "under- and over-predicted. This is the largest error, and the reason the ±1.0 share is far from 100 %.",
        "",
        f"![residuals by grade]({plots['residuals_by_grade']})",
        "",
    ]
    if "learning_curve" not in plots:
        return lines
    lines += [f"![torch learning curve]({plots['learning_curve']})", ""]
    for d, curves in report.evaluation.curves.items():
        for name, c in curves.items():
            cfg, tm = c.config, c.test_metrics
            first = f" (the first of its {cfg.members} networks)" if cfg.members > 1 else ""
            lines.append(
                f"- {d}, {name} setting ({setting(asdict(cfg))}, batch {cfg.batch_size}, lr {cfg.lr}, "
                f"patience {cfg.patience}, {cfg.loss} loss{', log inputs' if cfg.log_inputs else ''}): best epoch "
                f"{c.best_epoch} of {c.epochs_run} run{first}; on the "
                f"training scripts' 20 % test split (seed {report.plan.seed}) MAD {tm['mae']:.3f}, ±0.5 "
                f"{100 * tm['within_0_5']:.1f} %."
            )
    return [*lines, ""]


def recommended(report: Report) -> list[str]:
    """The settings this run suggests for the training scripts, and their figures without a search."""
    ev, plan = report.evaluation, report.plan
    lines = ["## Recommended training defaults", ""]
    for kind, rec in ev.recommended.items():
        params = rec.params
        text = f"`{rec.model}` with {setting(params)}"
        if kind == "torch":
            served = NetConfig()
            text = (
                f"{setting(params)}, batch {params['batch_size']}, lr {params['lr']}, patience {params['patience']}, "
                f"at most {params['epochs']} epochs (the served network, `{SERVED_NETWORK}`, averages "
                f"{served.members} such networks trained with {served.loss.upper()} loss"
                f"{' on log inputs' if served.log_inputs else ''})"
            )
        lines.append(f"- {kind}: {text}: the red search's most frequent choice.")
    lines += [
        "",
        f"The same settings, fixed (no search), on the same outer folds ({plan.folds}-fold × {plan.repeats}, "
        "deduplicated). They were chosen with all the red rows in view, so on red these figures lean slightly "
        "optimistic; the nested figures above are the honest ones. On white they show what the training scripts' "
        "defaults give there.",
        "",
        "| data | model | " + " | ".join(METRIC_LABELS[k] for k in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for d, results in ev.recommended_figures.items():
        for m, r in results.items():
            lines.append(f"| {d} | {m} | " + " | ".join(cell(k, r.metrics[k]) for k in METRICS) + " |")
    return [*lines, ""]
