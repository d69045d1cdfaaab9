"""The model store as the contract between training and serving: entries are saved and read back with their card."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from wine_quality.card import ModelCard
from wine_quality.kinds import KINDS
from wine_quality.schema import MODEL_INPUTS, first_error


class ModelStoreError(RuntimeError):
    """The store cannot serve what is asked; the message names the command that fixes it."""


def find_stored(kind: str, tag: str) -> Any:
    """The stored model for a tag, or a ModelStoreError naming the command that makes one."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return bentoml.models.get(tag)
    except (NotFound, ValueError) as exc:
        home = os.environ.get("BENTOML_HOME", "~/bentoml")
        raise ModelStoreError(
            f"{kind} model {tag} is not in the model store ({home}): train one with "
            f"`{KINDS[kind].train_command}` (or `make train`)"
        ) from exc


def read_card(kind: str, stored: Any) -> ModelCard:
    """A stored model's card, checked against the schema and the files it names."""
    retrain = f"retrain with `{KINDS[kind].train_command}`"
    metadata = dict(stored.info.metadata)
    features = metadata.get("features")
    if features != list(MODEL_INPUTS):
        raise ModelStoreError(
            f"model {stored.tag} takes inputs {features}, not the service's {list(MODEL_INPUTS)} (the features, then "
            f"white): {retrain}"
        )
    try:
        card = ModelCard.model_validate(metadata)
    except ValidationError as exc:
        raise ModelStoreError(
            f"model {stored.tag} was saved by an older version of the training code ({first_error(exc)}): {retrain}"
        ) from None
    if card.kind != kind:
        raise ModelStoreError(f"model {stored.tag} is a {card.kind} model, not {kind}: {retrain}")
    missing = [f for f in (card.native_file, card.onnx.file) if not Path(stored.path_of(f)).is_file()]
    if missing:
        raise ModelStoreError(f"model {stored.tag} lacks {', '.join(missing)}: {retrain}")
    return card


def save_model(name: str, card: ModelCard, write_files: Callable[[Path], None], labels: dict[str, str]) -> str:
    """Save a new model-store entry: its files, written by `write_files(folder)`, and its card; returns the tag."""
    import bentoml

    metadata = card.model_dump(mode="json", exclude_none=True)
    with bentoml.models.create(name, labels={"kind": card.kind, **labels}, metadata=metadata) as stored:
        write_files(Path(stored.path))
    return str(stored.tag)
