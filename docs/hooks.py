"""mkdocs hooks: fill each page's generated blocks from the files the project writes, never from copied figures.

A page asks for a block with a marker line: `<!-- generated: settings -->` (the table of `Settings`),
`<!-- generated: benchmarks -->` (BENCHMARKS.json through benchmarks/report.py, the renderer of BENCHMARKS.md),
`<!-- generated: evaluation -->` (reports/EVALUATION.md, which `make evaluate` renders in the same run as
reports/evaluation.json; the build fails when the two are not of one run) or `<!-- generated: data -->` (the data
card, data/README.md). Images those reports show (BENCHMARKS.png, reports/*.png) are added to the site under their
path in the repository.
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project's own renderers, whichever directory mkdocs runs from

from benchmarks.report import render as render_benchmarks  # noqa: E402
from wine_quality.settings import Settings, env_name  # noqa: E402

MARKER = re.compile(r"^<!-- generated: ([a-z]+) -->$", re.MULTILINE)
BENCHMARKS_JSON, BENCHMARKS_CHART = "BENCHMARKS.json", "BENCHMARKS.png"
EVALUATION_MD, EVALUATION_JSON = "reports/EVALUATION.md", "reports/evaluation.json"
DATA_CARD = "data/README.md"
IMAGES = (BENCHMARKS_CHART, "reports/*.png")


# --- the settings table -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingDoc:
    """One setting as the docs show it."""

    path: tuple[str, ...]  # field names from Settings down to this field
    variables: tuple[str, ...]  # the environment variables it is read from, the main one first
    type: str
    default: str
    description: str


EnvNames = Callable[[type[BaseModel], str], tuple[str, ...]]


def env_names(model: type[BaseModel], name: str) -> tuple[str, ...]:
    """The variable a settings group's field is read from, as wine_quality.settings names it."""
    return (env_name(model, name),)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def setting_docs(
    model: type[BaseModel] = Settings, env: EnvNames = env_names, path: tuple[str, ...] = ()
) -> Iterator[SettingDoc]:
    """Every setting of a model, walking into nested models, in declaration order."""
    for name, field in model.model_fields.items():
        where = (*path, name)
        nested = _nested_model(field.annotation)
        if nested is not None:
            yield from setting_docs(nested, env, where)
        else:
            yield SettingDoc(where, env(model, name), type_text(field), default_text(field), field.description or "")


def _type_name(annotation: Any) -> str:
    args = get_args(annotation)
    if get_origin(annotation) is Literal:
        return " or ".join(str(a) for a in args)
    if type(None) in args:
        return f"{', '.join(_type_name(a) for a in args if a is not type(None))}, optional"
    if args:
        return str(annotation).replace("typing.", "")
    names = {Path: "path", SecretStr: "secret"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def type_text(field: FieldInfo) -> str:
    """The field's type in words, with its bounds: `int, ≥ 1`."""
    signs = {Ge: ("≥", "ge"), Gt: (">", "gt"), Le: ("≤", "le"), Lt: ("<", "lt")}
    bounds = [
        f"{sign} {getattr(m, attr)}" for m in field.metadata for k, (sign, attr) in signs.items() if isinstance(m, k)
    ]
    return ", ".join([_type_name(field.annotation), *bounds])


def default_text(field: FieldInfo) -> str:
    """The default as it would be written in the environment; paths inside the project relative to it."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path) and value.is_relative_to(ROOT):
        return f"./{value.relative_to(ROOT)}"
    return str(value)


def _cell(text: str) -> str:
    """Text for a table cell: no pipe or line break to split it, no `<KIND>` read as an HTML tag."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def settings_table(docs: Iterator[SettingDoc] | None = None) -> str:
    """The settings as a markdown table: variable (and its other names), type, default, description."""
    lines = ["| variable | type | default | description |", "|---|---|---|---|"]
    for doc in docs if docs is not None else setting_docs():
        main, *others = doc.variables
        also = f" (also `{'`, `'.join(others)}`)" if others else ""
        lines.append(f"| `{main}`{also} | {_cell(doc.type)} | `{doc.default}` | {_cell(doc.description)} |")
    return "\n".join(lines)


# --- the reports --------------------------------------------------------------------------------------------------


def _read(relative: str) -> str:
    path = ROOT / relative
    if not path.is_file():
        raise PluginError(f"{relative} is missing: the docs show its figures (make bench / make evaluate write it)")
    return path.read_text(encoding="utf-8")


def nested(markdown: str, folder: str = "") -> str:
    """A whole report as part of a page: its title dropped, its headings one level down, its images' paths from the
    repository root (where on_files puts them)."""
    lines: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("# ") and not lines:
            continue
        if not fenced and line.startswith("#"):
            line = "#" + line
        lines.append(line)
    text = "\n".join(lines).strip("\n")
    if folder:
        text = re.sub(r"(!\[[^\]]*\]\()(?![a-z]+:|/)([^)]+\))", rf"\g<1>{folder}/\g<2>", text)
    return text


def benchmarks() -> str:
    """The benchmark report, rendered from BENCHMARKS.json by the renderer that writes BENCHMARKS.md."""
    results = json.loads(_read(BENCHMARKS_JSON))
    return nested(render_benchmarks(results, BENCHMARKS_CHART, BENCHMARKS_JSON))


def evaluation() -> str:
    """The evaluation report, checked to be of the same run as evaluation.json."""
    report, figures = _read(EVALUATION_MD), json.loads(_read(EVALUATION_JSON))
    stamp = f"(`{figures['command'].strip()}`) on {figures['generated']},"
    if stamp not in report.split("\n## ", 1)[0]:
        raise PluginError(f"{EVALUATION_MD} is not of the run that wrote {EVALUATION_JSON}: rerun `make evaluate`")
    return nested(report, folder=str(Path(EVALUATION_MD).parent))


def data_card() -> str:
    """The data card, where the data lives: data/README.md."""
    return nested(_read(DATA_CARD))


BLOCKS: dict[str, Callable[[], str]] = {
    "settings": settings_table,
    "benchmarks": benchmarks,
    "evaluation": evaluation,
    "data": data_card,
}


# --- mkdocs events ------------------------------------------------------------------------------------------------


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """The reports' images, under their repository paths, so that the generated blocks can show them."""
    for pattern in IMAGES:
        for path in sorted(ROOT.glob(pattern)):
            uri = path.relative_to(ROOT).as_posix()
            if files.get_file_from_path(uri) is None:
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Each marker replaced by its block; an unknown marker fails the build."""

    def block(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in BLOCKS:
            raise PluginError(f"{page.file.src_uri}: no generated block {name!r} (known: {', '.join(BLOCKS)})")
        return BLOCKS[name]()

    return MARKER.sub(block, markdown)
