"""The shipped data and the loader: both dialects, refusal of broken files, deduplication and the split."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from train.data import DATA_DIR, RED, WHITE, DataError, deduplicate, load_wines, split_wines
from wine_quality.schema import FEATURE_NAMES, TARGET


def test_shipped_files_match_their_checksums() -> None:
    """Every file listed in data/SHA256SUMS is unchanged."""
    lines = (DATA_DIR / "SHA256SUMS").read_text().split("\n")
    entries = [line.split() for line in lines if line.strip()]
    assert len(entries) == 3
    for digest, name in entries:
        assert hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize(("path", "rows", "unique"), [(RED, 1599, 1359), (WHITE, 4898, 3961)])
def test_both_dialects_load_into_the_same_shape(path: Path, rows: int, unique: int) -> None:
    """The comma/plain-header red file and the semicolon/quoted-header white file load alike."""
    frame = load_wines(path)
    assert list(frame.columns) == [*FEATURE_NAMES, TARGET]
    assert len(frame) == rows
    assert frame[list(FEATURE_NAMES)].dtypes.eq("float64").all()
    assert frame[TARGET].dtype == "int64"
    assert len(deduplicate(frame)) == unique


def test_first_red_row_is_the_seed_example() -> None:
    """The loader reads values exactly (the seed's curl payload is the first red row)."""
    from wine_quality.schema import EXAMPLE

    first = load_wines(RED).iloc[0]
    assert {name: first[name] for name in FEATURE_NAMES} == EXAMPLE
    assert first[TARGET] == 5


def test_a_user_csv_with_reordered_columns_loads(tmp_path: Path) -> None:
    """Column order in a user's file does not matter, and tabs work as separators."""
    frame = load_wines(RED).head(5)
    columns = list(reversed(frame.columns))
    path = tmp_path / "mine.tsv"
    frame[columns].to_csv(path, sep="\t", index=False)
    assert load_wines(path).equals(frame)


def _write_broken(tmp_path: Path, line: int, old: str, new: str) -> Path:
    lines = RED.read_text().splitlines()
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "old", "new", "expected"),
    [
        (1, "pH", "ph", "line 1 (header): missing column 'pH' (found 'ph': misspelt?)"),
        (1, ",alcohol", "", "missing column 'alcohol'"),
        (1, "quality", "quality,colour", "unknown column 'colour'"),
        (4, "0.04,2.3", "0.04,abc", "line 4, column 'residual sugar': non-numeric value 'abc'"),
        (7, "7.4,0.66", ",0.66", "line 7, column 'fixed acidity': an empty cell"),
        (2, "3.51", "15.1", "line 2, column 'pH': value 15.1 is outside the physically possible range"),
        (2, "0.076", "-0.076", "line 2, column 'chlorides': value -0.076 is outside"),
        (2, "9.4,5", "9.4,5.5", "line 2, column 'quality': value 5.5 is not a whole grade"),
        (2, "11.0,34.0", "40.0,34.0", "line 2: free sulfur dioxide cannot exceed total sulfur dioxide"),
    ],
)
def test_a_broken_file_is_refused_naming_file_line_and_column(
    tmp_path: Path, line: int, old: str, new: str, expected: str
) -> None:
    """Nothing is dropped or coerced: the first problem is reported with its place."""
    path = _write_broken(tmp_path, line, old, new)
    with pytest.raises(DataError) as info:
        load_wines(path)
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    """A path that does not exist gives a DataError, not a traceback from pandas."""
    with pytest.raises(DataError, match="cannot read"):
        load_wines(tmp_path / "nope.csv")


def test_split_is_deterministic_for_a_seed_and_leaks_no_duplicate() -> None:
    """Same seed, same split; another seed, another split; no test row also appears in training."""
    frame = load_wines(RED)
    a, b, c = split_wines(frame, 0.2, 7), split_wines(frame, 0.2, 7), split_wines(frame, 0.2, 8)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_test, c.x_test)
    assert (a.rows_raw, a.rows_unique, len(a.x_train) + len(a.x_test)) == (1599, 1359, 1359)
    train_rows = {tuple(r) + (y,) for r, y in zip(a.x_train, a.y_train, strict=True)}
    assert not any(tuple(r) + (y,) in train_rows for r, y in zip(a.x_test, a.y_test, strict=True))
