"""Loading, checking, deduplicating and splitting wine CSV files."""

from __future__ import annotations

import csv
import difflib
import hashlib
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
    TARGET,
    TARGET_HIGH,
    TARGET_LOW,
    TOTAL_SO2,
)
from wine_quality.settings import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "data"
RED = DATA_DIR / "winequality-red.csv"
WHITE = DATA_DIR / "winequality-white.csv"
COLUMNS: tuple[str, ...] = (*FEATURE_NAMES, TARGET)


class DataError(ValueError):
    """A data file that cannot be used as it is; the message names the file, row and column."""


@dataclass(frozen=True)
class Split:
    """A deterministic train/test split of deduplicated rows."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    rows_raw: int
    rows_unique: int


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
    unknown = [c for c in columns if c not in COLUMNS]
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
    """Read a wine CSV (either dialect) into float features and an integer quality, refusing any bad cell."""
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
    raw = raw[list(COLUMNS)]
    values = raw.apply(pd.to_numeric, errors="coerce")
    bad = values.isna()
    if bad.any().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        cell = raw.iat[row, col]
        what = "an empty cell" if cell.strip() == "" else f"non-numeric value {cell!r}"
        raise DataError(f"{path}: line {row + 2}, column {COLUMNS[col]!r}: {what}")
    _check_values(path, values)
    frame = values[list(FEATURE_NAMES)].astype("float64")
    frame[TARGET] = values[TARGET].astype("int64")
    return frame


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


def split_wines(frame: pd.DataFrame, test_size: float, seed: int) -> Split:
    """Deduplicate, then split deterministically for the given seed."""
    unique = deduplicate(frame)
    x = unique[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    y = unique[TARGET].to_numpy(dtype=np.float64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, random_state=seed)
    return Split(x_train, x_test, y_train, y_test, rows_raw=len(frame), rows_unique=len(unique))
