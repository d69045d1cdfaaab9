"""The network's learning curve: fit_net's validation loss per epoch on the training scripts' split."""

from __future__ import annotations

from train.data import Split
from train.evaluation.candidates import Params
from train.evaluation.results import LearningCurve
from train.metrics import regression_metrics
from train.network import NetRegressor


def learning_curve(dataset: str, split: Split, params: Params, seed: int) -> LearningCurve:
    """Fit the network (every member of an ensemble) on the split's training rows, keep the early-stopping record of
    its first member (the one with this seed), score the whole on the test rows."""
    net = NetRegressor(**params, random_state=seed).fit(split.x_train, split.y_train)
    history = net.history_
    return LearningCurve(
        dataset=dataset,
        config=net.config,
        val_loss=[float(v) for v in history["val_loss"][0]],
        best_epoch=history["best_epoch"][0],
        epochs_run=history["epochs_run"][0],
        test_metrics=regression_metrics(split.y_test, net.predict(split.x_test)),
    )
