"""The docs: the site builds strictly, its figures and settings come from the project's files, the README links hold."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from mkdocs.exceptions import PluginError
from pydantic import AliasChoices, BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from wine_quality.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as `make docs` builds it, into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # mkdocs-material's banner about its successor
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_site_builds_strictly(site: Path) -> None:
    """mkdocs build --strict passes: every link and anchor resolves and every page is in the navigation."""
    assert (site / "index.html").is_file()


def test_the_settings_page_lists_every_setting(site: Path) -> None:
    """Each field of Settings appears on the settings page under its environment variable."""
    page = (site / "settings.html").read_text()
    for name in Settings.model_fields:
        assert f"WINE_{name.upper()}" in page
    assert "WINE_TORCH_THREADS" in page  # an old name, from the field's validation alias


def test_the_reports_are_rendered_from_their_json(site: Path) -> None:
    """The benchmark page shows BENCHMARKS.json's run and chart; the evaluation page the run of evaluation.json."""
    bench = json.loads((ROOT / "BENCHMARKS.json").read_text())
    page = (site / "benchmarks.html").read_text()
    assert bench["when"] in page and 'src="BENCHMARKS.png"' in page
    assert (site / "BENCHMARKS.png").is_file()
    evaluation = json.loads((ROOT / "reports" / "evaluation.json").read_text())
    page = (site / "evaluation.html").read_text()
    assert evaluation["generated"] in page and 'src="reports/reliability.png"' in page
    assert (site / "reports" / "reliability.png").is_file()


def test_a_stale_evaluation_report_fails_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """An EVALUATION.md of another run than evaluation.json is refused, naming the command that fixes it."""
    real = hooks._read
    monkeypatch.setattr(hooks, "_read", lambda p: real(p).replace("UTC,", "UTC (edited),", 1))
    with pytest.raises(PluginError, match="make evaluate"):
        hooks.evaluation()


class _Batching(BaseModel):
    max_batch_size: int = Field(128, ge=2, description="most rows in a batch")
    coalesce: bool = Field(True, description="join single rows")


class _Grouped(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WINE_")

    threads: int = Field(1, validation_alias=AliasChoices("WINE_MODEL_THREADS", "WINE_TORCH_THREADS", "threads"))
    batching: _Batching = Field(default_factory=_Batching)
    runtime: str | None = Field(None, description="what predicts")


def test_the_settings_table_walks_nested_models() -> None:
    """Fields of nested models are listed with their own variable; aliases name the variable and its old names."""
    docs = {doc.path: doc for doc in hooks.setting_docs(_Grouped)}
    assert list(docs) == [("threads",), ("batching", "max_batch_size"), ("batching", "coalesce"), ("runtime",)]
    assert docs[("threads",)].variables == ("WINE_MODEL_THREADS", "WINE_TORCH_THREADS")
    assert docs[("batching", "max_batch_size")].variables == ("WINE_MAX_BATCH_SIZE",)
    batch_size = docs[("batching", "max_batch_size")]
    assert (batch_size.type, batch_size.default) == ("int, ≥ 2", "128")
    assert (docs[("batching", "coalesce")].default, docs[("runtime",)].default) == ("true", "unset")
    assert docs[("runtime",)].type == "str, optional"


def test_the_settings_defaults_are_the_models() -> None:
    """The pin file's default is shown relative to the project, not as this machine's absolute path."""
    docs = {doc.path[-1]: doc for doc in hooks.setting_docs()}
    assert docs["model_pins"].default == "./model-pins.json"
    assert docs["runtime"].type == "onnx or native"
    assert docs["max_body_bytes"].default == str(8 * 2**20)


def test_the_readme_is_short_and_its_links_resolve() -> None:
    """The README stays a front door (200 lines at most), and every relative link in it names a file that exists."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert not missing
