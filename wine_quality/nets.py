"""The dense network for wine quality and the ensemble that serves it; input transform and scaling travel inside as
buffers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from torch import nn

from wine_quality.schema import FEATURE_NAMES, MODEL_INPUTS, TYPES, WHITE_INPUT

WHITE = MODEL_INPUTS.index(WHITE_INPUT)

# Columns with long right tails (g/dm3 and mg/dm3 of salts, sugar and SO2): with log_inputs a network sees their log1p.
LOG_FEATURES = ("residual sugar", "chlorides", "free sulfur dioxide", "total sulfur dioxide", "sulphates")


class GradeModule(nn.Module):
    """A torch module from raw feature rows to grades."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predict grades (float64) for rows of raw (untransformed, unscaled) features."""
        self.eval()
        with torch.inference_mode():
            out: np.ndarray = self(torch.from_numpy(np.array(x, dtype=np.float32))).numpy().astype(np.float64)
            return out


class WineNet(GradeModule):
    """A small multilayer perceptron that takes log1p of the long-tailed columns (if asked) and standardises its own
    input."""

    mean: torch.Tensor
    scale: torch.Tensor
    log_mask: torch.Tensor

    def __init__(
        self, n_features: int, hidden: Sequence[int] = (64, 32), dropout: float = 0.0, log_inputs: bool = False
    ) -> None:
        super().__init__()
        # the model's inputs (features, then white), or the features alone (a network of one type)
        names = {len(MODEL_INPUTS): MODEL_INPUTS, len(FEATURE_NAMES): FEATURE_NAMES}.get(n_features)
        if log_inputs and names is None:
            raise ValueError(f"log_inputs needs the {len(MODEL_INPUTS)} model inputs or the features, not {n_features}")
        self.config = {"n_features": n_features, "hidden": list(hidden), "dropout": dropout, "log_inputs": log_inputs}
        self.log_inputs = log_inputs
        self.register_buffer("mean", torch.zeros(n_features, dtype=torch.float32))
        self.register_buffer("scale", torch.ones(n_features, dtype=torch.float32))
        # derived from the config, so not saved
        mask = [name in LOG_FEATURES for name in names or ()] if log_inputs else [False] * n_features
        self.register_buffer("log_mask", torch.tensor(mask, dtype=torch.bool), persistent=False)
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)

    @property
    def n_features(self) -> int:
        """How many inputs a row has."""
        return int(self.mean.shape[0])

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The input before standardisation: log1p of the LOG_FEATURES columns with log_inputs, else x itself."""
        return torch.where(self.log_mask, torch.log1p(x), x) if self.log_inputs else x

    def fit_scaling(self, x: np.ndarray) -> None:
        """Take the standardisation statistics from the training rows, transformed as forward transforms them."""
        with torch.no_grad():
            seen = self.transform(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()
        std = seen.std(axis=0)
        self.mean.copy_(torch.as_tensor(seen.mean(axis=0), dtype=torch.float32))
        self.scale.copy_(torch.as_tensor(np.where(std > 0, std, 1.0), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body((self.transform(x) - self.mean) / self.scale)
        return out.squeeze(-1)

    def checkpoint(self) -> dict[str, object]:
        """What is saved to the model store: the architecture and the weights, scaling included."""
        return {"config": self.config, "state_dict": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, object]) -> WineNet:
        """Rebuild a network saved with checkpoint()."""
        config = checkpoint["config"]
        assert isinstance(config, dict)
        net = cls(**config)
        net.load_state_dict(checkpoint["state_dict"])  # type: ignore[arg-type]
        net.eval()
        return net


class WineEnsemble(GradeModule):
    """Several networks (trained with different seeds); the grade is the mean of theirs."""

    def __init__(self, members: Sequence[WineNet]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one network")
        self.members = nn.ModuleList(members)

    @property
    def n_features(self) -> int:
        """How many inputs a row has (every member takes the same)."""
        return cast(WineNet, self.members[0]).n_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)

    def checkpoint(self) -> dict[str, object]:
        """What is saved to the model store: each member's checkpoint, in order."""
        return {"members": [member.checkpoint() for member in cast("list[WineNet]", list(self.members))]}


class TypeSwitch(GradeModule):
    """One ensemble per wine type: a row of MODEL_INPUTS is graded by its type's ensemble, on its features.

    A type it has no ensemble for is graded by the other type's.
    """

    def __init__(self, by_type: dict[str, WineEnsemble]) -> None:
        super().__init__()
        if not by_type or set(by_type) - set(TYPES):
            raise ValueError(f"a switch needs ensembles of types among {TYPES}, not {sorted(by_type)}")
        self.by_type = nn.ModuleDict(by_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = x[:, :WHITE]
        red, white = (self.by_type[t] if t in self.by_type else next(iter(self.by_type.values())) for t in TYPES)
        return torch.where(x[:, WHITE] > 0.5, white(features), red(features))

    def checkpoint(self) -> dict[str, object]:
        """What is saved to the model store: each type's ensemble's checkpoint."""
        return {"by_type": {t: cast(WineEnsemble, m).checkpoint() for t, m in self.by_type.items()}}


def _ensemble(checkpoint: dict[str, object]) -> WineEnsemble:
    members = checkpoint["members"]
    assert isinstance(members, list)
    ensemble = WineEnsemble([WineNet.from_checkpoint(member) for member in members])
    ensemble.eval()
    return ensemble


def load_net(checkpoint: dict[str, object]) -> GradeModule:
    """The networks saved in a checkpoint by train.torch_model: an ensemble (pooled), or one per type."""
    by_type = checkpoint.get("by_type")
    if by_type is None:
        return _ensemble(checkpoint)
    assert isinstance(by_type, dict)
    switch = TypeSwitch({t: _ensemble(c) for t, c in by_type.items()})
    switch.eval()
    return switch
