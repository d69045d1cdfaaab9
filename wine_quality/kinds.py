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
    """One kind of served model."""

    key: str  # how the API and the pin file name it: "sklearn"
    store_name: str  # its default name in the BentoML model store
    train_module: str  # `python -m <train_module>` trains one, saves it and pins it
    native_file: str  # the file of its native form inside the store entry
    load_native: Callable[[Path, int], Predictor]  # (that file, threads) -> predictor
    native_packages: tuple[str, ...]  # what the native runtime needs installed (the ONNX one needs none of them)
    description: str
    # regression: a grade per wine (/predict, /predict_batch, the protocols); classification: a probability per
    # grade (/classify, /classify_batch)
    task: Task = "regression"

    @property
    def train_command(self) -> str:
        return f"python -m {self.train_module}"


KINDS: dict[str, ModelKind] = {
    kind.key: kind
    for kind in (
        ModelKind(
            key="sklearn",
            store_name="wine_quality_sklearn",
            train_module="train.sklearn_model",
            native_file="model.joblib",
            load_native=load_sklearn,
            native_packages=("scikit-learn",),
            description="scikit-learn Pipeline (scaler + extra trees by default)",
        ),
        ModelKind(
            key="torch",
            store_name="wine_quality_torch",
            train_module="train.torch_model",
            native_file="model.pt",
            load_native=load_torch,
            native_packages=("torch",),
            description="PyTorch networks (5 seeds by default) averaged, each taking log and scaling of its own input",
        ),
        ModelKind(
            key="classifier",
            store_name="wine_quality_classifier",
            train_module="train.classifier_model",
            native_file="model.joblib",
            load_native=load_sklearn_probabilities,
            native_packages=("scikit-learn",),
            description="extra trees on the grades, probabilities calibrated on out-of-fold predictions",
            task="classification",
        ),
    )
}


def protocol_name(kind: str) -> str:
    """A served kind's model name in the Open Inference Protocol (V2): wine-quality-<kind>."""
    return f"wine-quality-{kind}"


REGRESSION_KINDS = tuple(key for key, kind in KINDS.items() if kind.task == "regression")
CLASSIFICATION_KINDS = tuple(key for key, kind in KINDS.items() if kind.task == "classification")
