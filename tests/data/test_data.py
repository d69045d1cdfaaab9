"""The shipped data and the loader: both dialects, refusal of broken files, deduplication and the split."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from train.data import (
    DATA_DIR,
    DATA_FILES,
    RED,
    WHITE,
    DataError,
    deduplicate,
    is_type,
    load_files,
    load_typed,
    load_wines,
    split_wines,
)
from wine_quality.schema import FEATURE_NAMES, MODEL_INPUTS, TARGET, TYPE_COLUMN


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
    assert (a.rows_raw, len(a.x_train) + len(a.x_test)) == ({"red": 1599}, 1359)
    assert a.x_train.shape[1] == len(MODEL_INPUTS) and not a.x_all[:, -1].any()  # no type column: every wine red
    train_rows = {tuple(r) + (y,) for r, y in zip(a.x_train, a.y_train, strict=True)}
    assert not any(tuple(r) + (y,) in train_rows for r, y in zip(a.x_test, a.y_test, strict=True))


def _combined(tmp_path: Path) -> Path:
    """Both files in one, as the widely used combined file has them: a `type` column first, white rows first."""
    frames = [load_wines(path).assign(**{TYPE_COLUMN: name}) for path, name in ((WHITE, "white"), (RED, "Red"))]
    both = pd.concat(frames, ignore_index=True)
    path = tmp_path / "wines.csv"
    both[[TYPE_COLUMN, *FEATURE_NAMES, TARGET]].to_csv(path, index=False)
    return path


def test_a_file_with_a_type_column_holds_both_wines(tmp_path: Path) -> None:
    """A `type` column (any case) is read as red or white; such a file splits exactly as the two files do."""
    path = _combined(tmp_path)
    frame = load_typed(path)
    assert frame[TYPE_COLUMN].value_counts().to_dict() == {"white": 4898, "red": 1599}
    from_file, from_both = split_wines(frame, 0.2, 42), split_wines(load_files(DATA_FILES), 0.2, 42)
    assert from_file.rows_raw == from_both.rows_raw == {"red": 1599, "white": 4898}
    assert np.array_equal(from_file.x_test, from_both.x_test) and np.array_equal(from_file.y_train, from_both.y_train)


def test_a_file_without_a_type_column_is_the_type_its_name_or_the_option_says(tmp_path: Path) -> None:
    """The shipped files are typed by their names; another name needs --type; --type on a typed file is refused."""
    assert set(load_typed(WHITE)[TYPE_COLUMN]) == {"white"} and set(load_typed(RED)[TYPE_COLUMN]) == {"red"}
    mine = tmp_path / "cellar.csv"
    mine.write_text(RED.read_text())
    with pytest.raises(DataError, match="does not tell red from white: give --type red or --type white"):
        load_typed(mine)
    assert set(load_typed(mine, "white")[TYPE_COLUMN]) == {"white"}
    with pytest.raises(DataError, match="has a 'type' column; --type is for files without one"):
        load_typed(_combined(tmp_path), "red")


def test_a_type_other_than_red_or_white_is_refused(tmp_path: Path) -> None:
    """A rosé is named with its line and column, as any bad cell is."""
    path = _combined(tmp_path)
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace("white", "rosé", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 6, column 'type': 'rosé' is not one of \('red', 'white'\)"):
        load_wines(path)


def test_each_type_is_split_as_if_alone() -> None:
    """Red's held-out rows are those of the red file split alone; both types keep their share of held-out rows;
    `white` is 1 on white rows only."""
    both, red = split_wines(load_files(DATA_FILES), 0.2, 42), split_wines(load_wines(RED), 0.2, 42)
    assert np.array_equal(both.x_test[is_type(both.x_test, "red")], red.x_test)
    assert np.array_equal(both.y_train[is_type(both.x_train, "red")], red.y_train)
    white = is_type(both.x_all, "white")
    assert (white.sum(), (~white).sum()) == (3961, 1359)
    assert is_type(both.x_test, "white").sum() == 793 and is_type(both.x_test, "red").sum() == 272
