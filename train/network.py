"""Training the wine network: its settings, the early-stopping loop, and a scikit-learn estimator around them."""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import train_test_split
from torch import nn
from tqdm import tqdm

from wine_quality.nets import WineNet

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
# trained and early-stopped on: squared error (the mean grade), absolute error (the median: the paper's MAD), Huber
LOSSES = {"mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss}


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
    loss: str = "mse"


def fit_net(x: np.ndarray, y: np.ndarray, config: NetConfig, progress: bool = True) -> tuple[WineNet, dict[str, Any]]:
    """Train on part of the rows, stop early on the rest, and return the best network and its history."""
    torch.manual_seed(config.seed)
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=config.val_size, random_state=config.seed)
    net = WineNet(x.shape[1], config.hidden, config.dropout)
    net.fit_scaling(x_fit)
    optimizer = OPTIMIZERS[config.optimizer](net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = LOSSES[config.loss]()
    xf, yf = torch.as_tensor(x_fit, dtype=torch.float32), torch.as_tensor(y_fit, dtype=torch.float32)
    xv, yv = torch.as_tensor(x_val, dtype=torch.float32), torch.as_tensor(y_val, dtype=torch.float32)
    generator = torch.Generator().manual_seed(config.seed)
    best_loss, best_state, best_epoch, history = float("inf"), copy.deepcopy(net.state_dict()), 0, []
    bar = tqdm(range(1, config.epochs + 1), desc="epochs", unit="ep", disable=not progress, leave=False)
    for epoch in bar:
        net.train()
        for idx in torch.randperm(len(xf), generator=generator).split(config.batch_size):  # type: ignore[no-untyped-call]
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


class NetRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """The network as a scikit-learn estimator: clone, get_params, GridSearchCV and cross_val_predict work on it.

    Its parameters are NetConfig's fields (the seed is `random_state`, as in scikit-learn); `fit` keeps the network
    in `net_` and the early-stopping record in `history_`.
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = NetConfig.hidden,
        dropout: float = NetConfig.dropout,
        optimizer: str = NetConfig.optimizer,
        lr: float = NetConfig.lr,
        weight_decay: float = NetConfig.weight_decay,
        batch_size: int = NetConfig.batch_size,
        epochs: int = NetConfig.epochs,
        patience: int = NetConfig.patience,
        val_size: float = NetConfig.val_size,
        random_state: int = NetConfig.seed,
        progress: bool = False,
        loss: str = NetConfig.loss,
    ) -> None:
        self.hidden, self.dropout, self.optimizer, self.lr = hidden, dropout, optimizer, lr
        self.weight_decay, self.batch_size, self.epochs, self.patience = weight_decay, batch_size, epochs, patience
        self.val_size, self.random_state, self.progress, self.loss = val_size, random_state, progress, loss

    @classmethod
    def from_config(cls, config: NetConfig, progress: bool = False) -> NetRegressor:
        """The estimator for a NetConfig."""
        settings = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "seed"}
        return cls(**settings, random_state=config.seed, progress=progress)

    @property
    def config(self) -> NetConfig:
        """This estimator's parameters as a NetConfig."""
        return NetConfig(
            hidden=tuple(self.hidden),
            dropout=self.dropout,
            optimizer=self.optimizer,
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            epochs=self.epochs,
            patience=self.patience,
            val_size=self.val_size,
            seed=self.random_state,
            loss=self.loss,
        )

    def fit(self, x: np.ndarray, y: np.ndarray) -> NetRegressor:
        self.net_, self.history_ = fit_net(np.asarray(x), np.asarray(y), self.config, progress=self.progress)
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.net_.predict(x)
