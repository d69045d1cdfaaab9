"""Fit a small dense PyTorch network with early stopping and save it to the BentoML model store."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from tqdm import tqdm

from train.common import evaluate_and_save, load_split, parser
from wine_quality.nets import WineNet
from wine_quality.registry import TORCH_FILE

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


@dataclass(frozen=True)
class NetConfig:
    """Every choice that shapes the network and its training."""

    # chosen by the nested cross-validation of `make evaluate` (reports/EVALUATION.md)
    hidden: tuple[int, ...] = (64, 64, 32)
    dropout: float = 0.2
    optimizer: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    epochs: int = 500
    patience: int = 30
    val_size: float = 0.15
    seed: int = 42


def fit_net(x: np.ndarray, y: np.ndarray, config: NetConfig, progress: bool = True) -> tuple[WineNet, dict[str, Any]]:
    """Train on part of the rows, stop early on the rest, and return the best network and its history."""
    torch.manual_seed(config.seed)
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=config.val_size, random_state=config.seed)
    net = WineNet(x.shape[1], config.hidden, config.dropout)
    net.fit_scaling(x_fit)
    optimizer = OPTIMIZERS[config.optimizer](net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.MSELoss()
    xf, yf = torch.as_tensor(x_fit, dtype=torch.float32), torch.as_tensor(y_fit, dtype=torch.float32)
    xv, yv = torch.as_tensor(x_val, dtype=torch.float32), torch.as_tensor(y_val, dtype=torch.float32)
    generator = torch.Generator().manual_seed(config.seed)
    best_loss, best_state, best_epoch, history = float("inf"), copy.deepcopy(net.state_dict()), 0, []
    bar = tqdm(range(1, config.epochs + 1), desc="epochs", unit="ep", disable=not progress, leave=False)
    for epoch in bar:
        net.train()
        for idx in torch.randperm(len(xf), generator=generator).split(config.batch_size):
            optimizer.zero_grad()
            loss_fn(net(xf[idx]), yf[idx]).backward()
            optimizer.step()
        net.eval()
        with torch.inference_mode():
            val_loss = float(loss_fn(net(xv), yv))
        history.append(val_loss)
        if val_loss < best_loss:
            best_loss, best_state, best_epoch = val_loss, copy.deepcopy(net.state_dict()), epoch
        bar.set_postfix(val_mse=f"{val_loss:.4f}", best=best_epoch)
        if epoch - best_epoch >= config.patience:
            break
    net.load_state_dict(best_state)
    net.eval()
    return net, {"best_epoch": best_epoch, "epochs_run": len(history), "best_val_mse": best_loss, "val_mse": history}


class NetRegressor:
    """fit/predict around fit_net, so cross-validation treats the network like any scikit-learn model."""

    def __init__(self, config: NetConfig, progress: bool = False) -> None:
        self.config, self.progress = config, progress
        self.net: WineNet | None = None
        self.history: dict[str, Any] = {}

    def fit(self, x: np.ndarray, y: np.ndarray) -> NetRegressor:
        self.net, self.history = fit_net(x, y, self.config, progress=self.progress)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        assert self.net is not None, "fit first"
        return self.net.predict(x)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer widths such as 64,32, got {text!r}") from exc
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive layer widths such as 64,32, got {text!r}")
    return sizes


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train, evaluate, save and pin; print the held-out metrics as JSON."""
    import bentoml

    d = NetConfig()
    p = parser("torch", __doc__ or "", cv_repeats=1)
    p.add_argument("--hidden", type=_sizes, default=d.hidden, help="hidden layer widths (default 64,64,32)")
    p.add_argument("--dropout", type=float, default=d.dropout, help="default %(default)s")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=d.optimizer, help="default %(default)s")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default %(default)s)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="default %(default)s")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="default %(default)s")
    p.add_argument("--epochs", type=int, default=d.epochs, help="most epochs (default %(default)s)")
    p.add_argument("--patience", type=int, default=d.patience, help="epochs without improvement before stopping")
    p.add_argument("--val-size", type=float, default=d.val_size, help="share of training rows for early stopping")
    p.add_argument("--threads", type=int, default=1, help="torch threads; 1 keeps runs reproducible (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.epochs < 1 or args.patience < 1 or not 0 < args.val_size < 1:
        p.error("--batch-size, --epochs and --patience must be positive and --val-size between 0 and 1")
    torch.set_num_threads(args.threads)
    config = NetConfig(
        hidden=args.hidden,
        dropout=args.dropout,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        epochs=args.epochs,
        patience=args.patience,
        val_size=args.val_size,
        seed=args.seed,
    )
    split, sha = load_split(args)

    def save(model: NetRegressor, metadata: dict[str, Any]) -> str:
        assert model.net is not None
        with bentoml.models.create(
            args.name, module="wine_quality.nets", labels={"kind": "torch"}, metadata=metadata
        ) as stored:
            torch.save(model.net.checkpoint(), stored.path_of(TORCH_FILE))
        return str(stored.tag)

    return evaluate_and_save(
        kind="torch",
        args=args,
        split=split,
        data_sha256=sha,
        make_model=lambda seed: NetRegressor(replace(config, seed=seed), progress=not args.no_progress),
        save=save,
        hyperparameters=lambda model: {
            **asdict(config),
            "hidden": list(config.hidden),
            **{k: v for k, v in model.history.items() if k != "val_mse"},  # the per-epoch curve stays out
        },
        libraries=("torch",),
    )


if __name__ == "__main__":
    main()
