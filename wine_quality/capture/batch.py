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


@dataclass(frozen=True, slots=True)
class CaptureBatch:
    """The wines one request graded or classified; per-wine fields are sequences or arrays of the batch's length.

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


def _column(values: np.ndarray | None, n: int) -> list[Any]:
    return [None] * n if values is None else np.asarray(values, dtype=np.float64).tolist()


def rows(batch: CaptureBatch, stamp: float) -> list[dict[str, Any]]:
    """The batch as rows of the predictions table, recorded at `stamp` (Unix seconds)."""
    n = len(batch)
    common = {
        "time": datetime.fromtimestamp(stamp, UTC),
        "route": batch.route,
        "protocol": batch.protocol,
        "request_id": batch.request_id[:REQUEST_ID_LENGTH] if batch.request_id is not None else None,
        "model_tag": batch.model_tag,
        "runtime": batch.runtime,
        "model_kind": batch.kind,
        "interval_coverage": batch.interval_coverage,
    }
    types = [batch.wine_types] * n if isinstance(batch.wine_types, str) else list(batch.wine_types)
    if batch.probabilities is not None and batch.grade_labels is not None:
        labels = [str(g) for g in batch.grade_labels]
        probabilities: list[Any] = [dict(zip(labels, p, strict=True)) for p in batch.probabilities.tolist()]
    else:
        probabilities = [None] * n
    outside = [list(o) for o in batch.outside] if batch.outside is not None else [[] for _ in range(n)]
    columns = zip(
        batch.ids,
        types,
        np.asarray(batch.features, dtype=np.float64).tolist(),
        _column(batch.grades, n),
        probabilities,
        _column(batch.interval_low, n),
        _column(batch.interval_high, n),
        outside,
        strict=True,
    )
    return [
        {
            **common,
            "id": i,
            "wine_type": t,
            **dict(zip(FEATURE_COLUMNS, f, strict=True)),
            "grade": g,
            "probabilities": p,
            "interval_low": lo,
            "interval_high": hi,
            "outside_training_range": o,
        }
        for i, t, f, g, p, lo, hi, o in columns
    ]
