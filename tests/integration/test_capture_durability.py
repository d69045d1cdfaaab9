"""Capture under trouble, on a real `bentoml serve` under load: PostgreSQL stopped for 30 s, SIGTERM, SIGKILL of the
entry. Every wine answered 200 is counted, and looked for in the database."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from harness.traffic import samples
from tests.capture_served import Load, Served, all_stored, serving, stored
from tests.postgres import (
    Postgres,
    postgres_server,  # noqa: F401  (fixture: postgres)
    wait_until,
)
from wine_quality.capture.ids import id_time
from wine_quality.capture.tables import predictions

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("trained")]
OUTAGE_S = 30.0  # the outage
FLUSH_INTERVAL_S = 1.0  # WINE_CAPTURE_FLUSH_INTERVAL_S's default, which the SIGKILL test measures


def _rows(served: Served) -> int:
    with served.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(predictions)).scalar_one())


def _database(kind: str, request: pytest.FixtureRequest, folder: Path) -> tuple[dict[str, str], str]:
    """The capture settings of a new, empty database of that kind, and its URL."""
    if kind == "sqlite":
        return {"WINE_CAPTURE_DIR": str(folder)}, f"sqlite:///{folder / 'capture.db'}"
    postgres: Postgres = request.getfixturevalue("postgres")
    url = postgres.database(f"capture_{folder.name}".replace("-", "_"))
    return {"WINE_CAPTURE_URL": url}, url


def _stop_gracefully(served: Served) -> int:
    """SIGTERM to the server, as a supervisor stops it; its exit code."""
    os.kill(served.server.process.pid, signal.SIGTERM)
    return served.server.process.wait(timeout=60)


def test_a_30_s_postgresql_outage_under_load_fails_no_request_and_loses_no_row(
    postgres: Postgres, trained: dict[str, Any], tmp_path: Path
) -> None:
    """PostgreSQL stopped for 30 s while 8 clients grade wines by every route: every request is answered 200,
    /feedback says 503 and /metrics still answers (without live figures) while it is down, and once it is back every
    answered wine is in the database, once; nothing is counted dropped."""
    url = postgres.database("outage")
    with serving({"WINE_CAPTURE_URL": url}, url, tmp_path, trained) as served, served.server.client() as client:
        with Load(served.server.url) as load:
            wait_until(lambda: load.answers() >= 200 and _rows(served) > 0)
            graded = load.ids()[0]
            postgres.stop()
            stopped, before = time.monotonic(), load.answers()
            try:
                refused = client.post("/feedback", json={"id": graded, "quality": 6})
                assert refused.status_code == 503 and "unreachable" in refused.json()["error"], refused.text
                time.sleep(max(0.0, stopped + OUTAGE_S - time.monotonic()))  # the outage lasts 30 s by the rule
                metrics = client.get("/metrics")
                assert metrics.status_code == 200 and "wine_live_mae" not in metrics.text
                assert client.get("/monitoring").json()["live"] is None
            finally:
                postgres.start()
            during = load.answers() - before
            back = load.answers()
            wait_until(lambda: load.answers() >= back + 200)  # and the load goes on after it
        assert load.failures == [], load.failures[:5]
        answered = load.ids()
        all_stored(served.engine, answered, timeout_s=60)
        assert _rows(served) == len(answered)  # each once, and nothing else
        text = client.get("/metrics").text
        assert set(samples(text, "wine_capture_dropped_rows_total").values()) == {0.0}
        assert samples(text, "wine_capture_written_rows_total") == {(): len(answered)}
        assert client.post("/feedback", json={"id": graded, "quality": 6}).status_code == 200
    print(
        f"\nPostgreSQL down {OUTAGE_S:.0f} s under load: {len(answered)} wines answered ({during} during the outage), "
        f"0 failed, {len(answered)} rows in the database"
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_sigterm_under_load_leaves_every_answered_wine_in_the_database(
    kind: str, request: pytest.FixtureRequest, trained: dict[str, Any], tmp_path: Path
) -> None:
    """SIGTERM while 8 clients grade wines by every route: the server exits 0, and every wine it answered, those in
    flight at the signal included, is in the database (the entry's shutdown writes what capture still holds)."""
    env, url = _database(kind, request, tmp_path)
    with serving(env, url, tmp_path, trained) as served:
        with Load(served.server.url) as load:
            wait_until(lambda: load.answers() >= 300)
            signalled = time.time()
            code = _stop_gracefully(served)
        assert code == 0
        answered = load.ids()
        found = stored(served.engine, answered)  # the server has exited: what is there now is all there will be
        assert len(found) == len(answered), f"{len(answered) - len(found)} answered wines are not in the database"
        assert _rows(served) == len(answered)
    late = len(answered) - len(load.ids(before=signalled))
    print(
        f"\nSIGTERM under load ({kind}): {len(answered)} wines answered ({late} after the signal), all in the database"
    )


def test_a_sigkill_of_the_entry_loses_at_most_one_flush_interval(trained: dict[str, Any], tmp_path: Path) -> None:
    """SIGKILL of the entry's worker under load (the default SQLite file, a flush every second): the wines it had
    answered but not yet written are lost, and they are only those graded within about one flush interval before the
    kill; the supervisor starts a new entry, whose wines are all written. The loss is measured and printed."""
    with serving(
        {"WINE_CAPTURE_DIR": str(tmp_path)}, f"sqlite:///{tmp_path / 'capture.db'}", tmp_path, trained
    ) as served:
        with Load(served.server.url) as load:
            wait_until(lambda: load.answers() >= 500)
            entry = served.server.worker("wine_quality")
            os.kill(entry.pid, signal.SIGKILL)
            killed = time.time()
            wait_until(lambda: len(load.ids()) - len(load.ids(before=killed + 0.5)) >= 200, timeout_s=120)
        assert served.server.worker("wine_quality").pid != entry.pid  # the supervisor started a new entry
        assert _stop_gracefully(served) == 0  # the new entry writes what it holds
        answered = load.ids()
        found = stored(served.engine, answered)
    lost = [wine for wine in answered if wine not in found]
    ages = [killed - t for wine in lost if (t := id_time(wine)) is not None]
    assert len(ages) == len(lost)
    # each id holds the millisecond its wine was graded: every lost wine was graded by the killed entry, before the
    # kill, and within about one flush interval of it (loose: a flush under way, a busy CPU); the new entry lost none
    assert all(-0.1 <= age <= FLUSH_INTERVAL_S + 1.0 for age in ages), sorted(ages)[:3] + sorted(ages)[-3:]
    rate = len(load.ids(before=killed)) / (killed - load.answered[0][0])
    print(
        f"\nSIGKILL of the entry: {len(answered)} wines answered, {len(lost)} lost "
        f"(graded {min(ages, default=0):.2f}-{max(ages, default=0):.2f} s before the kill; "
        f"{rate:.0f} wines/s were answered before it)"
    )
