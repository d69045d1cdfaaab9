"""The capture writer on SQLite and PostgreSQL: every column written right, off the request path, nothing lost."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.capture_data import (
    GRADE_LABELS,
    REGRESSOR_TAG,
    any_database,  # noqa: F401  (fixture: database_url)
    classifier_batch,
    count,
    dropped,
    regression_batch,
    settings,
    stored,
)
from tests.postgres import postgres_server  # noqa: F401  (fixture: postgres)
from wine_quality.capture import writer as writer_module
from wine_quality.capture.batch import FEATURE_COLUMNS, columns
from wine_quality.capture.ids import new_ids
from wine_quality.capture.insert import Inserter
from wine_quality.capture.store import Capture
from wine_quality.capture.tables import make_engine, metadata, utc


def test_recorded_wines_are_read_back_with_every_column(database_url: str) -> None:
    """Graded and classified wines, red and white, come back from the table exactly as they were recorded."""
    rng = np.random.default_rng(1)
    graded = regression_batch(rng, 5, wine_types=["red", "white", "red", "white", "red"], request_id="req-1")
    classified = classifier_batch(rng, 3)
    before = datetime.now(UTC)
    with Capture(settings(database_url)) as capture:
        capture.record(graded)
        capture.record(classified)
        assert capture.flush() == 8 and capture.writer.held == 0
        rows = stored(capture)
    after = datetime.now(UTC)
    assert [r.id for r in rows] == [*graded.ids, *classified.ids]
    for r in rows:
        assert before - timedelta(seconds=1) <= utc(r.time) <= after
    for r, batch, i in [(r, graded, i) for i, r in enumerate(rows[:5])] + [
        (r, classified, i) for i, r in enumerate(rows[5:])
    ]:
        assert (r.route, r.protocol, r.model_tag, r.runtime, r.model_kind) == (
            batch.route,
            batch.protocol,
            batch.model_tag,
            batch.runtime,
            batch.kind,
        )
        assert [getattr(r, c) for c in FEATURE_COLUMNS] == batch.features[i].tolist()
    for i, r in enumerate(rows[:5]):
        assert (r.request_id, r.wine_type, r.probabilities) == ("req-1", graded.wine_types[i], None)
        assert graded.grades is not None and graded.interval_low is not None and graded.interval_high is not None
        assert (r.grade, r.interval_low, r.interval_high) == (
            graded.grades[i],
            graded.interval_low[i],
            graded.interval_high[i],
        )
        assert r.interval_coverage == 0.9 and r.outside_training_range == (["pH", "alcohol"] if i % 3 == 0 else [])
    for i, r in enumerate(rows[5:]):
        assert classified.probabilities is not None
        assert r.probabilities == dict(zip(GRADE_LABELS, classified.probabilities[i].tolist(), strict=True))
        assert (r.request_id, r.wine_type, r.grade, r.interval_low, r.interval_high, r.interval_coverage) == (
            None,
            "white",
            None,
            None,
            None,
            None,
        )
        assert r.outside_training_range == []


def test_the_writer_thread_flushes_every_interval(database_url: str) -> None:
    """With a short interval, recorded wines reach the database without anyone calling flush."""
    with Capture(settings(database_url, flush_interval_s=0.05)) as capture:
        capture.record(regression_batch(np.random.default_rng(2), 7))
        deadline = time.monotonic() + 30
        # The rows are committed a moment before the thread counts them as no longer held: wait for both.
        while count(capture) < 7 or capture.writer.held:
            assert time.monotonic() < deadline, (
                f"the writer thread wrote {count(capture)} of 7, holds {capture.writer.held}"
            )
            time.sleep(0.05)
        assert count(capture) == 7


def test_close_writes_everything_buffered(database_url: str) -> None:
    """close() (SIGTERM) writes what the thread had not written yet; a later record is counted, not kept."""
    capture = Capture(settings(database_url))
    rng = np.random.default_rng(3)
    for n in (1, 10, 100):
        capture.record(regression_batch(rng, n))
    assert capture.writer.held == 111
    shutdown_before = dropped("shutdown")
    assert capture.close() == 0
    capture.record(regression_batch(rng, 4))
    assert dropped("shutdown") == shutdown_before + 4
    with Capture(settings(database_url)) as reopened:
        assert count(reopened) == 111


def test_a_malformed_batch_is_refused_where_it_is_recorded(database_url: str) -> None:
    """Wrong lengths or an unknown wine type raise in record(), on the caller's side, and nothing is buffered."""
    rng = np.random.default_rng(4)
    good = regression_batch(rng, 3)
    with Capture(settings(database_url)) as capture:
        for bad, reason in (
            (replace(good, ids=good.ids[:2]), "features of shape"),
            (replace(good, wine_types="rosé"), "wine type"),
            (replace(good, grades=np.zeros(2)), "grades"),
        ):
            with pytest.raises(ValueError, match=reason):
                capture.record(bad)
        assert capture.writer.held == 0


