"""The web page at /ui in a real headless Chromium against a real `bentoml serve`: one wine, keyboard, phone."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import httpx
import pytest
from selenium.webdriver import ActionChains, Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from harness.devserver import Server
from tests.browser import choose, field, fill, open_page, save_picture, submit, wait_text
from wine_quality.schema import EXAMPLE, FEATURE_NAMES

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RED = ROOT / "data" / "winequality-red.csv"
README_PICTURE = ROOT / "docs" / "ui.png"  # rewritten when UPDATE_README_PICTURE=1
PHONE = (390, 844)
ROUTES = {"sklearn": "/predict", "torch": "/predict_net"}
MODEL_LABELS = {"sklearn": "scikit-learn", "torch": "neural network (PyTorch)"}


def message_for(browser: Chrome, element: WebElement) -> str:
    """The text of the error slot the field points to with aria-describedby (what a screen reader reads with it)."""
    ids = str(element.get_attribute("aria-describedby")).split()
    return " ".join(browser.find_element(By.ID, i).text for i in ids if i.startswith("e")).strip()


def shot(browser: Chrome, path: Path) -> Path:
    browser.save_screenshot(str(path))
    return path


def update_readme_picture(picture: Path) -> None:
    """The README's picture: this run's screenshot in 64 colours (about a third of the bytes, same look)."""
    from PIL import Image  # with matplotlib, a dev dependency

    README_PICTURE.parent.mkdir(exist_ok=True)
    with Image.open(picture) as image:
        image.convert("RGB").quantize(colors=64).save(README_PICTURE, optimize=True)


def red_wines(n: int) -> list[dict[str, float]]:
    """The first n wines of the red data file, their measurements only."""
    with RED.open() as f:
        rows = [row for row, _ in zip(csv.DictReader(f), range(n), strict=False)]
    return [{name: float(row[name]) for name in FEATURE_NAMES} for row in rows]


@pytest.mark.parametrize("kind", ["sklearn", "torch"])
def test_a_wine_typed_by_its_labels_gets_the_apis_grade(
    page: Chrome, client: httpx.Client, artifacts: Path, kind: str
) -> None:
    """A real wine typed into the labelled fields gets the grade, interval and model the API gives that wine."""
    wine = red_wines(11)[10]
    api = client.post(ROUTES[kind], json=wine).json()
    fill(page, wine)
    choose(page, "wine-form", MODEL_LABELS[kind])
    submit(page, "wine-form")
    assert wait_text(page, "#grade") == f"{api['quality']:.2f}"
    assert page.find_element(By.ID, "answer-model").text == api["model"]
    low, high = api["interval"]["low"], api["interval"]["high"]
    assert page.find_element(By.ID, "interval").text == f"90 % interval: {low:.2f} to {high:.2f}"
    scale = page.find_element(By.CSS_SELECTOR, "#result .scale")
    assert f"{low:.2f} to {high:.2f}" in str(scale.get_attribute("aria-label"))
    assert page.find_elements(By.CSS_SELECTOR, "#warnings li") == []
    shot(page, artifacts / f"one-wine-{kind}.png")


def test_a_value_outside_the_training_range_is_graded_with_a_warning(
    page: Chrome, client: httpx.Client, artifacts: Path
) -> None:
    """Alcohol 15.5 % is possible but beyond every training wine: graded, with a visible warning naming it."""
    wine = {**EXAMPLE, "alcohol": 15.5}
    assert client.post("/predict", json=wine).json()["outside_training_range"] == ["alcohol"]
    page.find_element(By.ID, "example").click()
    fill(page, {"alcohol": 15.5})
    submit(page, "wine-form")
    warning = wait_text(page, "#warnings li")
    assert warning.startswith("alcohol = 15.5 % vol is outside the range the model was trained on")
    assert len(page.find_elements(By.CSS_SELECTOR, "#warnings li")) == 1
    assert page.find_element(By.ID, "grade").is_displayed()
    picture = save_picture(page, artifacts / "outside-training-range.png", "#taster-form")
    if os.environ.get("UPDATE_README_PICTURE") == "1":
        update_readme_picture(picture)


def test_an_impossible_value_shows_the_apis_message_next_to_its_field(
    page: Chrome, client: httpx.Client, artifacts: Path
) -> None:
    """pH 15 is refused by the API; its own message appears next to the pH field, which is marked invalid."""
    answer = client.post("/predict", json={**EXAMPLE, "pH": 15})
    assert answer.status_code == 400
    expected = answer.json()["detail"][0]["msg"]
    page.find_element(By.ID, "example").click()
    ph = field(page, "pH")
    fill(page, {"pH": 15})
    submit(page, "wine-form")
    WebDriverWait(page, 20).until(lambda b: message_for(b, ph))
    assert message_for(page, ph) == expected
    assert ph.get_attribute("aria-invalid") == "true"
    assert page.switch_to.active_element == ph  # the keyboard lands on the field to fix
    assert page.find_elements(By.ID, "grade") == []
    assert [message_for(page, field(page, n)) for n in FEATURE_NAMES if n != "pH"] == [""] * 10
    shot(page, artifacts / "impossible-ph.png")


def test_a_rule_across_fields_is_shown_at_the_form(page: Chrome, client: httpx.Client) -> None:
    """More free than total SO2 names no single field: the API's message is shown at the form."""
    wine = {**EXAMPLE, "free sulfur dioxide": 50.0}
    expected = client.post("/predict", json=wine).json()["detail"][0]["msg"]
    page.find_element(By.ID, "example").click()
    fill(page, {"free sulfur dioxide": 50})
    submit(page, "wine-form")
    assert wait_text(page, "#form-error") == expected
    assert "free sulfur dioxide cannot exceed total sulfur dioxide" in expected


