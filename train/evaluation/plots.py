"""The report's plots: predicted vs true grade, residuals by grade, the network's learning curves, interval coverage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from train.evaluation.classification_report import draw_reliability
from train.evaluation.results import ByModel, Evaluation, LearningCurve
from train.evaluation.verdicts import shown_models
from wine_quality.card import INTERVAL_LEVELS


def draw_plots(out: Path, evaluation: Evaluation) -> dict[str, str]:
    """Every plot as a PNG in out/; returns each plot's file name by name (no learning curve without a network)."""
    drawn = {
        "predicted_vs_true": _predicted_vs_true(evaluation.nested),
        "residuals_by_grade": _residuals_by_grade(evaluation.nested),
    }
    curves = [(d, setting, c) for d, cs in evaluation.curves.items() for setting, c in cs.items()]
    if curves:
        drawn["learning_curve"] = _learning_curves(curves)
    drawn["interval_coverage"] = _interval_coverage(evaluation.nested)
    files = {}
    for name, fig in drawn.items():
        files[name] = f"{name}.png"
        fig.savefig(out / files[name], dpi=110)
    reliability = draw_reliability(out, evaluation.classifiers)
    if reliability:
        files["reliability"] = reliability
    return files


def _predicted_vs_true(nested: ByModel) -> Figure:
    """The first repeat's out-of-fold predictions against the true grade, and their mean per grade."""
    rng = np.random.default_rng(0)
    datasets = list(nested)
    cols = max(len(shown_models(nested[d])) for d in datasets)
    fig = Figure(figsize=(4 * cols, 3.8 * len(datasets)))
    axes = fig.subplots(len(datasets), cols, squeeze=False)
    for row, d in enumerate(datasets):
        shown = shown_models(nested[d])
        for col, m in enumerate(shown):
            ax, r = axes[row][col], nested[d][m]
            y, p = r.y, r.first_run
            ax.scatter(y + rng.uniform(-0.25, 0.25, len(y)), p, s=4, alpha=0.25, color="tab:blue", rasterized=True)
            grades = np.unique(y)
            ax.plot(grades, [p[y == g].mean() for g in grades], "o-", color="tab:red", label="mean prediction")
            ax.plot([2.5, 9.5], [2.5, 9.5], "k--", lw=1, label="prediction = grade")
            ax.fill_between([2.5, 9.5], [2.0, 9.0], [3.0, 10.0], color="grey", alpha=0.12, label="±0.5")
            ax.set(xlim=(2.5, 9.5), ylim=(2.5, 9.5), xlabel="true grade (jittered)", ylabel="predicted grade")
            ax.set_title(f"{d}: {m} (MAD {r.mae:.3f})", fontsize=10)
            if row == 0 and col == 0:
                ax.legend(fontsize=7, loc="upper left")
        for col in range(len(shown), cols):
            axes[row][col].axis("off")
    fig.suptitle("Predicted vs true grade: out-of-fold predictions of the first repeat, nested CV, deduplicated")
    fig.tight_layout()
    return fig


def _residuals_by_grade(nested: ByModel) -> Figure:
    """Box plots of prediction minus grade, per true grade, side by side for the shown models."""
    fig = Figure(figsize=(7 * len(nested), 4.2))
    axes = fig.subplots(1, len(nested), squeeze=False)
    for ax, (d, results) in zip(axes[0], nested.items(), strict=True):
        shown = shown_models(results)
        y = results[shown[0]].y
        grades = np.unique(y).astype(int)
        width = 0.8 / len(shown)
        for i, m in enumerate(shown):
            data = [results[m].first_run[y == g] - g for g in grades]
            pos = grades - 0.4 + width * (i + 0.5)
            box = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=False)
            color = colormaps["tab10"](i)
            for patch in box["boxes"]:
                patch.set_facecolor(color)
                patch.set_alpha(0.6)
            ax.plot([], [], "s", color=color, label=m)
        ax.axhline(0, color="k", lw=1)
        ax.axhspan(-0.5, 0.5, color="grey", alpha=0.12)
        ax.set_xticks(grades, [f"{g}\n(n={int(np.sum(y == g))})" for g in grades])
        ax.set(xlabel="true grade", ylabel="prediction − grade", title=f"{d}: residuals by grade (whiskers 1.5 IQR)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _learning_curves(curves: list[tuple[str, str, LearningCurve]]) -> Figure:
    """Validation loss per epoch of every curve (each setting's own loss), in full (log scale) and near the best
    epoch."""
    fig = Figure(figsize=(13, 4.5))
    full, zoom = fig.subplots(1, 2)
    lowest = min(min(c.val_loss) for _, _, c in curves)
    for d, setting, c in curves:
        cfg = c.config
        label = f"{d}, {setting}: hidden {cfg.hidden}, dropout {cfg.dropout}, batch {cfg.batch_size}, {cfg.loss} loss"
        epochs = range(1, len(c.val_loss) + 1)
        for ax in (full, zoom):
            (line,) = ax.plot(epochs, c.val_loss, lw=1.2, label=label)
            ax.plot(c.best_epoch, c.val_loss[c.best_epoch - 1], "o", color=line.get_color())
    full.set(xlabel="epoch", ylabel="validation loss (the setting's own)", yscale="log", title="all epochs (log scale)")
    zoom.set(xlabel="epoch", ylim=(0.9 * lowest, 2.0 * lowest), title="near the best epoch")
    full.legend(fontsize=7)
    fig.suptitle(
        "torch learning curves on fit_net's early-stopping split (of an ensemble: its first network; dot: best "
        "epoch, kept; training stops `patience` epochs later)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _interval_coverage(nested: ByModel) -> Figure:
    """Measured coverage per level and model against the nominal level and the ±3 points target."""
    fig = Figure(figsize=(6.5 * len(nested), 4.2))
    axes = fig.subplots(1, len(nested), squeeze=False)
    levels = list(INTERVAL_LEVELS)
    for ax, (d, all_results) in zip(axes[0], nested.items(), strict=True):
        results = {m: r for m, r in all_results.items() if r.intervals}
        width = 0.8 / len(results)
        for i, (m, r) in enumerate(results.items()):
            xs = np.arange(len(levels)) - 0.4 + width * (i + 0.5)
            measured = [100 * r.intervals[f"{lv:g}"].coverage_pooled for lv in levels]
            spread = [100 * r.intervals[f"{lv:g}"].coverage.std for lv in levels]
            ax.bar(xs, np.array(measured) - 70, width * 0.9, bottom=70, yerr=spread, label=m, capsize=2)
        for j, lv in enumerate(levels):
            ax.hlines(100 * lv, j - 0.45, j + 0.45, color="k", lw=1.5)
            ax.fill_between([j - 0.45, j + 0.45], 100 * lv - 3, 100 * lv + 3, color="grey", alpha=0.2, lw=0)
        ax.set_xticks(range(len(levels)), [f"nominal {100 * lv:.0f} %" for lv in levels])
        ax.set(ylim=(70, 100), ylabel="measured coverage on outer test folds (%)")
        ax.set_title(f"{d}: interval coverage (black: nominal, grey: ±3 points, bars: fold std)", fontsize=10)
        ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    return fig
