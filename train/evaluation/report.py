"""The report of one run: what was run where, the figures and verdicts; written as JSON, PNG plots and markdown."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from train.data import file_sha256
from train.evaluation.markdown import render
from train.evaluation.nested import CVPlan
from train.evaluation.plots import draw_plots
from train.evaluation.pooled_sections import classifier_pooling, poolings
from train.evaluation.results import Evaluation, Json, by_model_json
from train.evaluation.runner import DATASETS
from train.evaluation.verdicts import PAPER, Targets, targets
from wine_quality.card import INTERVAL_LEVELS

SELECTION = "lowest inner out-of-fold MAE"


@dataclass(frozen=True)
class DataFile:
    """A data file evaluated, by name and checksum."""

    file: str
    sha256: str

    @classmethod
    def of(cls, path: Path) -> DataFile:
        return cls(path.name, file_sha256(path))


@dataclass(frozen=True)
class Report:
    """One evaluation run and the circumstances it ran in."""

    generated: str
    command: str
    plan: CVPlan
    wall_seconds: float  # rounded to tenths, as reported
    jobs: int
    cpus: int | None
    versions: dict[str, str]
    data: dict[str, DataFile]
    evaluation: Evaluation
    targets: dict[str, Targets]

    def as_json(self) -> Json:
        ev = self.evaluation
        return {
            "generated": self.generated,
            "command": self.command,
            "protocol": {**asdict(self.plan), "selection": SELECTION, "levels": list(INTERVAL_LEVELS)},
            "wall_seconds": self.wall_seconds,
            "jobs": self.jobs,
            "cpus": self.cpus,
            "versions": self.versions,
            "data": {d: asdict(f) for d, f in self.data.items()},
            "paper": {d: PAPER[d] for d in self.data},
            "targets": {d: t.as_json() for d, t in self.targets.items()},
            "recommended": {
                "settings": {kind: asdict(r) for kind, r in ev.recommended.items()},
                "figures": by_model_json(ev.recommended_figures),
            },
            "nested": by_model_json(ev.nested),
            "duplicates_kept": by_model_json(ev.duplicates_kept),
            "learning_curves": {d: {s: c.as_json() for s, c in cs.items()} for d, cs in ev.curves.items()},
            "classifier": {d: r.as_json() for d, r in ev.classifiers.items()},
            "pooled": {m: {t: r.as_json() for t, r in by_type.items()} for m, by_type in ev.pooled.items()},
            "pooled_classifier": {t: r.as_json() for t, r in ev.pooled_classifiers.items()},
            "pooling": self.pooling(),
        }

    def pooling(self) -> Json:
        """Per family: pooled against per type, paired, and the layout chosen."""
        found = {p.model: p.as_json() for p in poolings(self)}
        classifier = classifier_pooling(self)
        return found | ({"classifier": classifier.as_json()} if classifier else {})


def versions() -> dict[str, str]:
    names = ("numpy", "scikit-learn", "torch")
    return {"python": platform.python_version(), **{n: metadata.version(n) for n in names}}


def build_report(evaluation: Evaluation, plan: CVPlan, command: str, wall_seconds: float, jobs: int) -> Report:
    """The run's report, with the verdicts against the paper and the data files' checksums."""
    return Report(
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=command,
        plan=plan,
        wall_seconds=round(wall_seconds, 1),
        jobs=jobs,
        cpus=os.cpu_count(),
        versions=versions(),
        data={d: DataFile.of(DATASETS[d]) for d in evaluation.datasets},
        evaluation=evaluation,
        targets={d: targets(d, results) for d, results in evaluation.nested.items()},
    )


def write_report(out: Path, report: Report) -> None:
    """evaluation.json, the PNG plots and EVALUATION.md in out/."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report.as_json(), indent=1) + "\n")
    (out / "EVALUATION.md").write_text(render(report, draw_plots(out, report.evaluation)))
