"""Loading, checking, deduplicating and splitting wine CSV files of red and white wines."""

from __future__ import annotations

import csv
import difflib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from wine_quality.schema import (
    FEATURE_NAMES,
    FEATURES,
    FREE_ABOVE_TOTAL,
    FREE_SO2,
    MODEL_INPUTS,
    TARGET,
    TARGET_HIGH,
    TARGET_LOW,
    TOTAL_SO2,
    TYPE_COLUMN,
    TYPES,
    WHITE_INPUT,
    WineType,
)
from wine_quality.settings import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "data"
RED = DATA_DIR / "winequality-red.csv"
WHITE = DATA_DIR / "winequality-white.csv"
DATA_FILES = (RED, WHITE)  # what training reads by default: both wines
COLUMNS: tuple[str, ...] = (*FEATURE_NAMES, TARGET)
WHITE_COLUMN = MODEL_INPUTS.index(WHITE_INPUT)


class DataError(ValueError):
    """A data file that cannot be used as it is; the message names the file, row and column."""


@dataclass(frozen=True)
class Split:
    """A deterministic train/test split of deduplicated rows, each type split on its own; x holds MODEL_INPUTS."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    rows_raw: dict[WineType, int]  # rows read, per type present, in TYPES order

    @property
    def types(self) -> tuple[WineType, ...]:
        return tuple(self.rows_raw)

    @property
    def x_all(self) -> np.ndarray:
        """Every unique row: the training rows, then the held-out ones."""
        return np.concatenate([self.x_train, self.x_test])

    @property
    def y_all(self) -> np.ndarray:
        return np.concatenate([self.y_train, self.y_test])


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _delimiter(path: Path, header: str) -> str:
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t").delimiter
    except csv.Error as exc:
        raise DataError(f"{path}: line 1: cannot tell the column separator (expected ',', ';' or tab)") from exc


def _check_columns(path: Path, columns: list[str]) -> None:
    missing = [c for c in COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in (*COLUMNS, TYPE_COLUMN)]
    if not missing and not unknown and len(set(columns)) == len(columns):
        return
    problems = []
    by_lower = {c.lower(): c for c in unknown}
    matched: set[str] = set()
    for name in missing:
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
        if close:
            matched.add(by_lower[close[0]])
            problems.append(f"missing column {name!r} (found {by_lower[close[0]]!r}: misspelt?)")
        else:
            problems.append(f"missing column {name!r}")
    problems += [f"unknown column {c!r}" for c in unknown if c not in matched]
    if len(set(columns)) != len(columns):
        problems.append("a column name appears twice")
    raise DataError(f"{path}: line 1 (header): " + "; ".join(problems))


def load_wines(path: str | Path) -> pd.DataFrame:
    """Read a wine CSV (either dialect) into float features and an integer quality, refusing any bad cell; a `type`
    column (red or white, as in the combined file of both wines) is kept, lower-cased, after them."""
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            header = handle.readline()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from exc
    if not header.strip():
        raise DataError(f"{path}: the file is empty")
    sep = _delimiter(path, header)
    raw = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
    raw.columns = [c.strip() for c in raw.columns]
    _check_columns(path, list(raw.columns))
    values = raw[list(COLUMNS)].apply(pd.to_numeric, errors="coerce")
    bad = values.isna()
    if bad.any().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        cell = raw[COLUMNS[col]].iat[row]
        what = "an empty cell" if cell.strip() == "" else f"non-numeric value {cell!r}"
        raise DataError(f"{path}: line {row + 2}, column {COLUMNS[col]!r}: {what}")
    _check_values(path, values)
    frame = values[list(FEATURE_NAMES)].astype("float64")
    frame[TARGET] = values[TARGET].astype("int64")
    if TYPE_COLUMN in raw.columns:
        frame[TYPE_COLUMN] = _checked_types(path, raw[TYPE_COLUMN])
    return frame


def _checked_types(path: Path, column: pd.Series) -> pd.Series:
    types = column.str.strip().str.lower()
    bad = ~types.isin(TYPES)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: line {row + 2}, column {TYPE_COLUMN!r}: {column.iat[row]!r} is not one of {TYPES}")
    return types


def _check_values(path: Path, values: pd.DataFrame) -> None:
    for feature in FEATURES:
        column = values[feature.name]
        outside = ~np.isfinite(column) | (column < feature.low) | (column > feature.high)
        if outside.any():
            row = int(np.flatnonzero(outside.to_numpy())[0])
            raise DataError(
                f"{path}: line {row + 2}, column {feature.name!r}: value {column.iat[row]} is outside "
                f"the physically possible range {feature.low}-{feature.high} {feature.unit}"
            )
    quality = values[TARGET]
    bad_quality = (quality != quality.round()) | (quality < TARGET_LOW) | (quality > TARGET_HIGH)
    if bad_quality.any():
        row = int(np.flatnonzero(bad_quality.to_numpy())[0])
        raise DataError(
            f"{path}: line {row + 2}, column {TARGET!r}: value {quality.iat[row]} is not a whole grade "
            f"from {TARGET_LOW} to {TARGET_HIGH}"
        )
    free_above_total = values[FREE_SO2] > values[TOTAL_SO2]
    if free_above_total.any():
        row = int(np.flatnonzero(free_above_total.to_numpy())[0])
        raise DataError(f"{path}: line {row + 2}: {FREE_ABOVE_TOTAL}")


def deduplicate(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop exact duplicate rows, which would otherwise land on both sides of a split."""
    return frame.drop_duplicates(ignore_index=True)


