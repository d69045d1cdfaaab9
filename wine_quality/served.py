"""What the service serves: the pinned model of each kind, its card, its runtime, and how answers are built from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from pydantic import Field

from wine_quality.card import ModelCard, level_key
from wine_quality.intervals import GradeSpans
from wine_quality.kinds import KINDS
from wine_quality.pins import pinned_tag
from wine_quality.runtimes import Predictor, Runtime, as_double, clipped, load_onnx
from wine_quality.schema import FEATURE_NAMES, TARGET_HIGH, TARGET_LOW
from wine_quality.settings import Settings
from wine_quality.store import ModelStoreError, find_stored, read_card


class ServedModelInfo(ModelCard):
    """A served model as `/models` describes it: its card, its version, and how this service runs it."""

    tag: str = Field(description="name:version in the model store")
    created: datetime
    runtime: Runtime = Field(description="what predicts: ONNX Runtime, or the model's native library")
    served_coverage: float = Field(description="coverage of the interval in every answer")


@dataclass(frozen=True)
class ServedModel:
    """A stored model as the service sees it: identity, card, runtime, and the training ranges."""

    kind: str
    tag: str
    path: Path
    card: ModelCard
    created: datetime
    runtime: Runtime
    coverage: float
    half_width: float  # without ranges: prediction ± half_width covers the true grade with probability `coverage`
    spans: GradeSpans | None  # grade by grade at `coverage`, when the card has ranges at that level
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def load(cls, kind: str, settings: Settings) -> ServedModel:
        """The pinned model of a kind, checked against the store, the schema and the served coverage."""
        stored = find_stored(kind, pinned_tag(kind, settings.models))
        card = read_card(kind, stored)
        widths = card.interval.half_width
        level = level_key(settings.models.interval_coverage)
        if level not in widths:
            raise ModelStoreError(
                f"model {stored.tag} has no prediction interval calibrated for coverage {level} (it has "
                f"{sorted(widths)}): set WINE_INTERVAL_COVERAGE to one of those or retrain with "
                f"`{KINDS[kind].train_command}`"
            )
        ranges = np.array([card.feature_ranges[name] for name in FEATURE_NAMES])
        by_grade = card.interval.by_grade or {}
        return cls(
            kind=kind,
            tag=str(stored.tag),
            path=Path(stored.path),
            card=card,
            created=stored.info.creation_time,
            runtime=settings.models.runtime,
            coverage=settings.models.interval_coverage,
            half_width=widths[level],
            spans=GradeSpans(by_grade[level]) if level in by_grade else None,
            low=ranges[:, 0],
            high=ranges[:, 1],
        )

    def predictor(self, threads: int) -> Predictor:
        """Load the model into the runtime this service uses: for rows of raw features, a regressor's grades on the
        0-10 scale, or a classifier's probabilities (a column per grade of its card)."""
        kind = KINDS[self.kind]
        output = clipped if kind.task == "regression" else as_double
        if self.runtime == "onnx":
            return output(load_onnx(self.path, threads))
        try:
            return output(kind.load_native(self.path / self.card.native_file, threads))
        except ImportError as exc:
            raise ModelStoreError(
                f"WINE_RUNTIME=native needs {', '.join(kind.native_packages)} for the {self.kind} model, and this "
                f"environment lacks {exc.name}: serve with WINE_RUNTIME=onnx or build the native image "
                "(`make image RUNTIME=native`)"
            ) from None

    def intervals(self, qualities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated interval around each predicted grade, kept on the 0-10 scale."""
        if self.spans is not None:
            return self.spans(qualities)
        return (
            np.clip(qualities - self.half_width, TARGET_LOW, TARGET_HIGH),
            np.clip(qualities + self.half_width, TARGET_LOW, TARGET_HIGH),
        )

    def outside_training_range(self, rows: np.ndarray) -> list[list[str]]:
        """For each row, the features whose value lies outside what the model saw in training."""
        flagged: list[list[str]] = [[] for _ in range(len(rows))]
        for row, column in zip(*np.nonzero((rows < self.low) | (rows > self.high)), strict=True):
            flagged[row].append(FEATURE_NAMES[column])
        return flagged

    def info(self) -> ServedModelInfo:
        """The public description served by `/models`."""
        return ServedModelInfo(
            **self.card.model_dump(),
            tag=self.tag,
            created=self.created,
            runtime=self.runtime,
            served_coverage=self.coverage,
        )


def served_models(settings: Settings) -> dict[str, ServedModel]:
    """The pinned model of every registered kind."""
    return {kind: ServedModel.load(kind, settings) for kind in KINDS}
