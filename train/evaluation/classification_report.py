"""The report's section on the grade classifier: Brier scores beside the baselines, and its reliability curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from train.evaluation.classification import GOOD, PREDICTORS, ClassifierResult, reliability

LABELS = {
    "classifier": "calibrated extra trees (the served classifier)",
    "prior": "baseline: the training fold's grade frequencies",
    "majority": "baseline: certainty of the training fold's most common grade",
}


def classifier_section(results: dict[str, ClassifierResult], folds: int, repeats: int, plot: str | None) -> list[str]:
    """Per data set, the classifier's and the baselines' scores over the outer folds, then the reliability plot."""
    if not results:
        return []
    lines = [
        "## Grade classifier",
        "",
        f"`python -m train.classifier_model`'s model with its default settings (no search), fitted on each of the "
        f"same {folds} × {repeats} outer training folds and scored on its test fold, beside two baselines built from "
        "the same training fold. Brier score: mean over wines of Σ over grades of (probability − 1 if the true grade, "
        f"else 0)², from 0 (certain and right) to 2 (certain and wrong); for a good wine (grade ≥ {GOOD}) the same "
        "with one probability. Mean ± std over the outer folds; lower is better, except accuracy (the most probable "
        "grade is the true one).",
        "",
        "| data | predictor | Brier (grades) | Brier (good) | accuracy |",
        "|---|---|---|---|---|",
    ]
    for d, r in results.items():
        for p in PREDICTORS:
            s = r.scores[p]
            lines.append(
                f"| {d} | {LABELS[p]} | {s['brier'].mean:.4f} ± {s['brier'].std:.4f} | "
                f"{s['brier_good'].mean:.4f} ± {s['brier_good'].std:.4f} | {100 * s['accuracy'].mean:.1f} % |"
            )
    lines.append("")
    if plot:
        lines += [
            f"![reliability of the classifier]({plot})",
            "",
            "Reliability: wines pooled by predicted probability (bins of 0.1), the mean predicted probability against "
            "how often it happened; on the diagonal, a probability of 0.3 comes true 30 % of the time. Left: a good "
            "wine. Right: every grade's probability, one point per bin and grade, all grades together.",
            "",
        ]
    return lines


def draw_reliability(out: Path, results: dict[str, ClassifierResult]) -> str | None:
    """reliability.png in out/: P(good) and every grade's probability against what happened, per data set."""
    if not results:
        return None
    fig = Figure(figsize=(11, 4.6))
    good_ax, grades_ax = fig.subplots(1, 2)
    for d, r in results.items():
        classes = np.array(r.classes)
        curves = (
            (good_ax, reliability(r.good, (r.y >= GOOD).astype(float))),
            (grades_ax, reliability(r.probabilities.ravel(), (r.y[:, None] == classes[None, :]).astype(float).ravel())),
        )
        for ax, points in curves:
            predicted, observed, counts = (np.array(v) for v in zip(*points, strict=True))
            ax.plot(predicted, observed, "o-", label=f"{d} (Brier {r.scores['classifier']['brier'].mean:.3f})")
            for px, py, n in zip(predicted, observed, counts, strict=True):
                ax.annotate(str(n), (px, py), fontsize=6, alpha=0.6, xytext=(2, -8), textcoords="offset points")
    for ax, title in ((good_ax, f"P(grade ≥ {GOOD})"), (grades_ax, "P(grade = k), every k")):
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted probability", ylabel="observed frequency")
        ax.set_title(f"{title}: out-of-fold, wines per bin annotated", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=110)
    return "reliability.png"
