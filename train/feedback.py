"""Tasted wines for training: the capture database's labelled wines, cut by time and merged with the data files' rows.

Training takes the labelled wines graded before a cutoff and leaves the most recent ones for the gate
(train/promote.py), so a model trained now is later compared on wines it never saw. A wine is its 11 measurements
and its type: tasted twice, it keeps the grade received last; in the data files too, the files' rows of it are
dropped and the tasted grade kept, since a taster's grade of the very wine the service graded is the newer and more
direct judgement, and a wine with two grades would teach the model both.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from train.data import DataError
from wine_quality.capture.labelled import labelled_wines
from wine_quality.capture.tables import make_engine
from wine_quality.card import TastedWines
from wine_quality.schema import FEATURE_NAMES, TARGET, TYPE_COLUMN, TYPES
from wine_quality.settings import SQLITE_FILE, CaptureSettings, get_settings

WINE = [*FEATURE_NAMES, TYPE_COLUMN]  # what makes two rows the same wine
USAGE_ERROR = 2  # the exit status of a run that cannot start: bad input, no database, no labelled wines


def gate_share(text: str) -> float:
    """--gate-share: a share from 0 (every labelled wine trains; the gate waits for newer ones) up to, not with, 1."""
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0.0 <= share < 1.0:
        raise argparse.ArgumentTypeError(f"a share from 0 up to (not with) 1 is needed, not {text!r}")
    return share


def database_url(settings: CaptureSettings) -> str:
    """The capture database's SQLAlchemy URL: WINE_CAPTURE_URL, else the SQLite file, which must exist already."""
    if settings.url is None and not (settings.directory / SQLITE_FILE).is_file():
        raise DataError(
            f"no capture database at {settings.directory / SQLITE_FILE}: set WINE_CAPTURE_URL or WINE_CAPTURE_DIR to "
            "the service's, or serve and collect tasters' grades (POST /feedback) first"
        )
    return settings.database_url()


def shown(url: str) -> str:
    """A database URL as the card records it: any password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def read_labelled(url: str) -> pd.DataFrame:
    """Every labelled wine of the capture database, oldest first (wine_quality.capture.labelled); DataError when the
    database cannot be read or holds none."""
    engine = make_engine(url)
    try:
        if not inspect(engine).has_table("feedback"):
            raise DataError(f"{shown(url)} is not a capture database (it has no feedback table): nothing to read")
        labelled = labelled_wines(engine)
    except DataError:
        raise
    except Exception as exc:  # an unreachable server, a file that is no database: one line, not a traceback
        raise DataError(f"cannot read the capture database {shown(url)}: {exc}") from exc
    finally:
        engine.dispose()
    if labelled.empty:
        raise DataError(
            f"no labelled wines in {shown(url)}: send tasters' grades of graded wines with POST /feedback first"
        )
    return labelled


def cutoff(labelled: pd.DataFrame, gate_share: float, now: datetime) -> datetime:
    """The time from which labelled wines are left for the gate: that of the first of the most recent
    ceil(share x n) (wines graded at that same moment go with it); `now` when none are left out."""
    left = math.ceil(gate_share * len(labelled))
    if left == 0:
        return now
    moment: datetime = labelled["time"].iloc[len(labelled) - left].to_pydatetime()
    return moment


def as_rows(labelled: pd.DataFrame) -> pd.DataFrame:
    """Labelled wines in the data files' layout (features, quality, type), one row per wine: the grade received
    last, in the order the wines were graded."""
    subset = [*FEATURE_NAMES, "wine_type"]
    latest = labelled.sort_values("received", kind="stable").drop_duplicates(subset, keep="last").sort_index()
    rows = latest[[*FEATURE_NAMES, TARGET]].astype({TARGET: "int64"})
    rows[TYPE_COLUMN] = latest["wine_type"].to_numpy()
    return rows.reset_index(drop=True)


def with_tasted(files: pd.DataFrame, tasted: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The files' rows without those of a tasted wine, then the tasted wines; and how many file rows were dropped."""
    marked = files.merge(tasted[WINE].assign(_tasted=True), on=WINE, how="left")
    kept = files[marked["_tasted"].isna().to_numpy()]
    return pd.concat([kept, tasted[files.columns]], ignore_index=True), len(files) - len(kept)


def tasted_for_training(
    files: pd.DataFrame, labelled: pd.DataFrame, gate_share: float, now: datetime, database: str
) -> tuple[pd.DataFrame, TastedWines]:
    """The training frame (the files' rows and the tasted wines graded before the cutoff) and its card section."""
    cut = cutoff(labelled, gate_share, now)
    before = labelled[labelled["time"] < cut]
    tasted = as_rows(before)
    frame, replaced = with_tasted(files, tasted)
    times = before["time"]
    section = TastedWines(
        database=database,
        cutoff=cut,
        gate_share=gate_share,
        rows=len(before),
        added=len(tasted),
        replaced=replaced,
        types={t: n for t in TYPES if (n := int((tasted[TYPE_COLUMN] == t).sum()))},
        first=times.min().to_pydatetime() if len(times) else None,
        last=times.max().to_pydatetime() if len(times) else None,
        held_out=len(labelled) - len(before),
    )
    return frame, section


def add_tasted(files: pd.DataFrame, gate_share: float) -> tuple[pd.DataFrame, TastedWines]:
    """--with-feedback: the files' rows with the capture database's tasted wines; a run without any ends here
    (exit 2), with the reason."""
    try:
        url = database_url(get_settings().capture)
        labelled = read_labelled(url)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    frame, tasted = tasted_for_training(files, labelled, gate_share, datetime.now(UTC), shown(url))
    print(
        f"{tasted.added} tasted wines added from {tasted.database} (graded {tasted.first} to {tasted.last}, "
        f"{tasted.replaced} file rows replaced by their tasted grade); {tasted.held_out} left for the gate",
        file=sys.stderr,
    )
    return frame, tasted
