"""The web page's batch and served-models parts, in headless Chromium against a real `bentoml serve`."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness.devserver import Server, start_server
from tests.browser import open_page, wait_for_file, wait_text
from wine_quality.schema import FEATURE_NAMES

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parents[2] / "data"
RED, WHITE = DATA / "winequality-red.csv", DATA / "winequality-white.csv"
SMALL_LIMIT = 4


def excerpt(source: Path, rows: int, target: Path, drop: str | None = None) -> Path:
    """The header and first rows of a data file, in that file's own dialect; `drop` leaves one column out."""
    delimiter = ";" if ";" in source.read_text().partition("\n")[0] else ","
    lines = source.read_text().splitlines()[: rows + 1]
    if drop is not None:
        header = next(csv.reader(lines[:1], delimiter=delimiter))
        at = header.index(drop)
        lines = [delimiter.join(c for i, c in enumerate(line.split(delimiter)) if i != at) for line in lines]
    target.write_text("\n".join(lines) + "\n")
    return target


def wines_of(path: Path) -> tuple[list[dict[str, float]], list[float]]:
    """The measurements and true grades in a CSV file, read independently of the page."""
    delimiter = ";" if ";" in path.read_text().partition("\n")[0] else ","
    with path.open() as f:
        rows = list(csv.DictReader(f, delimiter=delimiter))
    return [{n: float(r[n]) for n in FEATURE_NAMES} for r in rows], [float(r["quality"]) for r in rows]


def upload(page: Chrome, path: Path, model_label: str) -> None:
    page.find_element(By.ID, "batch-file").send_keys(str(path))
    page.find_element(By.XPATH, f"//form[@id='batch-form']//label[normalize-space()='{model_label}']/input").click()
    page.find_element(By.CSS_SELECTOR, "#batch-form button[type=submit]").click()


def shown_rows(page: Chrome) -> list[dict[str, str]]:
    """The result table as a person reads it: one dict per row, keyed by the column headings."""
    wait_text(page, "#batch-summary")
    table = page.find_element(By.ID, "batch-table")
    heads = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    cells = page.execute_script(
        "return [...arguments[0].tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent))", table
    )
    return [dict(zip(heads, row, strict=True)) for row in cells]


def download(page: Chrome, downloads: Path) -> list[dict[str, str]]:
    """Click the results link and read the file the browser saved."""
    link = page.find_element(By.ID, "batch-download")
    target = downloads / str(link.get_attribute("download"))
    target.unlink(missing_ok=True)
    link.click()
    with wait_for_file(target).open(newline="") as f:
        return list(csv.DictReader(f))


def test_a_red_file_is_graded_beside_its_true_grades_and_downloads(
    page: Chrome, client: httpx.Client, downloads: Path, artifacts: Path, tmp_path: Path
) -> None:
    """Rows of the real red file: one table row per wine with the API's grade, the true grade, the MAE, a CSV file."""
    path = excerpt(RED, 8, tmp_path / "red-sample.csv")
    samples, truths = wines_of(path)
    # the network: the extra trees give these training rows back their own grades, an error of exactly 0
    api = client.post("/predict_batch", json={"model": "torch", "samples": samples}).json()
    grades = [p["quality"] for p in api["predictions"]]
    upload(page, path, "neural network (PyTorch)")
    rows = shown_rows(page)
    assert [r["Predicted"] for r in rows] == [f"{q:.2f}" for q in grades]
    assert [float(r["True grade"]) for r in rows] == truths
    mae = sum(abs(q - t) for q, t in zip(grades, truths, strict=True)) / len(truths)
    assert mae > 0.01
    assert page.find_element(By.ID, "batch-mae").text == f"{mae:.3f}"
    assert api["model"] in page.find_element(By.ID, "batch-summary").text
    page.save_screenshot(str(artifacts / "batch-red.png"))
    saved = download(page, downloads)
    assert [float(r["predicted_quality"]) for r in saved] == grades  # exactly the API's numbers
    assert [{n: float(r[n]) for n in FEATURE_NAMES} for r in saved] == samples
    assert [float(r["quality"]) for r in saved] == truths
    assert {r["model"] for r in saved} == {api["model"]}
    assert [float(r["interval_low"]) for r in saved] == [p["interval"]["low"] for p in api["predictions"]]


def test_the_semicolon_white_file_is_read_and_its_unusual_values_listed(
    page: Chrome, client: httpx.Client, downloads: Path, tmp_path: Path
) -> None:
    """The white file's dialect (semicolons, quoted header) is read; out-of-range features are listed per row."""
    path = excerpt(WHITE, 6, tmp_path / "white-sample.csv")
    assert path.read_text().startswith('"fixed acidity";"volatile acidity"')
    samples, _ = wines_of(path)
    api = client.post("/predict_batch", json={"model": "sklearn", "samples": samples}).json()
    upload(page, path, "scikit-learn")
    rows = shown_rows(page)
    assert [r["Predicted"] for r in rows] == [f"{p['quality']:.2f}" for p in api["predictions"]]
    outside = [p["outside_training_range"] for p in api["predictions"]]
    assert any(outside)  # white wines lie partly outside the red training data: the column can be wrong
    assert [r["Outside training range"] for r in rows] == [", ".join(o) for o in outside]
    saved = download(page, downloads)
    assert [float(r["predicted_quality"]) for r in saved] == [p["quality"] for p in api["predictions"]]
    assert [r["outside_training_range"] for r in saved] == ["; ".join(o) for o in outside]


