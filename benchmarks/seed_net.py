"""The seed's network script, rebuilt for the benchmark: train a small dense net on the red wines, torch.save it whole.

As in the seed (`python mlops/eg/pytorch.py`), this is a script step, not an endpoint: it writes `<models>/dense`,
which the seed app's `/predict_net` loads from disk on every request. The seed's FIXME asks for a min-max scaler in
a pipe; here the scaling is part of the module, so that the saved file is all `/predict_net` needs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from benchmarks.seed_app import DATA, FEATURES, TARGET

HIDDEN = (32, 16)


class Dense(nn.Module):
    """Min-max scaling, then a few fully connected layers down to one grade."""

    low: torch.Tensor
    span: torch.Tensor

    def __init__(self, low: torch.Tensor, high: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("low", low)
        self.register_buffer("span", (high - low).clamp(min=1e-9))
        sizes = (len(low), *HIDDEN)
        layers: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:], strict=False):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.layers = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        graded: torch.Tensor = self.layers((x - self.low) / self.span)
        return graded.squeeze(-1)


def train(models: Path, epochs: int = 60, seed: int = 42) -> float:
    """Fit the net on 80 % of the red file, save it as `<models>/dense`, and return its test R2."""
    torch.manual_seed(seed)
    frame = pd.read_csv(DATA)
    x_train, x_test, y_train, y_test = train_test_split(
        frame[FEATURES].to_numpy(dtype="float32"),
        frame[TARGET].to_numpy(dtype="float32"),
        test_size=0.2,
        random_state=seed,
    )
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    net = Dense(xt.min(dim=0).values, xt.max(dim=0).values)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    loss_fn = nn.MSELoss()
    for _ in range(epochs):
        order = torch.randperm(len(xt))
        for start in range(0, len(xt), 128):
            idx = order[start : start + 128]
            optimizer.zero_grad()
            loss_fn(net(xt[idx]), yt[idx]).backward()
            optimizer.step()
    net.eval()
    with torch.inference_mode():
        predicted = net(torch.from_numpy(x_test))
    truth = torch.from_numpy(y_test)
    r2 = 1 - float(((predicted - truth) ** 2).sum() / ((truth - truth.mean()) ** 2).sum())
    models.mkdir(parents=True, exist_ok=True)
    torch.save(net, models / "dense")
    return r2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, required=True, help="the seed app's models folder")
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    # torch.save pickles the class by its module path: train through the importable module, not __main__
    from benchmarks import seed_net

    print(f"dense net saved in {args.models / 'dense'}; test r2 {seed_net.train(args.models, args.epochs):.2f}")


if __name__ == "__main__":
    main()
