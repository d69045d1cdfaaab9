"""The model store as the contract between training and serving: what is saved, pinned and checked."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from wine_quality.schema import FEATURE_NAMES, TARGET_HIGH, TARGET_LOW
from wine_quality.settings import PROJECT_ROOT, SKLEARN_MODEL_NAME, TORCH_MODEL_NAME, Settings

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ModelKind:
    """One kind of served model: its default store name and the command that trains it."""

    kind: str
    name: str
    train_command: str


KINDS: dict[str, ModelKind] = {
    "sklearn": ModelKind("sklearn", SKLEARN_MODEL_NAME, "python -m train.sklearn_model"),
    "torch": ModelKind("torch", TORCH_MODEL_NAME, "python -m train.torch_model"),
}
TORCH_FILE = "model.pt"


class ModelStoreError(RuntimeError):
    """The store cannot serve what is asked; the message names the command that fixes it."""


def git_commit() -> str | None:
    """The code's git commit (with '-dirty' for uncommitted changes), or None outside a git checkout."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of the libraries a model depends on, and Python's."""
    versions = {"python": platform.python_version()}
    for name in names:
        versions[name] = importlib_metadata.version(name)
    return versions


def training_metadata(
    *,
    metrics: dict[str, float],
    hyperparameters: dict[str, Any],
    data_path: Path,
    data_sha256: str,
    rows: dict[str, int],
    x_train: np.ndarray,
    libraries: tuple[str, ...],
) -> dict[str, Any]:
    """Everything serving and people need to know about a trained model, as JSON-friendly values."""
    metadata: dict[str, Any] = {
        "features": list(FEATURE_NAMES),
        "metrics": metrics,
        "hyperparameters": hyperparameters,
        "data": {"file": Path(data_path).name, "sha256": data_sha256, **rows},
        "feature_ranges": {
            name: [float(lo), float(hi)]
            for name, lo, hi in zip(FEATURE_NAMES, x_train.min(axis=0), x_train.max(axis=0), strict=True)
        },
        "versions": library_versions("bentoml", "numpy", *libraries),
    }
    commit = git_commit()
    if commit:
        metadata["git_commit"] = commit
    return metadata


# --- pins: which version of each kind is served -------------------------------------------------


def read_pins(path: Path) -> dict[str, str]:
    """The pinned tag of each kind, from the pin file (empty when there is none)."""
    try:
        pins = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelStoreError(f"cannot read the model pin file {path}: {exc}; delete it and run `make train`") from exc
    return {k: str(v) for k, v in pins.items() if k in KINDS}


def write_pin(path: Path, kind: str, tag: str) -> None:
    """Pin a model tag as the served one of its kind."""
    pins = read_pins(path)
    pins[kind] = tag
    tmp = Path(f"{path}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def pinned_tag(kind: str, settings: Settings) -> str:
    """The tag to serve for a kind: WINE_<KIND>_MODEL if set, else the pin file's."""
    explicit = getattr(settings, f"{kind}_model")
    if explicit:
        return str(explicit)
    tag = read_pins(settings.models_lock).get(kind)
    if not tag:
        raise ModelStoreError(
            f"no {kind} model is pinned in {settings.models_lock}: train one with "
            f"`{KINDS[kind].train_command}` (or `make train`)"
        )
    return tag


# --- what serving reads back --------------------------------------------------------------------


@dataclass(frozen=True)
class ServedModel:
    """A stored model as the service sees it: identity, provenance and the training ranges."""

    kind: str
    tag: str
    metadata: dict[str, Any]
    creation_time: str
    low: np.ndarray
    high: np.ndarray
    coverage: float
    half_width: float  # prediction ± half_width covers the true grade with probability `coverage`

    @classmethod
    def from_stored(cls, kind: str, stored: Any, coverage: float) -> ServedModel:
        """Check a stored model against the schema and read what serving needs."""
        meta = dict(stored.info.metadata)
        features = meta.get("features")
        retrain = f"retrain with `{KINDS[kind].train_command}`"
        if features != list(FEATURE_NAMES):
            raise ModelStoreError(
                f"model {stored.tag} expects features {features}, not the service's schema {list(FEATURE_NAMES)}: "
                + retrain
            )
        widths = meta.get("interval", {}).get("half_width", {})
        if f"{coverage:g}" not in widths:
            raise ModelStoreError(
                f"model {stored.tag} has no prediction interval calibrated for coverage {coverage:g} "
                f"(it has {sorted(widths) or 'none'}): set WINE_INTERVAL_COVERAGE to one of those or {retrain}"
            )
        ranges = meta["feature_ranges"]
        return cls(
            kind=kind,
            tag=str(stored.tag),
            metadata=meta,
            creation_time=stored.info.creation_time.isoformat(),
            low=np.array([ranges[n][0] for n in FEATURE_NAMES]),
            high=np.array([ranges[n][1] for n in FEATURE_NAMES]),
            coverage=coverage,
            half_width=float(widths[f"{coverage:g}"]),
        )

    def intervals(self, qualities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated interval around each predicted grade, kept on the 0-10 scale."""
        return (
            np.clip(qualities - self.half_width, TARGET_LOW, TARGET_HIGH),
            np.clip(qualities + self.half_width, TARGET_LOW, TARGET_HIGH),
        )

    def outside_training_range(self, rows: np.ndarray) -> list[list[str]]:
        """For each row, the features whose value lies outside what the model saw in training."""
        flagged: list[list[str]] = [[] for _ in range(len(rows))]
        for row, column in zip(*np.nonzero((rows < self.low) | (rows > self.high)), strict=True):
            flagged[row].append(FEATURE_NAMES[column])
        return flagged

    def describe(self) -> dict[str, Any]:
        """The public description served by the models endpoint."""
        meta = self.metadata
        return {
            "kind": self.kind,
            "tag": self.tag,
            "created": self.creation_time,
            "metrics": meta.get("metrics"),
            "cv_metrics": meta.get("cv_metrics"),
            "interval": {**meta.get("interval", {}), "served_coverage": self.coverage},
            "features": meta.get("features"),
            "feature_ranges": meta.get("feature_ranges"),
            "hyperparameters": meta.get("hyperparameters"),
            "data": meta.get("data"),
            "versions": meta.get("versions"),
            "git_commit": meta.get("git_commit"),
        }


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


def load_predictor(kind: str, stored: Any) -> Predictor:
    """Load a stored model into a function from raw feature rows to grades."""
    if kind == "sklearn":
        import bentoml

        raw: Predictor = bentoml.sklearn.load_model(stored).predict
    else:
        import torch

        from wine_quality.nets import WineNet

        raw = WineNet.from_checkpoint(torch.load(stored.path_of(TORCH_FILE), weights_only=True)).predict
    # a grade lies on the 0-10 scale whatever a model extrapolates to for a far-off sample
    return lambda rows: np.clip(np.asarray(raw(rows), dtype=np.float64), TARGET_LOW, TARGET_HIGH)


def served_models(settings: Settings) -> dict[str, ServedModel]:
    """The pinned model of each kind, checked against the store and the schema."""
    return {
        kind: ServedModel.from_stored(kind, find_stored(kind, pinned_tag(kind, settings)), settings.interval_coverage)
        for kind in KINDS
    }
