"""The report's section on the served, grade-by-grade intervals: coverage per true grade against issue 14's target."""

from __future__ import annotations

from typing import TYPE_CHECKING

from train.evaluation.candidates import SERVED_NETWORK
from train.evaluation.results import GradeByGrade, ModelResult
from train.evaluation.verdicts import best_sklearn

if TYPE_CHECKING:
    from train.evaluation.report import Report

# Issue 14: 90 % coverage, within 2 points, in every true-grade group of at least 30 wines.
TARGET_LEVEL, TARGET_POINTS, TARGET_WINES = "0.9", 2.0, 30
# What was tried before the served method, on one 5-fold split of each data set (extra trees, 100 trees), each
# calibrated inside the outer training fold on a 5-fold inner CV and measured on the outer test fold. Not rerun here.
TRIED_NOTE = (
    "Tried before settling on grade-by-grade calibration (90 % level, one outer 5-fold split, extra trees; coverage "
    "of grades 4 / 5 / 6 / 7 on red, 4 / 5 / 6 / 7 / 8 on white; mean width): one half-width for all (red 26 / 97 / "
    "99 / 78 %, 2.13; white 40 / 94 / 99 / 88 / 18 %, 2.24); normalised conformal with a difficulty model (extra "
    "trees on |out-of-fold residual|, cross-fitted) from the features (red 34 / 97 / 95 / 83 %, 2.09) or the "
    "features and the prediction (red 30 / 97 / 95 / 82 %, white 42 / 93 / 98 / 88 / 29 %, 2.28); two one-sided "
    "difficulty models for an asymmetric interval (red 42 / 97 / 94 / 84 %, white 57 / 93 / 98 / 86 / 34 %); "
    "Mondrian calibration by bins of the prediction (red 34 / 98 / 96 / 82 %); grade-by-grade on the normalised "
    "score (red 92 / 94 / 91 / 92 %, 2.47; white 95 / 93 / 91 / 92 / 92 %, 3.86), and with levels tuned per grade "
    "on the calibration rows to undo the span's over-coverage (overfitted: red grade 4 fell to 79-83 %). In the "
    "nested evaluation (5-fold × 3, searched settings): central ranges (each tail cut alike) calibrated "
    "independently of one another, the first served form (red 92.5 / 92.5 / 90.2 / 91.6 %, 2.70; white 90.8 / "
    "92.3 / 90.0 / 94.0 / 91.3 %, 4.00); central ranges cut with the span in view (red 89.3 / 90.8 / 89.7 / 88.8 "
    "%, 2.57; white 88.9 / 92.0 / 90.0 / 92.4 / 89.6 %, 3.95); the served form adds the choice of tails: "
    "intervals about 9 % narrower and the white middle grades closer to 90 %, at some cost to red grade 4 (a run "
    "with the levels nested from 80 % up: red 86.8 / 92.2 / 90.8 / 89.8 %, 2.35; white 89.3 / 92.1 / 89.5 / 92.1 "
    "/ 90.6 %, 3.64). A "
    "difficulty model widens or narrows the interval with the wine but cannot tell a rare grade's wine from a "
    "common one's, so the rare grades stay uncovered; only calibrating each true grade apart reaches them. The "
    "difficulty model narrowed the grade-by-grade intervals a little (white 3.86 vs 4.13) at the cost of a second "
    "model to export and serve, so the served intervals use the prediction alone."
)


def _verdict(wines: float, coverage: float) -> str:
    if wines < TARGET_WINES:
        return f"(< {TARGET_WINES} wines)"
    gap = 100 * coverage - 100 * float(TARGET_LEVEL)
    return "met" if abs(gap) <= TARGET_POINTS else f"**not met** ({gap:+.1f} points)"


def with_ranges(results: dict[str, ModelResult]) -> list[str]:
    """The served models (the best scikit-learn one and the served network), then the searched single network, of
    those whose grade-by-grade intervals were measured."""
    models = dict.fromkeys(m for m in (best_sklearn(results), SERVED_NETWORK, "torch") if m is not None)
    return [
        m
        for m in models
        if m in results
        and results[m].intervals.get(TARGET_LEVEL, None) is not None
        and results[m].intervals[TARGET_LEVEL].grade_by_grade is not None
    ]