def file_type(path: Path, wine_type: str | None) -> str:
    """The type of every wine in a file without a `type` column: the one given, else the one its name holds."""
    if wine_type is not None:
        return wine_type
    named = [t for t in TYPES if t in path.name.lower()]
    if len(named) != 1:
        raise DataError(
            f"{path}: no {TYPE_COLUMN!r} column, and the file name does not tell red from white: give --type red or "
            "--type white, or add a type column"
        )
    return named[0]


def load_typed(path: str | Path, wine_type: str | None = None) -> pd.DataFrame:
    """A wine file with a `type` column: its own, or every row of the file's type (file_type)."""
    path = Path(path)
    frame = load_wines(path)
    if TYPE_COLUMN in frame.columns:
        if wine_type is not None:
            raise DataError(f"{path}: the file has a {TYPE_COLUMN!r} column; --type is for files without one")
        return frame
    frame[TYPE_COLUMN] = file_type(path, wine_type)
    return frame


def load_files(paths: Sequence[Path], wine_type: str | None = None) -> pd.DataFrame:
    """Every file's wines together, each with its type (load_typed)."""
    return pd.concat([load_typed(path, wine_type) for path in paths], ignore_index=True)


def model_inputs(frame: pd.DataFrame) -> np.ndarray:
    """The MODEL_INPUTS of each row: its 11 features, then 1.0 for a white wine and 0.0 for a red one (or none)."""
    white = frame[TYPE_COLUMN].eq("white") if TYPE_COLUMN in frame.columns else pd.Series(False, index=frame.index)
    return np.column_stack([frame[list(FEATURE_NAMES)].to_numpy(np.float64), white.to_numpy(np.float64)])


def is_type(x: np.ndarray, wine_type: str) -> np.ndarray:
    """Which rows of MODEL_INPUTS are wines of this type."""
    return np.asarray(x[:, WHITE_COLUMN] == float(wine_type == "white"))


def split_wines(frame: pd.DataFrame, test_size: float, seed: int) -> Split:
    """Deduplicate, then split each type deterministically for the given seed (rows without a type are red).

    Each type is split on its own, as if it were alone: the red rows fall as they did when models saw red only, so
    the held-out red wines are the same, and both types keep their share of held-out rows.
    """
    parts = []
    frames = dict(iter(frame.groupby(TYPE_COLUMN, sort=False))) if TYPE_COLUMN in frame.columns else {"red": frame}
    for wine_type in (t for t in TYPES if t in frames):
        unique = deduplicate(frames[wine_type])
        x, y = model_inputs(unique.assign(**{TYPE_COLUMN: wine_type})), unique[TARGET].to_numpy(dtype=np.float64)
        held_out = train_test_split(x, y, test_size=test_size, random_state=seed)
        parts.append((wine_type, len(frames[wine_type]), held_out))
    x_train, x_test, y_train, y_test = (np.concatenate([p[2][i] for p in parts]) for i in range(4))
    return Split(x_train, x_test, y_train, y_test, rows_raw={t: rows for t, rows, _ in parts})
