"""The web page's files: small, self-contained, shipped in the bento, and served by the ASGI app as they are."""

from __future__ import annotations

import asyncio
import re
from fnmatch import fnmatch
from pathlib import Path

import httpx
import yaml

from wine_quality.ui import PAGE_DIR, make_app, page_files

ROOT = Path(__file__).resolve().parents[2]


def test_the_page_is_small_and_loads_nothing_from_elsewhere() -> None:
    """All files together stay under 64 KB (55 KB with the type selector and the classifier's chart), and none names
    another host (no CDN, fonts or scripts from outside)."""
    files = page_files()
    assert {"index.html", "app.js", "ui.css"} <= set(files)
    assert sum(len(body) for body, _ in files.values()) < 64_000
    for name, (body, _) in files.items():
        assert not re.search(rb"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import", body), name


def test_every_file_the_page_names_is_served() -> None:
    """The stylesheet and modules index.html and the scripts name exist: a typo would break the page."""
    files = page_files()
    named = set()
    for body, _ in files.values():
        named |= set(re.findall(rb'(?:src|href)="([\w.-]+\.(?:js|css))"|from "\./([\w.-]+\.js)"', body))
    wanted = {n.decode() for pair in named for n in pair if n}
    assert wanted and wanted <= set(files)


def get(*paths: str) -> list[httpx.Response]:
    """Answers of the page's ASGI app, called in process."""

    async def fetch() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=make_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(fetch())


def test_the_app_serves_each_file_with_its_type_and_a_strict_policy() -> None:
    """/ is index.html; each file has its media type; the browser is told to load nothing from elsewhere."""
    index, script, style, missing = get("/", "/app.js", "/ui.css", "/nothing.js")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert index.content == (PAGE_DIR / "index.html").read_bytes()
    assert "default-src 'self'" in index.headers["content-security-policy"]
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404


def test_the_bento_ships_the_page_and_its_root_links_to_it() -> None:
    """bentofile.yaml includes every page file; its description (the bento's Swagger UI text) links to /ui."""
    config = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    for path in PAGE_DIR.iterdir():
        relative = str(path.relative_to(ROOT))
        assert any(fnmatch(relative, pattern) for pattern in config["include"]), relative
    assert "](./ui)" in config["description"]
