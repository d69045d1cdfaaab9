"""The registry of model kinds: one entry per kind names its store entry, its training script and its native form.

A new kind of model is one entry here plus its training script: serving, pins, `python -m train`, the bento and
`/models` all read this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from wine_quality.runtimes import Predictor, load_sklearn, load_sklearn_probabilities, load_torch

Task = Literal["regression", "classification"]


@dataclass(frozen=True)
class ModelKind:
    """One kind of served model: `key` names it in the API and the pin file, in the store (wine_quality_<key>), in
    its training script (train/<key>_model.py) and in its model service."""

    key: str
    native_file: str  # the file of its native form inside the store entry
    load_native: Callable[[Path, int], Predictor]  # (that file, threads) -> predictor
    native_packages: tuple[str, ...]  # what the native runtime needs installed (the ONNX one needs none of them)
    description: str
    # regression: a grade per wine (/predict, /predict_batch, the protocols); classification: a probability per
    # grade (/classify, /classify_batch)
    task: Task = "regression"

    @property
    def store_name(self) -> str:
        """Its default name in the BentoML model store."""
        return f"wine_quality_{self.key}"

    @property
    def train_module(self) -> str:
        """`python -m <train_module>` trains one, saves it and pins it."""
        return f"train.{self.key}_model"

    @property
    def train_command(self) -> str:
        return f"python -m {self.train_module}"


KINDS: dict[str, ModelKind] = {
    kind.key: kind
    for kind in (
        ModelKind(
            "sklearn", "model.joblib", load_sklearn, ("scikit-learn",), "scikit-learn Pipeline (scaler + extra trees)"
        ),
        ModelKind(
            "torch", "model.pt", load_torch, ("torch",), "PyTorch networks (5 seeds) averaged, log-scaled inputs"
        ),
        ModelKind(
            "classifier",
            "model.joblib",
            load_sklearn_probabilities,
            ("scikit-learn",),
            "extra trees on the grades, probabilities calibrated on out-of-fold predictions",
            task="classification",
        ),
    )
}


def protocol_name(kind: str) -> str:
    """A served kind's model name in the Open Inference Protocol (V2): wine-quality-<kind>."""
    return f"wine-quality-{kind}"


REGRESSION_KINDS = tuple(key for key, kind in KINDS.items() if kind.task == "regression")
CLASSIFICATION_KINDS = tuple(key for key, kind in KINDS.items() if kind.task == "classification")
