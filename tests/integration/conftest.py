"""Fixtures of the web page's browser tests: one headless Chromium for the session, the page opened afresh per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver import Chrome

from harness.devserver import Server
from tests.browser import BrowserUnavailable, ensure_chromium, open_page, start_chrome

DESKTOP = (1100, 1000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that drives the browser is marked `browser`, so that it can be selected or left out."""
    for item in items:
        if "chrome" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """Where this run's screenshots go; the path is printed so that a person can look at them."""
    folder = tmp_path_factory.mktemp("ui-screenshots")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\nUI screenshots: {folder}")
    return folder


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def chrome(tmp_path_factory: pytest.TempPathFactory, downloads: Path) -> Iterator[Chrome]:
    """Headless Chromium from the distribution, installed with apt-get where missing; skipped only where it can't be."""
    try:
        binary, driver = ensure_chromium()
    except BrowserUnavailable as exc:
        pytest.skip(f"no headless browser: {exc}")
    browser = start_chrome(binary, driver, tmp_path_factory.mktemp("chromium-profile"), downloads, DESKTOP)
    yield browser
    browser.quit()


@pytest.fixture()
def page(chrome: Chrome, server: Server) -> Iterator[Chrome]:
    """The page opened afresh at /ui in a desktop-sized window; no script error may reach its console."""
    chrome.set_window_size(*DESKTOP)
    chrome.get_log("browser")  # forget what earlier tests logged
    open_page(chrome, server.url)
    yield chrome
    # The console reports the 400 answers that tests provoke on purpose; anything else severe is a bug of the page.
    severe = [e["message"] for e in chrome.get_log("browser") if e["level"] == "SEVERE"]
    assert [m for m in severe if "status of 400" not in m] == []
