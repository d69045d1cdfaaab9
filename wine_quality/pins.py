"""Pins: which version of each model kind is served, kept in a small JSON file that training writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from wine_quality.kinds import KINDS
from wine_quality.settings import ModelSettings
from wine_quality.store import ModelStoreError


def read_pins(path: Path) -> dict[str, str]:
    """The pinned tag of each kind, from the pin file (empty when there is none)."""
    try:
        pins = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelStoreError(f"cannot read the model pin file {path}: {exc}; delete it and run `make train`") from exc
    return {k: str(v) for k, v in pins.items() if k in KINDS}


def write_pin(path: Path, kind: str, tag: str) -> None:
    """Pin a model tag as the served one of its kind (atomically; the other kinds' pins are kept)."""
    pins = read_pins(path)
    pins[kind] = tag
    tmp = Path(f"{path}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def pinned_tag(kind: str, settings: ModelSettings) -> str:
    """The tag to serve for a kind: WINE_<KIND>_MODEL if set, else the pin file's."""
    explicit = settings.tags.get(kind)
    if explicit:
        return explicit
    tag = read_pins(settings.pins).get(kind)
    if not tag:
        raise ModelStoreError(
            f"no {kind} model is pinned in {settings.pins}: train one with "
            f"`{KINDS[kind].train_command}` (or `make train`)"
        )
    return tag