def _grade_table(d: str, results: dict[str, ModelResult], repeats: int) -> list[str]:
    shown = with_ranges(results)
    if not shown:
        return []
    judged = [m for m in shown if m != "torch" or len(shown) == 1][:2]  # the served ones
    best = results[shown[0]].intervals[TARGET_LEVEL]
    ours: dict[str, GradeByGrade] = {m: results[m].intervals[TARGET_LEVEL].grade_by_grade for m in shown}  # type: ignore[misc]
    lines = [
        f"| {d}: grade | wines | {shown[0]}, one half-width | "
        + " | ".join(f"{m}, grade by grade" for m in shown)
        + " | "
        + " | ".join(f"target ({m})" for m in judged)
        + " |",
        "|---|---|---|" + "---|" * (len(shown) + len(judged)),
    ]
    for g, marginal in best.by_grade.items():
        wines = marginal.rows / repeats
        cells = " | ".join(f"{100 * ours[m].by_grade[g].coverage:.1f} %" for m in shown)
        verdicts = " | ".join(_verdict(wines, ours[m].by_grade[g].coverage) for m in judged)
        lines.append(f"| {g} | {wines:.0f} | {100 * marginal.coverage:.0f} % | {cells} | {verdicts} |")
    return [*lines, ""]


def grade_by_grade(report: Report) -> list[str]:
    """Coverage and width of the served intervals per level, then per true grade at 90 % beside the target."""
    nested, repeats = report.evaluation.nested, report.plan.repeats
    lines = [
        "## Intervals that fit each wine (served)",
        "",
        "The served interval is calibrated grade by grade (label-conditional conformal prediction, "
        "`train.grade_calibration`): from the inner out-of-fold predictions, each true grade k gets the range of "
        "predictions for which k is plausible, and a wine's interval spans every grade from the lowest to the "
        "highest whose range holds its prediction (`wine_quality.intervals.span`). Because a grade is also covered "
        "where its neighbours' ranges straddle the prediction, each range is cut with the others in view: the "
        "smallest share of its own wines' predictions at which they, spanned, are covered at the level (the rank "
        "round(level × (n + 1)) of its n wines), its two tails cut in the proportion that gives the narrowest "
        "intervals over all wines. The 90 % level is calibrated first, the others nested around it. Each grade is "
        "then covered at about the level, not only the common ones, and the width depends on the wine: narrow for "
        "a prediction where one grade dominates, wide where a rare grade is plausible too. "
        "Measured on the outer test folds, pooled (± std over folds), with the mean width in grades:",
        "",
        "| data | model | level | coverage | mean width | one half-width: coverage | width |",
        "|---|---|---|---|---|---|---|",
    ]
    for d, results in nested.items():
        for m in with_ranges(results):
            for level, interval in results[m].intervals.items():
                ours = interval.grade_by_grade
                if ours is None:
                    continue
                lines.append(
                    f"| {d} | {m} | {100 * float(level):.0f} % | {100 * ours.coverage_pooled:.1f} % "
                    f"(± {100 * ours.coverage.std:.1f}) | {ours.width.mean:.2f} | "
                    f"{100 * interval.coverage_pooled:.1f} % | {2 * interval.half_width.mean:.2f} |"
                )
    lines += [
        "",
        f"Issue 14's target: {100 * float(TARGET_LEVEL):.0f} % coverage within ±{TARGET_POINTS:.0f} points in every "
        f"true-grade group of at least {TARGET_WINES} wines (wines: distinct rows, each tested once per repeat):",
        "",
    ]
    for d, results in nested.items():
        lines += _grade_table(d, results, repeats)
    return [
        *lines,
        "Where the target is missed, it is in one of two ways. Over-coverage: a middle grade that its neighbours' "
        "ranges straddle; to cover a rare grade's wines (white grade 8's are predicted anywhere from about 5.7 to "
        "7.2), its range must reach into the common grades' predictions, and a wine's interval then spans the grade "
        "between them whatever that grade's own range says. Under-coverage: a small group (red grade 4, about 42 "
        "wines per training fold) whose coverage comes partly from its neighbours' ranges and whose own range and "
        "tails are fitted on those few wines. Grades with fewer than 30 wines are calibrated on very few of them "
        "(red grade 3: about 8 per training fold), so their coverage is loose, and the groups of 30 to 60 wines "
        "move by 2 to 5 points between variants and runs of the evaluation (one wine is 1.9 points of red grade 4).",
        "",
        TRIED_NOTE,
        "",
    ]
