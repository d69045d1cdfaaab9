"""The dense network for wine quality and the ensemble that serves it; input transform and scaling travel inside as
buffers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from torch import nn

from wine_quality.schema import FEATURE_NAMES

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
        if log_inputs and n_features != len(FEATURE_NAMES):
            raise ValueError(f"log_inputs needs the {len(FEATURE_NAMES)} schema features, not {n_features}")
        self.config = {"n_features": n_features, "hidden": list(hidden), "dropout": dropout, "log_inputs": log_inputs}
        self.log_inputs = log_inputs
        self.register_buffer("mean", torch.zeros(n_features, dtype=torch.float32))
        self.register_buffer("scale", torch.ones(n_features, dtype=torch.float32))
        # derived from the config, so not saved
        mask = [name in LOG_FEATURES for name in FEATURE_NAMES] if log_inputs else [False] * n_features
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)

    def checkpoint(self) -> dict[str, object]:
        """What is saved to the model store: each member's checkpoint, in order."""
        return {"members": [member.checkpoint() for member in cast("list[WineNet]", list(self.members))]}


def load_net(checkpoint: dict[str, object]) -> WineEnsemble:
    """The ensemble saved in a checkpoint by train.torch_model: its members' configs and weights."""
    members = checkpoint["members"]
    assert isinstance(members, list)
    ensemble = WineEnsemble([WineNet.from_checkpoint(member) for member in members])
    ensemble.eval()
    return ensemble
