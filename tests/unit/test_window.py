"""The drift window: each worker's ring buffer, read together by whichever worker answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from wine_quality import window
from wine_quality.window import PREDICTION, WIDTH, Window


def rows(first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n rows whose every feature and grade is its own number, first, first + 1, ..."""
    ids = np.arange(first, first + n, dtype=np.float64)
    return np.repeat(ids[:, None], WIDTH, axis=1), ids


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(window.time, "time", c)
    return c


def test_the_window_is_the_newest_rows_of_every_worker(tmp_path: Path, clock: Clock) -> None:
    """Rows of two workers, interleaved in time, make one window of the newest `size`, whatever worker reads it."""
    a, b = Window(tmp_path, 6, 60, owner="a"), Window(tmp_path, 6, 60, owner="b")
    for first in range(0, 12, 2):
        clock.now += 1
        (a if first % 4 == 0 else b).append("sklearn", *rows(first, 2))
    for reader in (a, b, Window(tmp_path, 6, 60, owner="c")):
        recent, workers = reader.recent("sklearn")
        assert recent[:, PREDICTION].tolist() == [6, 7, 8, 9, 10, 11]
        assert recent[:, 0].tolist() == [6, 7, 8, 9, 10, 11]
        assert workers == 2
    assert a.recent("torch")[0].shape == (0, WIDTH + 2)  # another model's window is its own


def test_a_ring_overwrites_its_oldest_rows(tmp_path: Path, clock: Clock) -> None:
    """More rows than it holds, in one batch or over several: the newest stay."""
    w = Window(tmp_path, 5, 60, owner="a")
    w.append("torch", *rows(0, 3))
    clock.now += 1
    w.append("torch", *rows(3, 4))  # wraps around the end of the ring
    assert sorted(w.recent("torch")[0][:, PREDICTION].tolist()) == [2, 3, 4, 5, 6]
    clock.now += 1
    w.append("torch", *rows(100, 12))  # a batch larger than the ring
    assert sorted(w.recent("torch")[0][:, PREDICTION].tolist()) == [107, 108, 109, 110, 111]


def test_old_rows_leave_the_window(tmp_path: Path, clock: Clock) -> None:
    """Rows older than max_age_s are forgotten, even with room left."""
    w = Window(tmp_path, 100, 60, owner="a")
    w.append("sklearn", *rows(0, 10))
    clock.now += 30
    w.append("sklearn", *rows(10, 5))
    assert len(w.recent("sklearn")[0]) == 15
    clock.now += 45
    assert w.recent("sklearn")[0][:, PREDICTION].tolist() == [10, 11, 12, 13, 14]
    clock.now += 60
    assert w.recent("sklearn")[1] == 0


def test_a_ring_whose_file_was_removed_is_made_again(tmp_path: Path, clock: Clock) -> None:
    """Another server emptying the folder (same BENTOML_HOME) costs this worker its recent rows, not its window."""
    folder = tmp_path / "drift"
    w = Window(folder, 50, 60, owner="a")
    w.append("sklearn", *rows(0, 10))
    shutil.rmtree(folder)
    for i in range(window.RECHECK_EVERY):
        w.append("sklearn", *rows(100 + i, 1))
    assert 0 < len(w.recent("sklearn")[0]) <= 50
    assert (folder / "sklearn.a.ring").is_file()
