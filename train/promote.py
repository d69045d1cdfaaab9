"""The gate before a model is served: compare a challenger with the served model, and pin it only if it is no worse.

`python -m train.promote --kind sklearn --challenger TAG` scores both models as served (ONNX, the served interval
level) on wines neither was trained on (train/gate_wines.py): tasted wines graded after the challenger's cutoff, or
the data files' held-out rows. It prints the table (train/gate.py). Exit 0: the challenger passed (or --force, or
nothing was served) and is pinned, the gate's findings written into its card (`promotion`, which `/models` shows).
Exit 1: it is worse; nothing is changed. Exit 2: the gate cannot judge (an unknown tag, no labelled wines, wines
that one model saw, too few wines of every type); nothing is changed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from train.data import DATA_FILES, DataError, is_type
from train.feedback import USAGE_ERROR, database_url, read_labelled, shown
from train.gate import MIN_WINES, classification_lines, passes, regression_lines, rule, table, verdict
from train.gate_wines import GateRefusal, GateWines, held_out_rows, tasted_wines
from wine_quality.card import GateLine, GateVerdict, Promotion
from wine_quality.kinds import KINDS
from wine_quality.pins import pinned_tag, write_pin
from wine_quality.schema import TYPES, WineType
from wine_quality.served import ServedModel
from wine_quality.settings import ModelSettings, Settings, get_settings
from wine_quality.store import ModelStoreError, read_card

Finding = Literal["passed", "failed", "undecided"]
EXIT = {"passed": 0, "failed": 1, "undecided": USAGE_ERROR}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.promote", description=__doc__)
    p.add_argument("--kind", choices=sorted(KINDS), required=True, help="the model kind")
    p.add_argument("--challenger", required=True, help="the model-store tag (name:version) to be served instead")
    p.add_argument(
        "--on",
        choices=("feedback", "file"),
        help="feedback: tasted wines neither model saw; file: the files' held-out rows, for two models trained with "
        "--holdout-fit on one split (default: feedback when either model was trained with it, else file)",
    )
    p.add_argument("--data", type=Path, nargs="+", default=list(DATA_FILES), help="the data files the models saw")
    p.add_argument("--min-wines", type=int, default=MIN_WINES, help="fewest wines of a type to decide on it (100)")
    p.add_argument("--force", action="store_true", help="pin the challenger whatever the gate finds (recorded)")
    return p


def load(kind: str, tag: str, level: float) -> ServedModel:
    """A model as the service would serve it: its runtime, with its intervals at the served level."""
    return ServedModel.load(kind, Settings(models=ModelSettings(tags={kind: tag}, interval_coverage=level)))


def served_tag(kind: str, settings: Settings) -> str | None:
    """The tag served now (WINE_<KIND>_MODEL, else the pin), or None when nothing of that kind is pinned."""
    try:
        return pinned_tag(kind, settings.models)
    except ModelStoreError:
        return None


def lines_of(models: tuple[ServedModel, ServedModel], x: np.ndarray, y: np.ndarray) -> list[GateLine]:
    """Both models' figures on the same rows: a regressor's grades and intervals, a classifier's probabilities."""
    challenger, served = models
    answers = [m.predictor(1)(x) for m in models]
    if KINDS[challenger.kind].task == "classification":
        assert challenger.card.classification is not None and served.card.classification is not None
        classes = [np.asarray(m.card.classification.classes) for m in models if m.card.classification]
        good = challenger.card.classification.good_threshold
        return classification_lines(y, tuple(zip(answers, classes, strict=True)), good)
    white = is_type(x, "white")
    intervals = tuple(m.intervals(a, white) for m, a in zip(models, answers, strict=True))
    return regression_lines(y, (answers[0], answers[1]), intervals)


def compare(models: tuple[ServedModel, ServedModel], wines: GateWines, min_wines: int) -> dict[WineType, GateVerdict]:
    """Each type's figures and verdict on the gate's wines."""
    verdicts = {}
    for wine_type in TYPES:
        rows = is_type(wines.x, wine_type)
        if rows.any():
            lines = lines_of(models, wines.x[rows], wines.y[rows])
            verdicts[wine_type] = verdict(lines, int(rows.sum()), min_wines, models[0].coverage)
    return verdicts


