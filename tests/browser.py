"""Headless Chromium from the distribution's packages, driven by Selenium; installed with apt-get where missing."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

PACKAGES = ("chromium", "chromium-driver")
# What headless Chromium needs on these machines: no sandbox as root, no GPU, and no calls home, which the closed
# network would refuse (many at a time) and which a test has no business making anyway.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


class BrowserUnavailable(RuntimeError):
    """Chromium and its driver are not here and cannot be installed on this machine."""


def find_chromium() -> tuple[str, str] | None:
    """The Chromium binary and chromedriver, if both are installed."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


def ensure_chromium() -> tuple[str, str]:
    """Chromium and chromedriver, installed from the distribution with apt-get (as root) when missing."""
    found = find_chromium()
    if found:
        return found
    if not shutil.which("apt-get"):
        raise BrowserUnavailable("no chromium/chromedriver and no apt-get to install them")
    if os.geteuid() != 0:
        needed = " ".join(PACKAGES)
        raise BrowserUnavailable(f"no chromium/chromedriver, and installing them needs root: apt-get install {needed}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    quiet = {"env": env, "capture_output": True, "text": True, "timeout": 900}
    done = subprocess.run(install, **quiet)  # type: ignore[call-overload]
    if done.returncode != 0:  # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update", "-q"], **quiet)  # type: ignore[call-overload]
        done = subprocess.run(install, **quiet)  # type: ignore[call-overload]
    found = find_chromium()
    if not found:
        raise BrowserUnavailable(f"apt-get install {' '.join(PACKAGES)} failed: {done.stderr.strip()[-500:]}")
    return found


def start_chrome(binary: str, driver: str, profile: Path, downloads: Path, size: tuple[int, int]) -> webdriver.Chrome:
    """A headless Chromium with a fresh profile folder, saving downloads into `downloads`, keeping its console log."""
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={size[0]},{size[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    browser = webdriver.Chrome(options=options, service=Service(driver))
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return browser


def wait_for_file(path: Path, timeout: float = 15.0) -> Path:
    """The path once the browser has finished writing it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and not path.with_name(path.name + ".crdownload").exists() and path.stat().st_size > 0:
            return path
        time.sleep(0.1)
    raise AssertionError(f"{path.name} was not downloaded in {timeout} s: {sorted(os.listdir(path.parent))}")


def open_page(browser: webdriver.Chrome, url: str) -> None:
    """Open the web page at url/ui and wait until it has read the service's feature schema."""
    browser.get(f"{url}/ui")
    WebDriverWait(browser, 20).until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))


def field(browser: webdriver.Chrome, name: str) -> WebElement:
    """The input a person finds by its visible label (the measurement's name)."""
    label = browser.find_element(By.XPATH, f"//label[span[@class='name' and normalize-space()='{name}']]")
    return browser.find_element(By.ID, str(label.get_attribute("for")))


def fill(browser: webdriver.Chrome, wine: dict[str, Any]) -> None:
    """Type each measurement into the field its label names."""
    for name, value in wine.items():
        box = field(browser, name)
        box.clear()
        box.send_keys(str(value))


def choose(browser: webdriver.Chrome, form: str, model_label: str) -> None:
    """Tick a form's model by its label's text."""
    browser.find_element(By.XPATH, f"//form[@id='{form}']//label[normalize-space()='{model_label}']/input").click()


def submit(browser: webdriver.Chrome, form: str) -> None:
    browser.find_element(By.CSS_SELECTOR, f"#{form} button[type=submit]").click()


def console_errors(browser: webdriver.Chrome, provoked: tuple[int, ...] = (400,)) -> list[str]:
    """The console's severe messages since the last read, less the HTTP statuses a test provoked on purpose."""
    severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    return [m for m in severe if not any(f"status of {status} " in m for status in provoked)]


def wait_text(browser: webdriver.Chrome, css: str, timeout: float = 20) -> str:
    """The text of the first element matching css, once it is shown and not empty."""

    def shown(b: webdriver.Chrome) -> str | bool:
        found = b.find_elements(By.CSS_SELECTOR, css)
        return bool(found) and found[0].is_displayed() and found[0].text.strip() or False

    return str(WebDriverWait(browser, timeout).until(shown))


def save_picture(browser: webdriver.Chrome, path: Path, down_to: str) -> Path:
    """A PNG of the page from its top to the bottom of the element `down_to` (CSS), beyond the window if need be."""
    bottom = browser.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return [document.documentElement.clientWidth, Math.ceil(r.bottom + window.scrollY + 16)]",
        down_to,
    )
    clip = {"x": 0, "y": 0, "width": bottom[0], "height": bottom[1], "scale": 1}
    picture = browser.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "clip": clip})
    path.write_bytes(base64.b64decode(picture["data"]))
    return path
