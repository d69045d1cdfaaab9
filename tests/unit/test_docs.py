"""The docs: the site builds strictly, its figures and settings come from the project's files, the README links hold."""

from __future__ import annotations

import html
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

from wine_quality.settings import Settings, env_names

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
    """Each field of every settings group appears on the settings page under its environment variable."""
    page = (site / "settings.html").read_text()
    for group in Settings.model_fields.values():
        for name in env_names(group.annotation):
            assert html.escape(name, quote=False) in page, name


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


def test_the_settings_table_walks_the_groups() -> None:
    """Fields of every group are listed under their group, each with its own variable and its bounds and default."""
    docs = {doc.path: doc for doc in hooks.setting_docs()}
    assert docs[("batching", "max_batch_size")].variables == ("WINE_MAX_BATCH_SIZE",)
    assert docs[("drift", "enabled")].variables == ("WINE_DRIFT",)
    assert docs[("models", "tags")].variables == ("WINE_<KIND>_MODEL",)
    batch_size = docs[("batching", "max_batch_size")]
    assert (batch_size.type, batch_size.default) == ("int, ≥ 2", "128")
    assert (docs[("batching", "coalesce")].default, docs[("requests", "api_key")].default) == ("true", "unset")
    assert docs[("requests", "api_key")].type == "secret, optional"


def test_the_settings_defaults_are_the_models() -> None:
    """The pin file's default is shown relative to the project, not as this machine's absolute path."""
    docs = {doc.path[-1]: doc for doc in hooks.setting_docs()}
    assert docs["pins"].default == "./model-pins.json"
    assert docs["runtime"].type == "onnx or native"
    assert docs["max_body_bytes"].default == str(8 * 2**20)


def test_the_readme_is_short_and_its_links_resolve() -> None:
    """The README stays a front door (200 lines at most), and every relative link in it names a file that exists."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert not missing
