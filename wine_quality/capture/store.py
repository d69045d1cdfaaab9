"""The capture store the service holds: one object that migrates, records, takes feedback and measures live accuracy."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError

from wine_quality.capture.batch import CaptureBatch
from wine_quality.capture.errors import CaptureUnavailable, UnknownPredictions, transient
from wine_quality.capture.feedback import StoredFeedback, checked, store
from wine_quality.capture.ids import id_time
from wine_quality.capture.labelled import labelled_wines
from wine_quality.capture.live import LiveAccuracy, LiveCache, exposition
from wine_quality.capture.migrate import upgrade
from wine_quality.capture.tables import make_engine
from wine_quality.capture.writer import Writer
from wine_quality.settings import CaptureSettings

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)
# A wine graded by another process (or replica) reaches the database within its writer's flush interval: feedback
# for an id younger than two intervals plus this margin is looked for again until then, instead of a 404.
IN_FLIGHT_MARGIN_S = 1.0


class Capture:
    """Payload capture and feedback on one database; make one per worker process, after it has forked."""

    def __init__(self, settings: CaptureSettings, *, migrate: bool = True, live_ttl_s: float = 5.0) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url())
        prepare = None
        if migrate:
            try:
                upgrade(self.engine)
            except DBAPIError as exc:
                if not transient(exc):
                    self.engine.dispose()
                    raise
                # the service starts all the same: rows are kept in memory, and the writer migrates once it can
                logger.warning("capture database unreachable at start-up, migrating once it is back: %s", exc)
                prepare = self._migrate
        self.writer = Writer(self.engine, settings, prepare)
        self.live_cache = LiveCache(self.engine, settings.live_window, live_ttl_s)
        self._live_failing = False
        self.writer.start()

    def _migrate(self) -> None:
        upgrade(self.engine)

    def record(self, batch: CaptureBatch) -> None:
        """Keep a request's graded wines (the request path: microseconds, no I/O); ValueError if malformed."""
        batch.check()
        self.writer.record(batch)

    def flush(self) -> int:
        """Write what is buffered now (the thread does it every flush interval); the rows written."""
        return self.writer.flush()

    def feedback(self, items: Iterable[tuple[str, int]]) -> list[StoredFeedback]:
        """Store true grades, all or none; blocks up to about two flush intervals for ids graded just now.

        Raises InvalidFeedback (422), UnknownPredictions (404), ConflictingFeedback (409), CaptureUnavailable (503).
        """
        grades = checked(items)
        try:
            if self.writer.held:
                self.writer.flush()  # this worker's own recent wines are in the database before they are looked up
            while True:
                try:
                    return store(self.engine, grades, datetime.now(UTC))
                except UnknownPredictions as exc:
                    if not self._may_be_in_flight(exc.unknown):
                        raise
                    time.sleep(min(0.1, self.settings.flush_interval_s / 4))  # polled up to the deadline above
        except DBAPIError as exc:
            if transient(exc):
                raise CaptureUnavailable(f"capture database unreachable: {exc}") from exc
            raise

    def _may_be_in_flight(self, unknown: list[str]) -> bool:
        """Whether an unknown id could still be in another process's buffer: made less than two intervals ago."""
        horizon = 2 * self.settings.flush_interval_s + IN_FLIGHT_MARGIN_S
        made = [id_time(wine) for wine in unknown]
        return any(t is not None and time.time() - t < horizon for t in made)

    def live(self) -> LiveAccuracy:
        """Live accuracy per model and wine type (cached a few seconds); CaptureUnavailable when unreachable."""
        try:
            return self.live_cache.get()
        except DBAPIError as exc:
            raise CaptureUnavailable(f"capture database unreachable: {exc}") from exc

    def exposition(self) -> str:
        """The wine_live_* gauges in Prometheus' text format; empty (logged) while the database is unreachable."""
        try:
            text = exposition(self.live())
        except CaptureUnavailable as exc:
            if not self._live_failing:  # once per outage, not once per scrape
                logger.warning("no live accuracy on /metrics until the capture database answers: %s", exc)
            self._live_failing = True
            return ""
        self._live_failing = False
        return text

    def labelled(self, since: datetime | None = None) -> pd.DataFrame:
        """The labelled wines graded since then, for retraining (see labelled.labelled_wines)."""
        return labelled_wines(self.engine, since)

    def close(self, timeout_s: float = 10.0) -> int:
        """Write what is buffered (trying up to timeout_s if the database is away) and stop; the rows lost."""
        lost = self.writer.close(timeout_s)
        self.engine.dispose()
        return lost

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_capture(settings: CaptureSettings) -> Capture | None:
    """The service's capture store, migrated and writing; None when capture is off (WINE_CAPTURE=false)."""
    return Capture(settings) if settings.enabled else None
