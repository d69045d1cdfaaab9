"""The web page with red and white wines and the grade classifier, in headless Chromium against a real server."""

from __future__ import annotations

import csv
from pathlib import Path

import httpx
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By

from tests.browser import choose, fill, submit, wait_text
from tests.integration.test_types import wines
from tests.integration.test_ui_batch import shown_rows, upload
from train.data import RED, WHITE
from wine_quality.schema import FEATURE_NAMES

pytestmark = pytest.mark.integration


def percent(p: float) -> str:
    """A probability as the page writes it: one decimal, and "< 0.1 %" for what would read 0.0 % but is not 0."""
    return "< 0.1 %" if 0 < p < 0.0005 else f"{p * 100:.1f} %"


def test_a_white_wine_is_graded_as_white_beside_the_classifier_s_chart(
    page: Chrome, client: httpx.Client, artifacts: Path
) -> None:
    """A white wine with 'white wine' ticked gets the API's white answer, and the chart shows the classifier's
    probability of every grade and the chance of a good wine, as /classify gives them for that white wine."""
    wine = wines(WHITE, 1)[0]
    as_white = client.post("/predict", json={**wine, "type": "white"}).json()
    as_red = client.post("/predict", json=wine).json()
    assert as_white["type"] == "white" and as_white["quality"] != as_red["quality"]  # the type reaches the model
    classes = client.post("/classify", json={**wine, "type": "white"}).json()
    fill(page, wine)
    choose(page, "wine-form", "white wine")
    submit(page, "wine-form")
    assert wait_text(page, "#grade") == f"{as_white['quality']:.2f}"
    assert page.find_elements(By.CSS_SELECTOR, "#warnings li") == []  # within white's training ranges
    wait_text(page, "#good")
    bars = page.find_elements(By.CSS_SELECTOR, "#grade-bars tbody tr")
    shown = {b.get_attribute("data-grade"): float(str(b.get_attribute("data-value"))) for b in bars}
    assert shown == {grade: p for grade, p in classes["probabilities"].items()}
    good = page.find_element(By.ID, "good")
    assert float(str(good.get_attribute("data-value"))) == classes["good"]
    assert good.text == percent(classes["good"])
    marked = {b.get_attribute("data-grade") for b in bars if "good" in str(b.get_attribute("class")).split()}
    assert marked == {g for g in classes["probabilities"] if int(g) >= classes["good_threshold"]}
    page.save_screenshot(str(artifacts / "white-wine-with-chart.png"))


def test_a_batch_s_type_column_types_each_wine_and_p_good_is_a_column(
    page: Chrome, client: httpx.Client, tmp_path: Path
) -> None:
    """A CSV with a type column mixing red and white wines: each row graded as its type, as the API grades it, and
    the classifier's P(good) of each row shown as a column."""
    red, white = wines(RED, 2), wines(WHITE, 2)
    samples = [{**w, "type": "red"} for w in red] + [{**w, "type": "white"} for w in white]
    path = tmp_path / "mixed.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["type", *FEATURE_NAMES])
        writer.writeheader()
        writer.writerows(samples)
    api = client.post("/predict_batch", json={"model": "sklearn", "samples": samples}).json()
    goods = client.post("/classify_batch", json={"model": "classifier", "samples": samples}).json()
    assert [p["type"] for p in api["predictions"]] == ["red", "red", "white", "white"]
    upload(page, path, "scikit-learn")
    rows = shown_rows(page)
    assert [r["Predicted"] for r in rows] == [f"{p['quality']:.2f}" for p in api["predictions"]]
    assert [r["P(good)"] for r in rows] == [percent(p["good"]) for p in goods["predictions"]]