def gate_wines(args: argparse.Namespace, models: tuple[ServedModel, ServedModel]) -> GateWines:
    """The wines to compare on, as --on says; a GateRefusal when they would not be unseen by both models."""
    cards = {"challenger": models[0].card, "served": models[1].card}
    on = args.on or ("feedback" if any(card.feedback for card in cards.values()) else "file")
    if on == "file":
        return held_out_rows(cards, {"challenger": models[0].tag, "served": models[1].tag}, args.data)
    try:
        url = database_url(get_settings().capture)
        labelled = read_labelled(url)
    except DataError as exc:
        raise GateRefusal(str(exc)) from None
    return tasted_wines(cards, labelled, shown(url), args.data)


def judge(args: argparse.Namespace, challenger: ServedModel, served: ServedModel | None) -> tuple[Finding, Promotion]:
    """What the gate finds, and the card section that records why (its decision set as if pinned)."""
    header = f"{args.kind} gate: challenger {challenger.tag} against the served {served.tag if served else 'none'}"
    task = KINDS[args.kind].task
    found: dict[str, Any] = {"rule": rule(task, challenger.coverage, args.min_wines), "types": {}, "reasons": []}
    finding: Finding
    evaluated = None
    if served is None:
        found["reasons"] = [f"no {args.kind} model is served: nothing to compare with"]
        finding = "passed"
    else:
        try:
            wines = gate_wines(args, (challenger, served))
        except GateRefusal as exc:
            found["reasons"], finding = [f"cannot compare: {exc}"], "undecided"
        else:
            verdicts = compare((challenger, served), wines, args.min_wines)
            evaluated = wines.source
            header += f"\non {wines.describe()}\n\n{table(verdicts, challenger.coverage)}"
            found.update(types=verdicts, since=wines.since, database=wines.database)
            found["reasons"] = [f"{t}: {r}" for t, v in verdicts.items() if v.decided for r in v.reasons]
            finding = "passed" if passes(verdicts) else "failed"
            if not any(v.decided for v in verdicts.values()):
                finding = "undecided"
                found["reasons"] = [
                    f"no wine type has {args.min_wines} wines to decide on: collect more feedback, or lower --min-wines"
                ]
    outcome = {"passed": "PROMOTED", "failed": "REFUSED", "undecided": "NOT DECIDED"}[finding]
    if finding != "passed" and args.force:
        outcome += ", pinned anyway (--force)"
    lines = [header, "", f"rule: {found['rule']}", f"decision: {outcome}", *(f"  - {r}" for r in found["reasons"])]
    promotion = Promotion(
        decision="promoted" if finding == "passed" else "forced",
        decided=datetime.now(UTC),
        served_before=served.tag if served else None,
        evaluated_on=evaluated,
        coverage_level=challenger.coverage if task == "regression" else None,
        table="\n".join(lines),
        **found,
    )
    return finding, promotion


def record(kind: str, tag: str, promotion: Promotion) -> None:
    """Write the gate's findings into the challenger's card (its model.yaml), and check the card still reads."""
    import bentoml

    stored = bentoml.models.get(tag)
    stored.info.metadata["promotion"] = promotion.model_dump(mode="json", exclude_none=True)
    stored.flush()  # type: ignore[no-untyped-call]  # BentoML's Model.flush rewrites model.yaml; it has no types
    read_card(kind, bentoml.models.get(tag))


def main(argv: Sequence[str] | None = None) -> int:
    """Gate the challenger: 0 when it is pinned, 1 when refused, 2 when the gate cannot judge (module docstring)."""
    args = parser().parse_args(argv)
    settings = get_settings()
    level = settings.models.interval_coverage
    try:
        challenger = load(args.kind, args.challenger, level)
    except ModelStoreError as exc:
        print(f"error: challenger: {exc}", file=sys.stderr)
        return USAGE_ERROR
    current = served_tag(args.kind, settings)
    if current == challenger.tag:
        print(f"{challenger.tag} is already the served {args.kind} model: nothing to do")
        return 0
    try:
        served = load(args.kind, current, level) if current else None
    except ModelStoreError as exc:
        print(f"error: the served {args.kind} model cannot be loaded to compare with: {exc}", file=sys.stderr)
        if not args.force:
            return USAGE_ERROR
        served = None
    finding, promotion = judge(args, challenger, served)
    print(promotion.table)
    if finding != "passed" and not args.force:
        print(f"not pinned: {current} stays served", file=sys.stderr)
        return EXIT[finding]
    record(args.kind, challenger.tag, promotion)
    write_pin(settings.models.pins, args.kind, challenger.tag)
    if settings.models.tags.get(args.kind):
        print(f"note: WINE_{args.kind.upper()}_MODEL is set and wins over the pin file", file=sys.stderr)
    print(f"pinned {challenger.tag} in {settings.models.pins}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
