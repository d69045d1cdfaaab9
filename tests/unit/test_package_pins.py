"""The packages our patches change or rely on are pinned exactly, alike in pyproject.toml and bentofile.yaml, at the
versions installed here (docs/patches.md)."""

from __future__ import annotations

import tomllib
from importlib import metadata

import yaml

from wine_quality.settings import PROJECT_ROOT

# bentoml and uvicorn are patched; the rest are what the patches, or our retries, rely on (kantoku is BentoML's circus)
PATCHED = ("bentoml", "uvicorn", "h11", "httptools", "uvloop", "starlette", "aiohttp", "kantoku")


def _exact(specs: list[str]) -> dict[str, str]:
    """name -> version of each `name==version` among requirement strings."""
    pins = {}
    for spec in specs:
        name, sep, version = spec.partition("==")
        if sep:
            pins[name.split("[")[0].strip().lower()] = version.strip()
    return pins


def project_pins() -> dict[str, str]:
    return _exact(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


def bento_pins() -> dict[str, str]:
    return _exact(yaml.safe_load((PROJECT_ROOT / "bentofile.yaml").read_text())["python"]["packages"])


def test_every_patched_or_relied_on_package_is_pinned_exactly_in_both_files() -> None:
    """Each is pinned with `==` in pyproject.toml and in the bento, to the same version."""
    project, bento = project_pins(), bento_pins()
    assert {
        name: (project.get(name), bento.get(name)) for name in PATCHED if project.get(name) != bento.get(name)
    } == {}
    assert all(project.get(name) for name in PATCHED), [name for name in PATCHED if name not in project]


def test_the_pins_are_what_is_installed() -> None:
    """What the tests and the measurements ran is what the pins say."""
    project = project_pins()
    assert {
        name: (project[name], metadata.version(name)) for name in PATCHED if project[name] != metadata.version(name)
    } == {}


def test_the_bento_pins_nothing_the_project_pins_otherwise() -> None:
    """Every exact pin of the bento is the project's own."""
    project = project_pins()
    assert {name: version for name, version in bento_pins().items() if project.get(name) != version} == {}
