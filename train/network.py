"""Training the wine network: its settings, the early-stopping loop, the seed ensemble, and a scikit-learn estimator
around them."""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import train_test_split
from torch import nn
from tqdm import tqdm

from wine_quality.nets import WineEnsemble, WineNet

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

    # the shape, regularisation and regime: chosen by the nested cross-validation of `make evaluate`; the loss, the
    # log inputs and the 5 members averaged: its torch_ensemble row, the one network within 0.02 MAD of the best
    # scikit-learn model on red and white (reports/EVALUATION.md)
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
    loss: str = "l1"
    log_inputs: bool = True  # log1p of wine_quality.nets.LOG_FEATURES before standardising
    members: int = 5  # networks averaged, seeds seed .. seed + members - 1


def fit_net(x: np.ndarray, y: np.ndarray, config: NetConfig, progress: bool = True) -> tuple[WineNet, dict[str, Any]]:
    """Train one network (seed config.seed; config.members is not read) on part of the rows, stop early on the rest,
    and return the best network and its history: best epoch, epochs run, the best and every epoch's validation loss
    (config.loss)."""
    torch.manual_seed(config.seed)
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=config.val_size, random_state=config.seed)
    net = WineNet(x.shape[1], config.hidden, config.dropout, config.log_inputs)
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
        bar.set_postfix(val_loss=f"{val_loss:.4f}", best=best_epoch)
        if epoch - best_epoch >= config.patience:
            break
    net.load_state_dict(best_state)
    net.eval()
    return net, {"best_epoch": best_epoch, "epochs_run": len(history), "best_val_loss": best_loss, "val_loss": history}


def fit_ensemble(
    x: np.ndarray, y: np.ndarray, config: NetConfig, progress: bool = True
) -> tuple[WineEnsemble, dict[str, list[Any]]]:
    """config.members networks, member i trained by fit_net with seed config.seed + i, averaged; the history holds
    each of fit_net's entries as a list over the members."""
    if config.members < 1:
        raise ValueError(f"an ensemble needs at least one member, not {config.members}")
    nets: list[WineNet] = []
    history: dict[str, list[Any]] = {}
    for i in range(config.members):
        net, record = fit_net(x, y, replace(config, seed=config.seed + i), progress=progress)
        nets.append(net)
        for key, value in record.items():
            history.setdefault(key, []).append(value)
    ensemble = WineEnsemble(nets)
    ensemble.eval()
    return ensemble, history


class NetRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """The network as a scikit-learn estimator: clone, get_params, GridSearchCV and cross_val_predict work on it.

    Its parameters are NetConfig's fields (the seed is `random_state`, as in scikit-learn); `fit` keeps the ensemble
    of `members` networks (one network is an ensemble of one) in `net_` and their early-stopping records in
    `history_` (fit_ensemble's).
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
        log_inputs: bool = NetConfig.log_inputs,
        members: int = NetConfig.members,
    ) -> None:
        self.hidden, self.dropout, self.optimizer, self.lr = hidden, dropout, optimizer, lr
        self.weight_decay, self.batch_size, self.epochs, self.patience = weight_decay, batch_size, epochs, patience
        self.val_size, self.random_state, self.progress, self.loss = val_size, random_state, progress, loss
        self.log_inputs, self.members = log_inputs, members

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
            log_inputs=self.log_inputs,
            members=self.members,
        )

    def fit(self, x: np.ndarray, y: np.ndarray) -> NetRegressor:
        self.net_, self.history_ = fit_ensemble(np.asarray(x), np.asarray(y), self.config, progress=self.progress)
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.net_.predict(x)
