"""The labelled wines read back for retraining: measurements, wine type and true grade, as the data files name them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select

from wine_quality.capture.batch import FEATURE_COLUMNS
from wine_quality.capture.tables import feedback, predictions, utc
from wine_quality.schema import FEATURE_NAMES, TARGET

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("id", "time", "received", "model_tag", "model_kind", "wine_type", *FEATURE_NAMES, TARGET)


def labelled_wines(engine: Engine, since: datetime | None = None) -> pd.DataFrame:
    """Every captured wine with a true grade, graded at or after `since` (aware), oldest first.

    Columns: id, time and received (UTC), model_tag, model_kind, wine_type, the 11 measurements under their data
    file names ("fixed acidity", ...) and `quality`, the true grade: the training data's layout, plus provenance.
    """
    import pandas as pd  # training reads this; serving never does, and the bento does not ship pandas

    p = predictions.c
    features = [p[column].label(name) for column, name in zip(FEATURE_COLUMNS, FEATURE_NAMES, strict=True)]
    query = (
        select(p.id, p.time, feedback.c.received, p.model_tag, p.model_kind, p.wine_type, *features)
        .add_columns(feedback.c.grade.label(TARGET))
        .join(feedback, feedback.c.id == p.id)
        .order_by(p.time, p.id)
    )
    if since is not None:
        query = query.where(p.time >= utc(since))  # SQLite compares text: UTC on both sides
    with engine.connect() as connection:
        found = connection.execute(query).all()
    frame = pd.DataFrame([tuple(row) for row in found], columns=list(COLUMNS))
    for moment in ("time", "received"):
        frame[moment] = pd.to_datetime([utc(t) for t in frame[moment]], utc=True)
    frame[TARGET] = frame[TARGET].astype("int64")
    return frame
