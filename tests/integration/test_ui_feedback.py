"""The page's feedback: tasters' grades sent to a real `bentoml serve`, seen stored and counted in live accuracy.

The module's server keeps its own capture database (no other test's feedback counts in its live figures) and takes
at most LIMIT rows per request, so a small file is sent in several lists.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from selenium.webdriver import ActionChains, Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from harness.devserver import Server, start_server
from harness.traffic import samples
from tests.browser import choose, console_errors, fill, open_page, submit, wait_text
from tests.integration.conftest import DESKTOP
from wine_quality.schema import FEATURE_NAMES

pytestmark = pytest.mark.integration
RED = Path(__file__).resolve().parents[2] / "data" / "winequality-red.csv"
LIMIT = 4
PHONE = (390, 844)
T = TypeVar("T")


@pytest.fixture(scope="module")
def feedback_server(trained: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("feedback")
    env = {"WINE_CAPTURE_DIR": str(work / "capture"), "WINE_MAX_ROWS_PER_REQUEST": str(LIMIT)}
    srv = start_server(env=env, log_dir=work)
    yield srv
    srv.stop()


@pytest.fixture()
def api(feedback_server: Server) -> Iterator[httpx.Client]:
    with feedback_server.client() as c:
        yield c


@pytest.fixture()
def page(chrome: Chrome, feedback_server: Server) -> Iterator[Chrome]:
    """The page of the module's server; no script error in its console but the refusals the tests provoke."""
    chrome.set_window_size(*DESKTOP)
    chrome.get_log("browser")
    open_page(chrome, feedback_server.url)
    yield chrome
    assert console_errors(chrome, provoked=(400, 409)) == []


def red_rows(n: int) -> list[dict[str, str]]:
    with RED.open() as f:
        return [row for row, _ in zip(csv.DictReader(f), range(n), strict=False)]


def until(find: Callable[[], T | None], timeout: float = 30.0) -> T:
    """What find() gives once it gives something, polled until the deadline (live figures are cached a few s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError(f"nothing within {timeout} s")


def live(api: httpx.Client, tag: str) -> dict[str, Any]:
    """/monitoring's live figures of one model tag on red wines (labelled 0 before any)."""
    found = [m for m in api.get("/monitoring").json()["live"]["models"] if (m["model"], m["type"]) == (tag, "red")]
    return found[0] if found else {"labelled": 0, "mae": None}


def live_beyond(api: httpx.Client, tag: str, labelled: int) -> dict[str, Any]:
    """The live figures of a tag once they count more than `labelled` wines."""

    def counted() -> dict[str, Any] | None:
        found = live(api, tag)
        return found if found["labelled"] > labelled else None

    return until(counted)


def taster_status(page: Chrome, grade: int | str) -> str:
    """Type a grade into the taster's form, send it, and read what the page says of the answer."""
    box = page.find_element(By.ID, "taster-grade")
    box.clear()
    page.execute_script("document.getElementById('taster-status').textContent = ''")
    box.send_keys(str(grade), Keys.ENTER)
    return wait_text(page, "#taster-status")


def test_a_tasters_grade_is_stored_and_counts_in_live_accuracy(page: Chrome, api: httpx.Client) -> None:
    """A red wine graded by the network; its true grade typed with the keyboard alone is stored under the answer's
    id, and /monitoring and /metrics then count it: one more labelled wine, the MAE moved by its error."""
    row = red_rows(30)[29]
    wine, truth = {n: float(row[n]) for n in FEATURE_NAMES}, int(row["quality"])
    answer = api.post("/predict_net", json=wine).json()  # the network gives the same grade to the same wine
    before = live(api, answer["model"])
    fill(page, wine)
    choose(page, "wine-form", "neural network (PyTorch)")
    submit(page, "wine-form")
    wait_text(page, "#grade")
    wine_id = page.find_element(By.ID, "taster-id").text
    keys = ActionChains(page)
    for _ in range(10):  # from the submit button, past the form's other buttons
        if page.switch_to.active_element.get_attribute("id") == "taster-grade":
            break
        keys.send_keys(Keys.TAB).perform()
    else:
        pytest.fail("the taster's grade cannot be reached with Tab")
    keys.send_keys(str(truth), Keys.ENTER).perform()
    assert wait_text(page, "#taster-status") == f"Stored: the taster's grade {truth} for this wine."
    again = api.post("/feedback", json={"id": wine_id, "quality": truth})
    assert again.status_code == 200 and again.json()["stored"][0]["new"] is False  # that very wine holds it

    n = before["labelled"]
    after = live_beyond(api, answer["model"], n)
    error = abs(answer["quality"] - truth)
    assert after["labelled"] == n + 1 and error > 0
    assert after["mae"] == pytest.approx(((before["mae"] or 0) * n + error) / (n + 1))
    metrics = api.get("/metrics").text
    assert samples(metrics, "wine_live_mae")[answer["model"], "red"] == pytest.approx(after["mae"])
    cv = api.get("/models").json()["models"]["torch"]["types"]["red"]["cv_metrics"]["mae"]["mean"]
    assert samples(metrics, "wine_model_cv_mae")[answer["model"], "red"] == pytest.approx(cv)