def test_pasted_rows_without_a_header_are_read_in_the_schema_order(page: Chrome, client: httpx.Client) -> None:
    """Lines pasted from the red file, without its header, are graded; their 12th value is the true grade."""
    lines = RED.read_text().splitlines()[20:23]
    samples = [dict(zip(FEATURE_NAMES, map(float, line.split(",")[:11]), strict=True)) for line in lines]
    api = client.post("/predict_batch", json={"model": "sklearn", "samples": samples}).json()
    page.find_element(By.ID, "batch-text").send_keys("\n".join(lines))
    page.find_element(By.CSS_SELECTOR, "#batch-form button[type=submit]").click()
    rows = shown_rows(page)
    assert [r["Predicted"] for r in rows] == [f"{p['quality']:.2f}" for p in api["predictions"]]
    assert [r["True grade"] for r in rows] == [line.split(",")[11] for line in lines]


def test_a_file_without_a_column_is_refused_naming_it(page: Chrome, tmp_path: Path) -> None:
    """A file lacking the pH column gets a message that names the column, and no table."""
    path = excerpt(RED, 3, tmp_path / "no-ph.csv", drop="pH")
    upload(page, path, "scikit-learn")
    message = wait_text(page, "#batch-error")
    assert message.startswith('The file has no column "pH"')
    assert page.find_elements(By.ID, "batch-table") == []


@pytest.fixture(scope="module")
def small_server(server: Server) -> Iterator[Server]:
    """A second real server of the same models that takes at most SMALL_LIMIT rows per batch request."""
    srv = start_server(env={"WINE_MAX_ROWS_PER_REQUEST": str(SMALL_LIMIT)}, log_dir=server.log.parent)
    yield srv
    srv.stop()


def test_a_file_above_the_row_limit_is_sent_in_several_requests(
    chrome: Chrome, small_server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    """With a 4-row limit, 10 rows are graded in order, as one unlimited request grades them."""
    path = excerpt(RED, 10, tmp_path / "ten.csv")
    samples, _ = wines_of(path)
    with small_server.client() as small:
        assert small.post("/predict_batch", json={"model": "sklearn", "samples": samples}).status_code == 400
    whole = client.post("/predict_batch", json={"model": "sklearn", "samples": samples}).json()
    open_page(chrome, small_server.url)
    upload(chrome, path, "scikit-learn")
    assert [r["Predicted"] for r in shown_rows(chrome)] == [f"{p['quality']:.2f}" for p in whole["predictions"]]


def test_the_models_panel_shows_the_served_versions(
    page: Chrome, client: httpx.Client, trained: dict[str, dict[str, Any]], artifacts: Path
) -> None:
    """Each served model: its tag (the one trained), creation time, each type's held-out and cross-validated MAE in a
    column of its own, the CV set-up and every training file's checksum."""
    described = client.get("/models").json()["models"]
    served = len(described)  # the two grading models and the grade classifier
    WebDriverWait(page, 20).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#models-list article")) == served)
    assert served == 3
    for kind in described:
        card = page.find_element(By.CSS_SELECTOR, f"#models-list article[data-kind={kind}]").text
        entry = described[kind]
        assert trained[kind]["tag"] == entry["tag"] and entry["tag"] in card
        assert all(f["sha256"] in card for f in entry["data"]["files"]) and len(entry["data"]["files"]) == 2
        article = f"#models-list article[data-kind={kind}]"
        for wine_type, figures in entry["types"].items():
            held = page.find_element(
                By.CSS_SELECTOR, f"{article} table[data-figures=held-out] tr[data-metric=mae] td[data-type={wine_type}]"
            )
            assert held.text == f"{figures['metrics']['mae']:.3f}"
            cv = figures["cv_metrics"]
            crossed = page.find_element(
                By.CSS_SELECTOR, f"{article} table[data-figures=cv] tr[data-metric=mae] td[data-type={wine_type}]"
            )
            assert crossed.text.split() == [f"{cv['mae']['mean']:.3f}", "±", f"{cv['mae']['std']:.3f}"]
        cv = entry["types"]["red"]["cv_metrics"]
        assert f"Cross-validated ({cv['folds']} folds × {cv['repeats']} repeats)" in card
        created = page.find_element(By.CSS_SELECTOR, f"article[data-kind={kind}] time").get_attribute("datetime")
        assert created == entry["created"]
    page.execute_script("document.getElementById('models').scrollIntoView()")
    page.save_screenshot(str(artifacts / "models.png"))


def test_the_models_panel_renders_only_what_an_entry_has(page: Chrome) -> None:
    """An entry with fields the page does not know, and without cross-validated metrics, is shown without them and
    without error."""
    text = page.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "import('./models.js').then(m => done(m.modelCard('onnx', {tag: 'wine:v1', runtime: {threads: 1},"
        " types: {red: {metrics: {mae: 0.5, note: 'x'}}}}).innerText));"
    )
    assert "wine:v1" in text and "0.500" in text
    assert "runtime" not in text and "threads" not in text and "note" not in text
    assert "Cross-validated" not in text and "Created" not in text


def test_the_page_loads_nothing_from_elsewhere(page: Chrome, server: Server) -> None:
    """Everything the page fetched came from the service itself: it works offline."""
    fetched = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(url.startswith(server.url + "/") for url in fetched)
    assert {url.removeprefix(server.url) for url in fetched} >= {"/ui/app.js", "/docs.json", "/models"}
