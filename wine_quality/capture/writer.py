"""The capture writer: the request path appends to a bounded buffer; a thread writes it every flush interval, or as
soon as 64 requests' wines, or 2,000 wines, wait.

`record` is a lock, a length check and a list append. The thread takes the whole buffer and writes it in one
transaction (multi-row INSERTs, a chunk at a time: insert.py). While the database is away the
rows stay in the buffer and are written when it comes back; rows beyond `buffer_rows` are dropped, counted on
wine_capture_dropped_rows_total{reason="overflow"} and logged once per interval. Rows the database refuses for good
(a duplicate id: a caller's bug) are dropped the same way with reason "rejected", those still buffered when `close`
gives up with reason "shutdown".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import DBAPIError

from wine_quality.capture.batch import CaptureBatch, Columns, columns
from wine_quality.capture.counters import dropped_rows, written_rows
from wine_quality.capture.errors import CaptureUnavailable, transient
from wine_quality.capture.insert import Inserter
from wine_quality.capture.tables import feedback, predictions, utc
from wine_quality.settings import CaptureSettings

logger = logging.getLogger(__name__)
RETENTION_EVERY_S = 3600.0  # how often old rows are deleted; after a failed try, a minute
# Converting rows holds the GIL, and the event loop waits for it up to the switch interval (5 ms) each time it wakes:
# a flush of a second's wines in one go delayed the answers in flight by tens of milliseconds. The writer converts
# and inserts this many batches (single wines, mostly), or this many wines (1,000-wine batches: 64 of them held the
# loop back for 50 ms, the batches' p99), at a time, then sleeps briefly, which lets the loop run; and it writes as
# soon as either many wait, so that under load its work comes in small, even portions (and a SIGKILL loses less)
# instead of one large one every flush interval.
CHUNK_BATCHES = 64
CHUNK_ROWS = 2000
PAUSE_S = 0.0002
T = TypeVar("T")


def _pause() -> None:
    time.sleep(PAUSE_S)  # sleeping releases the GIL to a waiting thread: not a wait for any state


def _chunks(items: list[T], rows_of: Callable[[T], int]) -> Iterator[list[T]]:
    """Consecutive runs of at most CHUNK_BATCHES batches and, unless one batch alone is more, CHUNK_ROWS rows."""
    chunk: list[T] = []
    rows = 0
    for item in items:
        n = rows_of(item)
        if chunk and (len(chunk) == CHUNK_BATCHES or rows + n > CHUNK_ROWS):
            yield chunk
            chunk, rows = [], 0
        chunk.append(item)
        rows += n
    if chunk:
        yield chunk


class Writer:
    """Buffers captured batches and writes them from a background thread."""

    def __init__(self, engine: Engine, settings: CaptureSettings, prepare: Callable[[], None] | None = None) -> None:
        self.engine, self.interval, self.bound = engine, settings.flush_interval_s, settings.buffer_rows
        self.inserter = Inserter(engine.dialect)
        self.prepare = prepare  # run before each write until it succeeds once (the migration, if start-up missed it)
        self.retention_days = settings.retention_days
        self._lock = threading.Lock()  # guards the buffer; held for microseconds
        self._flushing = threading.Lock()  # one flush at a time: the thread's, a feedback's, close's
        self._pending: list[tuple[CaptureBatch, float]] = []
        self._waiting = 0  # rows in _pending
        self._held = 0  # rows buffered, including those of a flush in progress
        self._overflow = 0  # rows dropped since the last log line
        self._closed = False
        self._down_since: float | None = None
        self._next_retention = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()  # a chunk's worth of requests waits: write it now, not at the interval's end
        self._thread = threading.Thread(target=self._run, name="wine-capture-writer", daemon=True)
        dropped_rows()  # the counter exists (at zero) before anything is dropped

    @property
    def held(self) -> int:
        """Rows recorded and not yet written."""
        return self._held

    @property
    def down(self) -> bool:
        """Whether the last write failed because the database was unreachable (until one succeeds)."""
        return self._down_since is not None

    def start(self) -> None:
        """Start the background thread."""
        self._thread.start()

    def record(self, batch: CaptureBatch) -> None:
        """Keep a batch for the next write; the part beyond the bound is dropped and counted."""
        n, stamp = len(batch), time.time()
        with self._lock:
            room = 0 if self._closed else self.bound - self._held
            if n <= room:
                self._pending.append((batch, stamp))
                self._held += n
                self._waiting += n
                if len(self._pending) == CHUNK_BATCHES or self._waiting - n < CHUNK_ROWS <= self._waiting:
                    self._wake.set()
                return
            if room > 0:
                self._pending.append((batch.head(room), stamp))
                self._held += room
                self._waiting += room
            lost, closed = n - max(room, 0), self._closed
            if not closed:
                self._overflow += lost
        # after close, a late request's wines have no writer left: counted apart from a full buffer
        dropped_rows().labels("shutdown" if closed else "overflow").inc(lost)

    def flush(self) -> int:
        """Write everything buffered now, in one transaction; the rows written. CaptureUnavailable keeps them."""
        with self._flushing:
            with self._lock:
                taken, self._pending, waited, self._waiting = self._pending, [], self._waiting, 0
            if not taken:
                return 0
            try:
                if self.prepare is not None:
                    self.prepare()
                    self.prepare = None
                written, rejected = self._write(taken)
            except Exception as exc:
                if not transient(exc):
                    raise
                with self._lock:
                    self._pending[:0] = taken
                    self._waiting += waited
                self._went_down(exc)
                raise CaptureUnavailable(f"capture database unreachable: {exc}") from exc
            with self._lock:
                self._held -= written + rejected
            self._came_back()
            written_rows().inc(written)
            return written

    def _write(self, taken: list[tuple[CaptureBatch, float]]) -> tuple[int, int]:
        converted: list[Columns] = []
        rejected = 0
        for portion in _chunks(taken, lambda held: len(held[0])):
            for batch, stamp in portion:
                try:
                    converted.append(columns(batch, stamp))
                except Exception:  # a bug in a caller's batch: drop that batch alone, loudly
                    logger.exception("captured batch of %d rows could not be converted: dropped", len(batch))
                    rejected += self._reject(len(batch))
            _pause()
        try:
            with self.engine.begin() as connection:
                for chunk in _chunks(converted, lambda part: part.n):
                    self.inserter.write(connection, chunk)
                    _pause()
            return sum(part.n for part in converted), rejected
        except DBAPIError as exc:
            if transient(exc):
                raise
        # refused for good (a duplicate id, a value the column cannot hold): find the batches at fault
        written = 0
        for part in converted:
            try:
                with self.engine.begin() as connection:
                    self.inserter.write(connection, [part])
                written += part.n
            except DBAPIError as exc:
                if transient(exc):
                    raise
                logger.error("capture database refused a batch of %d rows: dropped (%s)", part.n, exc.orig)
                rejected += self._reject(part.n)
        return written, rejected

    def _reject(self, n: int) -> int:
        dropped_rows().labels("rejected").inc(n)
        return n

    def _went_down(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning(
                "capture database unreachable, keeping up to %d rows in memory and retrying every %.1f s: %s",
                self.bound,
                self.interval,
                exc,
            )

    def _came_back(self) -> None:
        if self._down_since is not None:
            logger.warning("capture database reachable again after %.0f s", time.monotonic() - self._down_since)
            self._down_since = None

    def _log_overflow(self) -> None:
        with self._lock:
            lost, self._overflow = self._overflow, 0
        if lost:
            logger.warning("capture buffer full (%d rows): %d rows dropped in the last interval", self.bound, lost)

    def apply_retention(self, now: datetime | None = None) -> int:
        """Delete the wines older than retention_days, and their feedback; the number of wines deleted."""
        if self.retention_days is None:
            return 0
        cutoff = utc(now or datetime.now(UTC)) - timedelta(days=self.retention_days)
        old = select(predictions.c.id).where(predictions.c.time < cutoff)
        with self.engine.begin() as connection:
            connection.execute(delete(feedback).where(feedback.c.id.in_(old)))
            deleted = connection.execute(delete(predictions).where(predictions.c.time < cutoff)).rowcount
        if deleted:
            logger.info("capture retention: %d wines older than %s days deleted", deleted, self.retention_days)
        return int(deleted)

    def _run(self) -> None:
        next_log = time.monotonic() + self.interval
        while True:
            self._wake.wait(self.interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                self.flush()
            except CaptureUnavailable:
                pass  # logged once when it went down; the rows wait for the next interval
            except Exception:  # a bug must not end the thread, or capture would stop for good
                logger.exception("capture writer failed; trying again next interval")
            if time.monotonic() >= next_log:
                self._log_overflow()
                next_log = time.monotonic() + self.interval
            if self.retention_days is not None and time.monotonic() >= self._next_retention:
                try:
                    self.apply_retention()
                    self._next_retention = time.monotonic() + RETENTION_EVERY_S
                except DBAPIError:
                    self._next_retention = time.monotonic() + 60.0

    def close(self, timeout_s: float = 10.0) -> int:
        """Stop the thread and write what is buffered, trying for up to timeout_s; the rows lost (counted)."""
        with self._lock:
            self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.flush()
                break
            except CaptureUnavailable:
                if time.monotonic() >= deadline:
                    break
                time.sleep(min(0.5, self.interval))  # waiting for the database to come back, not for a state
        self._log_overflow()
        with self._lock:
            lost, self._pending, self._held = self._held, [], 0
        if lost:
            dropped_rows().labels("shutdown").inc(lost)
            logger.error("capture: %d rows could not be written before shutdown and are lost", lost)
        return lost
