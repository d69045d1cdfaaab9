"""Nested repeated K-fold evaluation of every candidate model against the paper's figures; writes the report.

One protocol for every model: exact duplicate rows removed, an outer RepeatedKFold with a fixed seed, and, inside
each outer training fold only, an inner K-fold search over the model's small grid (lowest inner MAE wins, then a refit
on the whole outer training fold). The inner out-of-fold residuals of the winning setting also give the model's
cross-conformal interval half-widths, whose coverage is then measured on the outer test fold it never saw.

    python -m train.evaluate [--data red|white|both] [--repeats N] [--folds 5] [--quick]

Writes EVALUATION.md, evaluation.json and the PNG plots to --out (default reports/; build/evaluate-quick with --quick).
The work is done in train/evaluation/; this module is its command line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from train.evaluation.candidates import BY_KEY
from train.evaluation.nested import CVPlan
from train.evaluation.report import Report, build_report, write_report
from train.evaluation.runner import run
from wine_quality.settings import PROJECT_ROOT


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--data", choices=("red", "white", "both"), default="both", help="default: %(default)s")
    p.add_argument("--repeats", type=int, help="outer repeats (default 3; 1 with --quick)")
    p.add_argument("--folds", type=int, default=5, help="outer folds (default %(default)s)")
    p.add_argument("--inner-folds", type=int, default=3, help="inner search folds (default %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="seed of the folds and the models (default %(default)s)")
    p.add_argument("--models", default=",".join(BY_KEY), help="comma-separated subset of: %(default)s")
    p.add_argument("--jobs", type=int, default=2, help="runs side by side, one thread each (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="a smoke run: one repeat, one setting per model, few trees")
    p.add_argument("--out", type=Path, help="report folder (default reports/, or build/evaluate-quick with --quick)")
    return p


def main(argv: Sequence[str] | None = None) -> Report:
    """Evaluate, write the report, print where it went and the targets."""
    p = parser()
    args = p.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(BY_KEY))
    if unknown:
        p.error(f"unknown model(s) {unknown}; choose from {sorted(BY_KEY)}")
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1 or args.folds < 2 or args.inner_folds < 2 or args.jobs < 1:
        p.error("--repeats and --jobs must be at least 1, --folds and --inner-folds at least 2")
    out = args.out or (PROJECT_ROOT / ("build/evaluate-quick" if args.quick else "reports"))
    datasets = ["red", "white"] if args.data == "both" else [args.data]
    plan = CVPlan(folds=args.folds, repeats=repeats, inner_folds=args.inner_folds, seed=args.seed, quick=args.quick)

    started = time.perf_counter()
    evaluation = run(datasets, models, plan, args.jobs)
    command = "python -m train.evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
    report = build_report(evaluation, plan, command, time.perf_counter() - started, args.jobs)
    write_report(out, report)
    targets = {d: t.as_json() for d, t in report.targets.items()}
    print(json.dumps({"out": str(out), "wall_seconds": report.wall_seconds, "targets": targets}, indent=2))
    return report


if __name__ == "__main__":
    main()
