"""The network's learning curve: fit_net's validation MSE per epoch on the training scripts' split."""

from __future__ import annotations

from train.data import Split
from train.evaluation.candidates import Params
from train.evaluation.results import LearningCurve
from train.metrics import regression_metrics
from train.network import NetRegressor


def learning_curve(dataset: str, split: Split, params: Params, seed: int) -> LearningCurve:
    """Fit the network on the split's training rows, keep its early-stopping record, score it on the test rows."""
    net = NetRegressor(**params, random_state=seed).fit(split.x_train, split.y_train)
    history = net.history_
    return LearningCurve(
        dataset=dataset,
        config=net.config,
        val_mse=[float(v) for v in history["val_mse"]],
        best_epoch=history["best_epoch"],
        epochs_run=history["epochs_run"],
        test_metrics=regression_metrics(split.y_test, net.predict(split.x_test)),
    )
