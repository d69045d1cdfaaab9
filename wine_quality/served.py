"""What the service serves: the pinned model of each kind, its card, its runtime, and how answers are built from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from pydantic import Field

from wine_quality.card import DriftReference, ModelCard, TypeCard, level_key
from wine_quality.intervals import GradeSpans
from wine_quality.kinds import KINDS
from wine_quality.pins import pinned_tag
from wine_quality.runtimes import Predictor, Runtime, as_double, clipped, load_onnx
from wine_quality.schema import FEATURE_NAMES, TARGET_HIGH, TARGET_LOW, TYPES, WineType, by_type
from wine_quality.settings import Settings
from wine_quality.store import ModelStoreError, find_stored, read_card

_WITHIN: list[str] = []  # the out-of-range features of a row within range: shared by every such row, never changed


class ServedModelInfo(ModelCard):
    """A served model as `/models` describes it: its card (each type's figures in `types`), its version, and how
    this service runs it."""

    tag: str = Field(description="name:version in the model store")
    created: datetime
    runtime: Runtime = Field(description="what predicts: ONNX Runtime, or the model's native library")
    served_coverage: float = Field(description="coverage of the interval in every answer")


@dataclass(frozen=True)
class TypeServing:
    """What serving reads of one type's section of a card, as arrays: its intervals, ranges and drift reference."""

    card: TypeCard
    half_width: float  # without ranges: prediction ± half_width covers the true grade with probability `coverage`
    spans: GradeSpans | None  # grade by grade at `coverage`, when the card has ranges at that level
    low: np.ndarray  # [11] the least of each feature among this type's training rows
    high: np.ndarray

    @classmethod
    def of(cls, card: TypeCard, level: str) -> TypeServing:
        ranges = np.array([card.feature_ranges[name] for name in FEATURE_NAMES])
        by_grade = card.interval.by_grade or {}
        return cls(
            card=card,
            half_width=card.interval.half_width[level],
            spans=GradeSpans(by_grade[level]) if level in by_grade else None,
            low=ranges[:, 0],
            high=ranges[:, 1],
        )

    @property
    def reference(self) -> DriftReference:
        """This type's training distributions, which its recent wines are compared with."""
        return self.card.reference

    def intervals(self, qualities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated interval around each predicted grade, kept on the 0-10 scale."""
        if self.spans is not None:
            return self.spans(qualities)
        return (
            np.clip(qualities - self.half_width, TARGET_LOW, TARGET_HIGH),
            np.clip(qualities + self.half_width, TARGET_LOW, TARGET_HIGH),
        )


@dataclass(frozen=True)
class ServedModel:
    """A stored model as the service sees it: identity, card, runtime, and each type's intervals and ranges.

    Rows reach the model as MODEL_INPUTS ([N, 12]); the intervals and range flags of an answer are of each row's own
    type, told by a boolean array `white` ([N]). A type the model was not trained on is served with the other type's
    intervals and ranges, and its wines are flagged outside the training range (`type`, first).
    """

    kind: str
    tag: str
    path: Path
    card: ModelCard
    created: datetime
    runtime: Runtime
    coverage: float
    types: dict[WineType, TypeServing]  # every type: one the card lacks maps to the other's

    @classmethod
    def load(cls, kind: str, settings: Settings) -> ServedModel:
        """The pinned model of a kind, checked against the store, the schema and the served coverage."""
        stored = find_stored(kind, pinned_tag(kind, settings.models))
        card = read_card(kind, stored)
        retrain = f"retrain with `{KINDS[kind].train_command}`"
        level = level_key(settings.models.interval_coverage)
        if not card.types:
            raise ModelStoreError(f"model {stored.tag} has no section of any wine type: {retrain}")
        for wine_type, found in card.types.items():
            widths = found.interval.half_width
            if level not in widths:
                raise ModelStoreError(
                    f"model {stored.tag} has no prediction interval calibrated for coverage {level} for {wine_type} "
                    f"wines (it has {sorted(widths)}): set WINE_INTERVAL_COVERAGE to one of those or {retrain}"
                )
        served = {t: TypeServing.of(c, level) for t, c in card.types.items()}
        return cls(
            kind=kind,
            tag=str(stored.tag),
            path=Path(stored.path),
            card=card,
            created=stored.info.creation_time,
            runtime=settings.models.runtime,
            coverage=settings.models.interval_coverage,
            types={t: served.get(t) or next(iter(served.values())) for t in TYPES},
        )

    def predictor(self, threads: int) -> Predictor:
        """Load the model into the runtime this service uses: for rows [N, 12] of MODEL_INPUTS (the raw features,
        then white), a regressor's grades on the 0-10 scale, or a classifier's probabilities (a column per grade of
        its card)."""
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

    def intervals(self, qualities: np.ndarray, white: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated interval around each predicted grade, of its wine's type, kept on the 0-10 scale."""
        parts = by_type(white)
        if len(parts) == 1:
            return self.types[parts[0][0]].intervals(qualities)
        low, high = np.empty(len(qualities)), np.empty(len(qualities))
        for wine_type, rows in parts:
            low[rows], high[rows] = self.types[wine_type].intervals(qualities[rows])
        return low, high

    def outside(self, rows: np.ndarray, white: np.ndarray) -> np.ndarray:
        """For rows [N, 11] of features, which values [N, 11] lie outside what the model saw of their type."""
        parts = by_type(white)
        if len(parts) == 1:
            served = self.types[parts[0][0]]
            return (rows < served.low) | (rows > served.high)
        flags = np.zeros(rows.shape, dtype=bool)
        for wine_type, of_type in parts:
            served = self.types[wine_type]
            flags[of_type] = (rows[of_type] < served.low) | (rows[of_type] > served.high)
        return flags

    def outside_training_range(self, rows: np.ndarray, white: np.ndarray) -> list[list[str]]:
        """For each row [N, 11], the features whose value lies outside what the model saw of its type in training;
        `type` first for a wine of a type the model was not trained on."""
        # the rows within range, nearly all, share one empty list, which nothing changes; a flagged row gets its own
        flagged: list[list[str]] = [_WITHIN] * len(rows)
        for wine_type, of_type in by_type(white):
            if wine_type not in self.card.types:
                for row in np.arange(len(rows))[of_type].tolist():
                    flagged[row] = ["type"]
        flags = self.outside(rows, white)
        if flags.any():
            for row, column in zip(*np.nonzero(flags), strict=True):
                if flagged[row] is _WITHIN:
                    flagged[row] = []
                flagged[row].append(FEATURE_NAMES[column])
        return flagged

    def info(self) -> ServedModelInfo:
        """The public description served by `/models`: the card, each type's figures included."""
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