def test_a_batch_the_database_refuses_is_dropped_alone_and_counted(database_url: str) -> None:
    """A duplicate id (a caller's bug) loses its own batch, counted as rejected; the other batches are written."""
    rng = np.random.default_rng(5)
    first = regression_batch(rng, 3)
    duplicate = regression_batch(rng, 2, ids=[first.ids[0], new_ids(1)[0]])
    rejected_before = dropped("rejected")
    with Capture(settings(database_url)) as capture:
        capture.record(first)
        capture.flush()
        capture.record(regression_batch(rng, 4))
        capture.record(duplicate)
        capture.record(regression_batch(rng, 5))
        assert capture.flush() == 9
        assert count(capture) == 12 and capture.writer.held == 0
    assert dropped("rejected") == rejected_before + 2


def test_concurrent_recording_while_flushing_loses_nothing(database_url: str) -> None:
    """Eight threads record 250 single wines each while the writer flushes every 10 ms: 2,000 rows arrive."""
    with Capture(settings(database_url, flush_interval_s=0.01)) as capture:

        def worker(seed: int) -> None:
            rng = np.random.default_rng(seed)
            for _ in range(250):
                capture.record(regression_batch(rng, 1))

        threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with Capture(settings(database_url)) as reopened:
        assert count(reopened) == 2000


def test_retention_deletes_old_wines_and_their_feedback(database_url: str) -> None:
    """Wines older than retention_days go, with their true grades; newer ones stay."""
    rng = np.random.default_rng(6)
    with Capture(settings(database_url, retention_days=30)) as capture:
        old, new = regression_batch(rng, 3), regression_batch(rng, 2)
        capture.record(old)
        capture.record(new)
        capture.flush()
        capture.feedback([(old.ids[0], 5), (new.ids[0], 6)])
        assert capture.writer.apply_retention(datetime.now(UTC) + timedelta(days=29)) == 0
        assert capture.writer.apply_retention(datetime.now(UTC) + timedelta(days=31)) == 5
        assert count(capture) == 0 and capture.labelled().empty


def test_labelled_wines_come_back_as_training_data(database_url: str) -> None:
    """labelled() gives the labelled wines since a time, with the data files' column names and the true grade."""
    rng = np.random.default_rng(7)
    with Capture(settings(database_url)) as capture:
        early = regression_batch(rng, 3)
        capture.record(early)
        capture.flush()
        middle = datetime.now(UTC)
        late = regression_batch(rng, 3, wine_types="white")
        capture.record(late)
        capture.feedback([(early.ids[1], 4), (late.ids[0], 7), (late.ids[2], 6)])
        everything, recent = capture.labelled(), capture.labelled(since=middle)
    assert list(everything["id"]) == [early.ids[1], late.ids[0], late.ids[2]]
    assert list(recent["id"]) == [late.ids[0], late.ids[2]]
    assert list(recent["quality"]) == [7, 6] and list(recent["wine_type"]) == ["white", "white"]
    assert recent["fixed acidity"].tolist() == [late.features[0, 0], late.features[2, 0]]
    assert recent.loc[:, "fixed acidity":"alcohol"].to_numpy().tolist() == late.features[[0, 2]].tolist()
    assert set(recent["model_tag"]) == {REGRESSOR_TAG} and str(recent["time"].dt.tz) == "UTC"


