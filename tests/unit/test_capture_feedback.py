"""Feedback on SQLite and PostgreSQL: unknown ids, resends, conflicts, all or nothing, wines still in a buffer."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from tests.capture_data import any_database, regression_batch, settings  # noqa: F401  (fixture: database_url)
from tests.postgres import postgres_server  # noqa: F401  (fixture: postgres)
from wine_quality.capture.errors import ConflictingFeedback, InvalidFeedback, UnknownPredictions
from wine_quality.capture.ids import new_ids
from wine_quality.capture.store import Capture
from wine_quality.capture.tables import feedback
from wine_quality.protocols.feedback import TasterGrade


def _grades(capture: Capture) -> dict[str, int]:
    with capture.engine.connect() as connection:
        return {row.id: row.grade for row in connection.execute(select(feedback.c.id, feedback.c.grade))}


def test_a_grade_is_stored_once_and_a_resend_is_accepted(database_url: str) -> None:
    """The first call stores (new); the same grade again is accepted (not new, first time kept)."""
    with Capture(settings(database_url)) as capture:
        batch = regression_batch(np.random.default_rng(1), 2)
        capture.record(batch)
        (first,) = capture.feedback([(batch.ids[0], 6)])
        (again,) = capture.feedback([(batch.ids[0], 6)])
        assert (first.id, first.grade, first.new, again.new) == (batch.ids[0], 6, True, False)
        assert again.received == first.received and first.received.utcoffset() is not None
        assert _grades(capture) == {batch.ids[0]: 6}


def test_unknown_ids_are_named_and_nothing_is_stored(database_url: str) -> None:
    """A list with unknown ids is refused whole (404), naming each unknown id; its good items are not stored."""
    with Capture(settings(database_url)) as capture:
        batch = regression_batch(np.random.default_rng(2), 2)
        capture.record(batch)
        # a version-7 id from 2024, text that is no id, one too long to be one, one PostgreSQL could not even compare
        missing = ["0190a7c2-0000-7000-8000-000000000000", "not-an-id", "x" * 1000, "nul\x00"]
        with pytest.raises(UnknownPredictions) as raised:
            capture.feedback([(batch.ids[0], 5), *((m, 6) for m in missing)])
        assert raised.value.unknown == missing and all(m in str(raised.value) for m in missing[:3])
        assert _grades(capture) == {}


def test_another_grade_for_a_labelled_wine_is_a_conflict(database_url: str) -> None:
    """A different grade for a wine that has one is refused whole (409), naming the id and both grades."""
    with Capture(settings(database_url)) as capture:
        batch = regression_batch(np.random.default_rng(3), 3)
        capture.record(batch)
        capture.feedback([(batch.ids[0], 5)])
        with pytest.raises(ConflictingFeedback) as raised:
            capture.feedback([(batch.ids[1], 7), (batch.ids[0], 6)])
        assert raised.value.conflicts == {batch.ids[0]: (5, 6)} and batch.ids[0] in str(raised.value)
        assert _grades(capture) == {batch.ids[0]: 5}
        # the corrected resend of the same list goes through: the earlier grade again, the new one stored
        stored = capture.feedback([(batch.ids[1], 7), (batch.ids[0], 5)])
        assert [(s.id, s.grade, s.new) for s in stored] == [(batch.ids[1], 7, True), (batch.ids[0], 5, False)]


def test_unknown_ids_and_conflicts_together_are_a_404_naming_both(database_url: str) -> None:
    """With both problems in one list, the answer is 'unknown' and the message names the conflict too."""
    with Capture(settings(database_url)) as capture:
        batch = regression_batch(np.random.default_rng(4), 1)
        capture.record(batch)
        capture.feedback([(batch.ids[0], 5)])
        with pytest.raises(UnknownPredictions) as raised:
            capture.feedback([(batch.ids[0], 8), ("nope", 3)])
        assert raised.value.unknown == ["nope"] and raised.value.conflicts == {batch.ids[0]: (5, 8)}


def test_malformed_items_are_refused_before_the_database(database_url: str) -> None:
    """A grade outside 0-10, not an integer, or one id twice with two grades: 422, naming every bad item."""
    with Capture(settings(database_url)) as capture:
        batch = regression_batch(np.random.default_rng(5), 2)
        capture.record(batch)
        with pytest.raises(InvalidFeedback) as raised:
            capture.feedback([(batch.ids[0], 11), (batch.ids[1], 5.5), (batch.ids[1], True)])  # type: ignore[list-item]
        assert "item 0" in str(raised.value) and "item 1" in str(raised.value) and "item 2" in str(raised.value)
        with pytest.raises(InvalidFeedback, match="sent twice"):
            capture.feedback([(batch.ids[0], 5), (batch.ids[0], 6)])
        stored = capture.feedback([(batch.ids[0], 5), (batch.ids[0], 5), (batch.ids[1], 0)])  # a repeat is one item
        assert [(s.grade, s.new) for s in stored] == [(5, True), (0, True)]


def test_a_wine_still_in_the_buffer_is_found(database_url: str) -> None:
    """Feedback for a wine graded a moment ago, not yet written by the thread, is stored (the buffer is flushed)."""
    with Capture(settings(database_url)) as capture:
        batch = regression_batch(np.random.default_rng(6), 1)
        capture.record(batch)
        assert capture.writer.held == 1
        (stored,) = capture.feedback([(batch.ids[0], 4)])
        assert stored.new and capture.writer.held == 0


def test_a_wine_in_another_workers_buffer_is_waited_for(database_url: str) -> None:
    """An id graded by another worker less than two flush intervals ago is looked for again until it arrives.

    Both have the same flush interval, as the workers of one service do: the horizon is computed from one's own.
    """
    with (
        Capture(settings(database_url, flush_interval_s=0.5)) as grader,
        Capture(settings(database_url, flush_interval_s=0.5), migrate=False) as receiver,
    ):
        batch = regression_batch(np.random.default_rng(7), 1)
        grader.record(batch)
        started = time.monotonic()
        (stored,) = receiver.feedback([(batch.ids[0], 6)])
        assert stored.new and time.monotonic() - started < 2 * 0.5 + 1.0 + 5  # the poll's horizon, with slack
        with pytest.raises(UnknownPredictions):  # an unknown id made just now is waited for, then refused
            receiver.feedback([(new_ids(1)[0], 6)])


def test_many_grades_in_one_call(database_url: str) -> None:
    """1,200 grades (more than one IN list) are stored in one call, in order."""
    with Capture(settings(database_url)) as capture:
        batch = regression_batch(np.random.default_rng(8), 1200)
        capture.record(batch)
        stored = capture.feedback([(wine, i % 11) for i, wine in enumerate(batch.ids)])
        assert [s.id for s in stored] == list(batch.ids)
        with capture.engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(feedback)).scalar_one() == 1200


@pytest.mark.parametrize(("sent", "kept"), [(8, 8), (8.0, 8), (0.0, 0), (7.5, None), ("6", None), (True, None)])
def test_a_grade_is_an_integer_as_json_schema_says_8_0_included(sent: object, kept: int | None) -> None:
    """POST /feedback's body: 8.0 is the integer 8 (JSON Schema's integer, as its document declares); 7.5, text and
    booleans are refused."""
    if kept is None:
        with pytest.raises(ValidationError, match="valid integer"):
            TasterGrade.model_validate({"id": "a", "quality": sent})
    else:
        assert TasterGrade.model_validate({"id": "a", "quality": sent}).quality == kept
