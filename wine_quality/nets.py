"""The dense network for wine quality; its input scaling travels inside it as buffers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


class WineNet(nn.Module):
    """A small multilayer perceptron that standardises its own input."""

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, n_features: int, hidden: Sequence[int] = (64, 32), dropout: float = 0.0) -> None:
        super().__init__()
        self.config = {"n_features": n_features, "hidden": list(hidden), "dropout": dropout}
        self.register_buffer("mean", torch.zeros(n_features, dtype=torch.float32))
        self.register_buffer("scale", torch.ones(n_features, dtype=torch.float32))
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)

    def fit_scaling(self, x: np.ndarray) -> None:
        """Take the standardisation statistics from the training rows."""
        std = x.std(axis=0)
        self.mean.copy_(torch.as_tensor(x.mean(axis=0), dtype=torch.float32))
        self.scale.copy_(torch.as_tensor(np.where(std > 0, std, 1.0), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body((x - self.mean) / self.scale)
        return out.squeeze(-1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predict grades for rows of raw (unscaled) features."""
        self.eval()
        with torch.inference_mode():
            out: np.ndarray = self(torch.from_numpy(np.array(x, dtype=np.float32))).numpy().astype(np.float64)
            return out

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