def test_recording_costs_the_caller_little(database_url: str) -> None:
    """1,000 single wines recorded one by one (the request path), then flushed: the costs are printed, not asserted."""
    rng = np.random.default_rng(8)
    rounds = [[regression_batch(rng, 1) for _ in range(1000)] for _ in range(5)]
    costs = []
    with Capture(settings(database_url)) as capture:
        for batches in rounds:  # five rounds: the least and the median say more than one on a shared machine
            started = time.perf_counter()
            for batch in batches:
                capture.record(batch)
            costs.append((time.perf_counter() - started) / len(batches) * 1e6)
        capture.flush()
        many = [regression_batch(rng, 100) for _ in range(200)] + [classifier_batch(rng, 100) for _ in range(50)]
        for batch in many:
            capture.record(batch)
        started = time.perf_counter()
        written = capture.flush()
        rate = written / (time.perf_counter() - started)
    backend = database_url.split(":")[0]
    least, median = min(costs), sorted(costs)[2]
    print(f"\n{backend}: record() {least:.1f} us (median {median:.1f}) per single wine; flush {rate:,.0f} rows/s")
    assert written == 25_000


def test_the_prepared_insert_stores_what_sqlalchemys_insert_stores(tmp_path: Path) -> None:
    """The writer's own INSERTs (insert.py) and SQLAlchemy's insert() of the same wines leave the same bytes.

    sqlite3 also takes named parameters, which the writer leaves to SQLAlchemy's insert(); on SQLite the writer binds
    a large batch's shared values once per statement, or not when told not to: the same batches written the three
    ways must read back identically, raw text included (times, JSON).
    """
    rng = np.random.default_rng(7)
    large = regression_batch(rng, 350, wine_types="white")  # more rows than one INSERT carries
    batches = [
        regression_batch(rng, 3, wine_types=["red", "white", "red"], request_id="r"),
        classifier_batch(rng, 2),
        regression_batch(rng, 1),
        large,  # some wines outside the training range
        replace(regression_batch(rng, 70, request_id="all-in-range"), outside=[[]] * 70),  # one [] for all
        replace(regression_batch(rng, 80), outside=[["pH"]] * 80),
        regression_batch(rng, 64, wine_types=["red", "white"] * 32),  # a type per wine
        classifier_batch(rng, 100),  # probabilities per wine, no grade
    ]
    stamp = time.time()
    raw = []
    for paramstyle, shared_once in (("qmark", True), ("qmark", False), ("named", False)):
        engine = make_engine(f"sqlite:///{tmp_path / paramstyle}{shared_once}.db", paramstyle=paramstyle)
        metadata.create_all(engine)
        inserter = Inserter(engine.dialect)
        assert inserter.positional == (paramstyle == "qmark") and inserter.shared_once == (paramstyle == "qmark")
        inserter.shared_once = shared_once
        with engine.begin() as connection:
            inserter.write(connection, [columns(b, stamp) for b in batches])
            raw.append(connection.exec_driver_sql("SELECT * FROM predictions ORDER BY id").fetchall())
        engine.dispose()
    assert len(raw[0]) == 670 and raw[0] == raw[1] == raw[2]
    assert len({row[0] for row in raw[0]}) == 670


def test_a_flush_is_written_in_portions_of_few_batches_and_few_rows() -> None:
    """The writer lets the event loop in between portions: 64 single wines, or 2,000 wines of large batches, or one
    batch larger than that alone; every batch once, in order."""
    rng = np.random.default_rng(11)
    stamp = time.time()
    sizes = [1] * 130 + [1000] * 5 + [2500] + [1] * 3
    converted = [columns(regression_batch(rng, n), stamp) for n in sizes]
    chunks = list(writer_module._chunks(converted, lambda part: part.n))
    assert [part for chunk in chunks for part in chunk] == converted
    assert [(len(c), sum(p.n for p in c)) for c in chunks] == [
        (64, 64),
        (64, 64),
        (3, 1002),  # two single wines, then the first 1,000-wine batch: the next would pass 2,000
        (2, 2000),
        (2, 2000),
        (1, 2500),  # one batch alone past the limit
        (3, 3),
    ]
