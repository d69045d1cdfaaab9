"""The recent rows of every entry worker, in ring buffers that the worker answering /metrics reads all of.

Each entry worker process writes the rows it grades, with their predicted grade and the time, into its own ring
buffer per model: a small file mapped into memory (numpy.memmap), so that an append is a few slice assignments and
no system call. Whichever worker answers /metrics or /monitoring maps every worker's file read-only and takes the
newest `size` rows of a model across all of them, no older than `max_age_s`: the drift is that of the service's
traffic, not of one worker's share, and every worker reports the same figures.

The files live in a folder of the server's own, named after its supervisor process (every worker's parent), so that
two servers never share a window; a folder whose server is gone is removed when the next server's first worker
makes its own. A worker whose ring file disappears (a cleaner of /tmp, say) makes it again (it checks every
RECHECK_EVERY appends), losing its recent rows only.

A slot is marked empty (time NaN) while it is rewritten and gets its time last; a reader that meets a slot during
that instant skips it or, at worst, reads one row half old, half new: harmless for a distribution of many rows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from wine_quality.schema import FEATURE_NAMES

WIDTH = len(FEATURE_NAMES)
PREDICTION, STAMP = WIDTH, WIDTH + 1  # columns after the features: the predicted grade, the time (unix seconds)
COLUMNS = WIDTH + 2
FOLDER = "wine-drift"
RECHECK_EVERY = 1024  # appends between two checks that a ring's file is still there (a stat call)


def server_folder(base: Path | None = None) -> Path:
    """The folder every entry worker of this server shares (in the temporary directory, named after the supervisor);
    the folders of servers that are gone are removed."""
    base = base or Path(tempfile.gettempdir())
    for stale in base.glob(f"{FOLDER}-*"):
        pid = stale.name.removeprefix(f"{FOLDER}-")
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    folder = base / f"{FOLDER}-{os.getppid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Ring:
    """One worker's ring buffer of one model's recent rows."""

    def __init__(self, path: Path, capacity: int) -> None:
        self.path, self.capacity, self.next, self.appends = path, capacity, 0, 0
        path.parent.mkdir(parents=True, exist_ok=True)
        # a plain ndarray over the mapping: slicing a np.memmap costs 4 times as much, per request
        self.data = np.memmap(path, dtype=np.float64, mode="w+", shape=(capacity, COLUMNS)).view(np.ndarray)
        self.data[:, STAMP] = np.nan

    def append(self, rows: np.ndarray, predicted: np.ndarray) -> None:
        """Keep these rows (N x 11, schema order) and their grades, overwriting the oldest when full."""
        if len(rows) > self.capacity:
            rows, predicted = rows[-self.capacity :], predicted[-self.capacity :]
        stamp, start = time.time(), self.next
        first = min(len(rows), self.capacity - start)
        self._write(start, rows[:first], predicted[:first], stamp)
        if first < len(rows):
            self._write(0, rows[first:], predicted[first:], stamp)
        self.next = (start + len(rows)) % self.capacity
        self.appends += 1

    def _write(self, at: int, rows: np.ndarray, predicted: np.ndarray, stamp: float) -> None:
        slots = self.data[at : at + len(rows)]
        slots[:, STAMP] = np.nan
        slots[:, :WIDTH] = rows
        slots[:, PREDICTION] = predicted
        slots[:, STAMP] = stamp


class Window:
    """The rows of one server's recent traffic: this worker's rings to write, every worker's rings to read."""

    def __init__(self, folder: Path, size: int, max_age_s: float, owner: str | None = None) -> None:
        self.folder, self.size, self.max_age_s = folder, size, max_age_s
        self.owner = owner or str(os.getpid())  # names this process's files; tests stand for several workers
        self._rings: dict[str, Ring] = {}
        self._mapped: dict[Path, np.ndarray] = {}

    def append(self, kind: str, rows: np.ndarray, predicted: np.ndarray) -> None:
        """Keep rows graded by this worker for a model."""
        ring = self._rings.get(kind)
        # made on first use (a worker that never grades with a model writes no file for it), and again if removed
        if ring is None or (ring.appends % RECHECK_EVERY == 0 and not ring.path.exists()):
            ring = self._rings[kind] = Ring(self.folder / f"{kind}.{self.owner}.ring", self.size)
        ring.append(rows, predicted)

    def recent(self, kind: str) -> tuple[np.ndarray, int]:
        """The newest rows of a model across every worker (columns: features, grade, time), and how many worker
        processes those rows came from."""
        now, parts = time.time(), []
        for path in sorted(self.folder.glob(f"{kind}.*.ring")):
            data = self._map(path)
            if data is not None:
                parts.append(data[data[:, STAMP] >= now - self.max_age_s])  # NaN (empty, being written) is false
        parts = [p for p in parts if len(p)]
        if not parts:
            return np.empty((0, COLUMNS)), 0
        rows, owners = np.concatenate(parts), np.repeat(np.arange(len(parts)), [len(p) for p in parts])
        newest = np.argsort(rows[:, STAMP], kind="stable")[-self.size :]
        return rows[newest], len(np.unique(owners[newest]))

    def _map(self, path: Path) -> np.ndarray | None:
        if path not in self._mapped:
            try:
                data = np.memmap(path, dtype=np.float64, mode="r")
            except (OSError, ValueError):  # another worker is creating it at this instant: next time
                return None
            if len(data) == 0 or len(data) % COLUMNS:
                return None
            self._mapped[path] = data.reshape(-1, COLUMNS)
        return self._mapped[path]