def test_the_form_works_from_the_keyboard_alone(page: Chrome, client: httpx.Client) -> None:
    """Tab to the example button, press Enter, Enter again in a field: the example wine is graded."""
    expected = client.post("/predict", json=EXAMPLE).json()["quality"]
    keys = ActionChains(page)
    for _ in range(40):
        if page.switch_to.active_element.get_attribute("id") == "example":
            break
        keys.send_keys(Keys.TAB).perform()
    else:
        pytest.fail("the example button cannot be reached with Tab")
    keys.send_keys(Keys.ENTER).perform()
    assert field(page, "alcohol").get_attribute("value") == str(EXAMPLE["alcohol"])
    keys.send_keys(Keys.ENTER).perform()  # the focus is back in the first field: Enter submits the form
    assert wait_text(page, "#grade") == f"{expected:.2f}"


def test_every_control_has_a_label(page: Chrome) -> None:
    """Each input, radio, file chooser and text area is named by a visible label."""
    unnamed = page.execute_script(
        "return [...document.querySelectorAll('input, textarea, select')]"
        ".filter(e => !e.labels.length || !e.labels[0].textContent.trim()).map(e => e.outerHTML)"
    )
    assert unnamed == []
    assert len(page.find_elements(By.CSS_SELECTOR, "#fields input")) == len(FEATURE_NAMES)


def test_the_page_fits_a_phone_screen(page: Chrome, server: Server, artifacts: Path) -> None:
    """At 390 px wide nothing scrolls sideways, and a grade can be had, with the form for the taster's grade."""
    page.set_window_size(*PHONE)
    open_page(page, server.url)
    page.find_element(By.ID, "example").click()
    submit(page, "wine-form")
    wait_text(page, "#grade")
    assert page.find_element(By.ID, "taster-grade").is_displayed()
    WebDriverWait(page, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#models-list article"))
    width = page.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1]
    shot(page, artifacts / "phone.png")


def test_the_service_serves_the_page_at_ui(client: httpx.Client) -> None:
    """GET /ui, the address the README and the API documentation give, leads to the page and its files."""
    answer = client.get("/ui", follow_redirects=True)
    assert answer.status_code == 200 and answer.url.path == "/ui/"
    assert "<title>Wine quality</title>" in answer.text
    assert client.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/missing.js").status_code == 404
