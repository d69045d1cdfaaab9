"""One request's graded wines, as columns: what the request path hands to the writer, and the rows it becomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from wine_quality.schema import FEATURES

# The measurements' columns, in schema order: the schema's field names in lower case ("ph"), so that SQL written by
# hand against PostgreSQL needs no quotes.
FEATURE_COLUMNS: tuple[str, ...] = tuple(f.field.lower() for f in FEATURES)
WINE_TYPES = ("red", "white")
REQUEST_ID_LENGTH = 200  # a client's X-Request-ID is cut to this: one long header must not cost a whole flush


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ cost 6 us of each request's 1 ms in the entry
class CaptureBatch:
    """The wines one request graded or classified; per-wine fields are sequences or arrays of the batch's length.
    Made by the request path and only read after: the writer converts it in its thread.

    Either `grades` (regressors) or `probabilities` with `grade_labels` naming their columns (the classifier), or
    both. `interval_low`/`interval_high` and `outside` are per wine too; `wine_types` is one type for the whole
    batch or one per wine.
    """

    ids: Sequence[str]
    route: str
    protocol: str
    model_tag: str
    runtime: str
    kind: str
    features: np.ndarray  # float64, [N, 11] in schema order
    wine_types: str | Sequence[str] = "red"
    request_id: str | None = None
    grades: np.ndarray | None = None  # [N]
    probabilities: np.ndarray | None = None  # [N, len(grade_labels)]
    grade_labels: Sequence[str] | None = None  # e.g. ("3", "4", ..., "8")
    interval_low: np.ndarray | None = None  # [N]
    interval_high: np.ndarray | None = None  # [N]
    interval_coverage: float | None = None  # the nominal coverage of those intervals, e.g. 0.9
    outside: Sequence[Sequence[str]] | None = None  # per wine, the features outside the training range

    def __len__(self) -> int:
        return len(self.ids)

    def check(self) -> None:
        """Refuse a malformed batch where it is made, not in the writer's thread (a few length comparisons)."""
        n = len(self.ids)
        if self.features.shape != (n, len(FEATURE_COLUMNS)):
            raise ValueError(f"features of shape {self.features.shape} for {n} ids")
        for name in ("grades", "probabilities", "interval_low", "interval_high", "outside"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{len(value)} {name} for {n} ids")
        if self.probabilities is not None and (
            self.grade_labels is None or self.probabilities.shape[1:] != (len(self.grade_labels),)
        ):
            raise ValueError("probabilities need grade_labels, one per column")
        if isinstance(self.wine_types, str):
            if self.wine_types not in WINE_TYPES:
                raise ValueError(f"wine type {self.wine_types!r} is not one of {WINE_TYPES}")
        elif len(self.wine_types) != n or not set(self.wine_types) <= set(WINE_TYPES):
            raise ValueError(f"wine_types must be {n} of {WINE_TYPES}")

    def head(self, n: int) -> CaptureBatch:
        """The first n wines (the part of a batch that still fits in a full buffer)."""
        cut: dict[str, Any] = {}
        for name in ("ids", "features", "grades", "probabilities", "interval_low", "interval_high", "outside"):
            value = getattr(self, name)
            if value is not None:
                cut[name] = value[:n]
        if not isinstance(self.wine_types, str):
            cut["wine_types"] = self.wine_types[:n]
        return replace(self, **cut)


@dataclass(frozen=True, slots=True)
class Columns:
    """A batch as the predictions table's columns: the values all its wines share, a list per column of those that
    differ wine by wine, and the measurements (left an array: a flush converts all its batches' at once)."""

    shared: dict[str, Any]
    each: dict[str, list[Any]]
    features: np.ndarray  # float64, [n, 11], the columns FEATURE_COLUMNS

    @property
    def n(self) -> int:
        return len(self.features)


def columns(batch: CaptureBatch, stamp: float) -> Columns:
    """The batch as the predictions table's columns, recorded at `stamp` (Unix seconds); a missing answer is one
    shared NULL."""
    shared: dict[str, Any] = {
        "time": datetime.fromtimestamp(stamp, UTC),
        "route": batch.route,
        "protocol": batch.protocol,
        "request_id": batch.request_id[:REQUEST_ID_LENGTH] if batch.request_id is not None else None,
        "model_tag": batch.model_tag,
        "runtime": batch.runtime,
        "model_kind": batch.kind,
        "interval_coverage": batch.interval_coverage,
    }
    each: dict[str, list[Any]] = {"id": list(batch.ids)}
    if isinstance(batch.wine_types, str):
        shared["wine_type"] = batch.wine_types
    else:
        each["wine_type"] = list(batch.wine_types)
    for name in ("grades", "interval_low", "interval_high"):
        values = getattr(batch, name)
        column = "grade" if name == "grades" else name
        if values is None:
            shared[column] = None
        else:
            each[column] = np.asarray(values, dtype=np.float64).tolist()
    if batch.probabilities is not None and batch.grade_labels is not None:
        labels = [str(g) for g in batch.grade_labels]
        each["probabilities"] = [dict(zip(labels, p, strict=True)) for p in batch.probabilities.tolist()]
    else:
        shared["probabilities"] = None
    if batch.outside is None:
        shared["outside_training_range"] = []
    else:
        each["outside_training_range"] = [list(o) for o in batch.outside]
    return Columns(shared, each, np.asarray(batch.features, dtype=np.float64))