def test_a_second_grade_is_refused_saying_which_grade_is_stored(page: Chrome, api: httpx.Client) -> None:
    """The same grade again is accepted as already stored; another is the API's 409, explained with the grade
    stored before; the message fits a phone's width."""
    page.find_element(By.ID, "example").click()
    submit(page, "wine-form")
    wait_text(page, "#grade")
    assert taster_status(page, 6) == "Stored: the taster's grade 6 for this wine."
    assert taster_status(page, 6).startswith("Already stored with the same grade, 6 (received ")
    refused = taster_status(page, 7)
    wine_id = page.find_element(By.ID, "taster-id").text
    conflict = api.post("/feedback", json={"id": wine_id, "quality": 7})
    assert conflict.status_code == 409
    assert refused == (
        f"Not stored: this wine already has the taster's grade 6, sent before; 7 was not stored. "
        f"The service said: {conflict.json()['error']}."
    )
    assert "error" in str(page.find_element(By.ID, "taster-status").get_attribute("class"))
    page.set_window_size(*PHONE)
    width = page.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1]


def test_a_grade_the_api_refuses_gets_its_message_at_the_field(page: Chrome, api: httpx.Client) -> None:
    """6.5 is no grade: the API's own message is shown at the field, which is marked and focused; nothing stored."""
    page.find_element(By.ID, "example").click()
    submit(page, "wine-form")
    wait_text(page, "#grade")
    wine_id = page.find_element(By.ID, "taster-id").text
    box = page.find_element(By.ID, "taster-grade")
    box.send_keys("6.5", Keys.ENTER)
    message = wait_text(page, "#taster-error")
    expected = api.post("/feedback", json={"id": wine_id, "quality": 6.5}).json()["detail"][0]["msg"]
    assert message == expected
    assert box.get_attribute("aria-invalid") == "true" and page.switch_to.active_element == box
    assert api.post("/feedback", json={"id": wine_id, "quality": 5}).json()["stored"][0]["new"] is True


def test_a_batch_sends_its_true_grades_and_lists_the_refused(page: Chrome, api: httpx.Client, tmp_path: Path) -> None:
    """Ten red wines, one true grade blank and one of 6.5: eight grades stored, in lists of at most LIMIT (four
    requests: one refused and sent again without its bad grade), the 6.5 listed with the API's reason; the live
    figures count the eight."""
    lines = RED.read_text().splitlines()[:11]
    lines[3] = lines[3].rpartition(",")[0] + ",6.5"
    lines[5] = lines[5].rpartition(",")[0] + ","
    path = tmp_path / "graded-by-tasters.csv"
    path.write_text("\n".join(lines) + "\n")
    rows = list(csv.DictReader(lines))
    wines = [{n: float(r[n]) for n in FEATURE_NAMES} for r in rows]
    answer = api.post("/predict_batch", json={"model": "torch", "samples": wines[:LIMIT]}).json()
    before = live(api, answer["model"])
    page.find_element(By.ID, "batch-file").send_keys(str(path))
    choose(page, "batch-form", "neural network (PyTorch)")
    submit(page, "batch-form")
    wait_text(page, "#batch-summary")
    offer = page.find_element(By.CSS_SELECTOR, ".truths p").text
    assert offer.startswith("The quality column gives 9 wines their true grade (1 row has none).")
    page.find_element(By.ID, "send-truths").click()
    assert wait_text(page, "#feedback-summary") == "8 true grades stored."
    refused = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#feedback-refused li")]
    reason = api.post("/feedback", json=[{"id": "x", "quality": 6.5}]).json()["detail"][0]["msg"]
    assert refused == [f"Row 3 (line 4): quality: {reason}"]
    sent = page.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.endsWith('/feedback')).length"
    )
    assert sent == 4  # 9 grades in lists of 4, 4 and 1; the first once more without the 6.5

    n = before["labelled"]
    after = live_beyond(api, answer["model"], n)
    assert after["labelled"] == n + 8
    grades = [p["quality"] for p in answer["predictions"]]
    for start in range(LIMIT, len(wines), LIMIT):
        chunk = {"model": "torch", "samples": wines[start : start + LIMIT]}
        grades += [p["quality"] for p in api.post("/predict_batch", json=chunk).json()["predictions"]]
    errors = [
        abs(g - float(r["quality"])) for g, r in zip(grades, rows, strict=True) if r["quality"] not in ("", "6.5")
    ]
    assert after["mae"] == pytest.approx(((before["mae"] or 0) * n + sum(errors)) / (n + 8))
