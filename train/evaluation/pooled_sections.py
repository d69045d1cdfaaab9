"""The report's section on red and white wines: one model for both (the type an input) or one per type."""

from __future__ import annotations

from typing import TYPE_CHECKING

from train.evaluation.formats import paper_cell, pct
from train.evaluation.pooling import (
    COST_SLACK,
    ClassifierPooling,
    Compared,
    Paired,
    Pooling,
    served_layout,
    serving_cost,
)
from train.evaluation.verdicts import PAPER
from wine_quality.kinds import KINDS
from wine_quality.schema import TYPES

if TYPE_CHECKING:
    from train.evaluation.report import Report

# the training script that serves each family; tests/model/test_layouts.py holds its default layout to this run's choice
SCRIPTS = {"extra_trees": "sklearn_model", "torch_ensemble": "torch_model", "classifier": "classifier_model"}


def kind_of(family: str) -> str:
    """The model kind (KINDS) a family is served as."""
    return next(k for k, kind in KINDS.items() if kind.train_module == f"train.{SCRIPTS[family]}")


def _served_by(family: str, compared: Compared) -> str:
    """Which layout the family's training script trains by default, and why where it is not the accurate one."""
    if family not in SCRIPTS:
        return ""
    cost = serving_cost().get(kind_of(family))
    served = served_layout(compared.choice, cost)
    said = f" `python -m train.{SCRIPTS[family]}` trains {served.replace('_', ' ')} by default"
    if served == compared.choice or cost is None:
        return said + "."
    figures = "; ".join(f"{t} {cost['pooled'][t]:.1f} vs {cost['per_type'][t]:.1f}" for t in TYPES)
    return (
        f"{said}: pooled costs more to serve (ms a 1,000 wines, one thread, pooled vs per type: {figures}; "
        "reports/pooling/serving_cost.json)."
    )


def poolings(report: Report) -> list[Pooling]:
    """Each pooled candidate beside the same candidate per type."""
    nested = report.evaluation.nested
    return [
        Pooling(model, {t: nested[t][model] for t in by_type}, by_type)
        for model, by_type in report.evaluation.pooled.items()
    ]


def classifier_pooling(report: Report) -> ClassifierPooling | None:
    ev = report.evaluation
    if not ev.pooled_classifiers:
        return None
    return ClassifierPooling({t: ev.classifiers[t] for t in ev.pooled_classifiers}, ev.pooled_classifiers)


def _paired(paired: Paired, points: bool = False) -> str:
    figures = (
        f"{100 * paired.mean:+.2f} ± {100 * paired.se:.2f} points"
        if points
        else f"{paired.mean:+.4f} ± {paired.se:.4f}"
    )
    return f"{figures} (below 0 in {paired.below} of {paired.folds})"


def _verdict(paired: Paired) -> str:
    if paired.lower:
        return "pooled **better**"
    return "not worse (within 1 SE)" if paired.not_worse else "pooled **worse**"


def red_and_white(report: Report) -> list[str]:
    """Red and white side by side with the paper's, per-type and pooled models, the paired differences, the choice."""
    found = poolings(report)
    if not found:
        return []
    plan = report.plan
    lines = [
        "## Red and white: one model for both, or one per type",
        "",
        "Each family served by a training script, trained on red and white wines together with the type as a 12th "
        "input (`white`: 0 or 1), against the same family trained on one type (the rows above), under the same "
        f"protocol: deduplicated rows, nested {plan.folds}-fold × {plan.repeats}. The pooled model's outer fold i "
        "trains on red fold i's and white fold i's training rows and is scored on each type's test rows apart, so "
        "each of its folds is scored on the same wines as the per-type model's, and the differences are paired. "
        "Paired: pooled − per type, mean ± standard error over the "
        f"{plan.folds * plan.repeats} folds (std / √{plan.folds * plan.repeats}; the repeats share wines, so the true "
        "uncertainty is somewhat larger). The paper fitted one model per type.",
        "",
        "| model | layout | red MAD | red ±0.5 | white MAD | white ±0.5 |",
        "|---|---|---|---|---|---|",
    ]
    for name in PAPER["red"]:
        cells = [paper_cell(k, PAPER[t].get(name, {}).get(k)) for t in TYPES for k in ("mae", "within_0_5")]
        lines.append(f"| paper: {name} | per type, 20 × 5-fold, duplicates kept | {' | '.join(cells)} |")
    for pooling in found:
        for layout, results in (("per type", pooling.per_type), ("pooled", pooling.pooled)):
            cells = [f"{results[t].metrics['mae'].mean:.3f} | {pct(results[t].metrics['within_0_5'])}" for t in TYPES]
            lines.append(f"| {pooling.model} | {layout} | {' | '.join(cells)} |")
    lines += [
        "",
        "| model | type | MAD: pooled − per type | ±0.5: pooled − per type | MAD verdict |",
        "|---|---|---|---|---|",
    ]
    for pooling in found:
        for t in TYPES:
            lines.append(
                f"| {pooling.model} | {t} | {_paired(pooling.mae(t))} | "
                f"{_paired(pooling.within_0_5(t), points=True)} | {_verdict(pooling.mae(t))} |"
            )
    lines += ["", *_choices(found), *_classifier(classifier_pooling(report)), ""]
    return lines


def _choices(found: list[Pooling]) -> list[str]:
    lines = [
        "The rule: pool when the pooled model's MAD is not worse than the per-type model's on either type (paired "
        "difference at most one standard error above zero); else one model per type, each type answered by its own "
        "model (the per-type rows: red's MAD is then today's red-only model's, white's the white-only model's). The "
        f"layout served is the accurate one unless pooled costs a type's wines more than {COST_SLACK:g}x one model per "
        "type to serve (`python -m benchmarks.layout_cost`): then one model per type, which answers red wines at the "
        "red model's cost, as before white wines were served.",
        "",
    ]
    for pooling in found:
        red, white = pooling.mae("red"), pooling.mae("white")
        helps = "helps red" if red.lower else "does not clearly change red" if red.not_worse else "hurts red"
        lines.append(
            f"- `{pooling.model}`: **{pooling.choice.replace('_', ' ')}**. Pooling {helps}, the smaller set (MAD "
            f"{red.mean:+.4f} ± {red.se:.4f}); white {white.mean:+.4f} ± {white.se:.4f}."
            + _served_by(pooling.model, pooling)
        )
    return lines


def _classifier(pooling: ClassifierPooling | None) -> list[str]:
    if pooling is None:
        return []
    parts = [f"{t} {_paired(pooling.brier(t))}" for t in TYPES]
    return [
        f"- the grade classifier (multi-class Brier score, the same rule): **{pooling.choice.replace('_', ' ')}**; "
        f"pooled − per type: {'; '.join(parts)}." + _served_by("classifier", pooling),
    ]
