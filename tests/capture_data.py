"""What the capture tests share: batches made from a seeded generator, the database fixture, readers of the tables."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count as numbers
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from tests.postgres import Postgres
from wine_quality.capture.batch import CaptureBatch
from wine_quality.capture.counters import dropped_rows
from wine_quality.capture.ids import new_ids
from wine_quality.capture.store import Capture
from wine_quality.capture.tables import predictions
from wine_quality.settings import CaptureSettings

GRADE_LABELS = ("3", "4", "5", "6", "7", "8")
REGRESSOR_TAG = "wine_quality_sklearn:r1"
CLASSIFIER_TAG = "wine_quality_classifier:c1"
_numbers = numbers()


def _request(
    rng: np.random.Generator, n: int, route: str, tag: str, kind: str, ids: list[str] | None = None
) -> dict[str, Any]:
    """What every batch of a JSON request holds: ids, route, model and the measurements."""
    features = rng.uniform(0.1, 20, (n, 11))
    ids = ids if ids is not None else new_ids(n)
    return {
        "ids": ids,
        "route": route,
        "protocol": "json",
        "model_tag": tag,
        "runtime": "onnx",
        "kind": kind,
        "features": features,
    }


def regression_batch(
    rng: np.random.Generator,
    n: int,
    tag: str = REGRESSOR_TAG,
    wine_types: str | Sequence[str] = "red",
    request_id: str | None = None,
    ids: list[str] | None = None,
) -> CaptureBatch:
    """n graded wines with intervals, some flagged outside the training range."""
    grades = rng.uniform(3, 8, n)
    return CaptureBatch(
        **_request(rng, n, "/predict_batch", tag, "sklearn", ids),
        wine_types=wine_types,
        request_id=request_id,
        grades=grades,
        interval_low=np.floor(grades - rng.uniform(0, 1, n)),
        interval_high=np.ceil(grades + rng.uniform(0, 1, n)),
        interval_coverage=0.9,
        outside=[["pH", "alcohol"] if i % 3 == 0 else [] for i in range(n)],
    )


def classifier_batch(rng: np.random.Generator, n: int, tag: str = CLASSIFIER_TAG) -> CaptureBatch:
    """n classified wines: a probability per grade, no grade and no interval."""
    return CaptureBatch(
        **_request(rng, n, "/classify_batch", tag, "classifier"),
        wine_types="white",
        probabilities=rng.dirichlet(np.ones(len(GRADE_LABELS)), n),
        grade_labels=GRADE_LABELS,
    )


@pytest.fixture(params=["sqlite", "postgresql"], name="database_url")
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database: a SQLite file, then a database on the module's PostgreSQL server.

    A test module imports this fixture (`any_database`) and `tests.postgres.postgres_server` (the server, once
    per module).
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'capture.db'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.database(f"capture_{next(_numbers)}")


def settings(url: str, **changes: Any) -> CaptureSettings:
    """Settings on that database whose writer thread never flushes by itself during a test (tests flush)."""
    return CaptureSettings(**{"url": url, "flush_interval_s": 600.0, **changes})


def stored(capture: Capture) -> list[Any]:
    """Every row of the predictions table, in id (time) order."""
    with capture.engine.connect() as connection:
        return list(connection.execute(select(predictions).order_by(predictions.c.id)))


def count(capture: Capture) -> int:
    with capture.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(predictions)).scalar_one())


def dropped(reason: str) -> float:
    """The process's wine_capture_dropped_rows_total for that reason."""
    dropped_rows()  # the counter exists before it is read
    return REGISTRY.get_sample_value("wine_capture_dropped_rows_total", {"reason": reason}) or 0.0
