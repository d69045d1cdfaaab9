"""Fit a small dense PyTorch network with early stopping and save it to the BentoML model store."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import torch

from train.common import evaluate_and_save, load_split, parser
from train.network import OPTIMIZERS, NetConfig, NetRegressor
from wine_quality.registry import TORCH_FILE


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
        with bentoml.models.create(
            args.name, module="wine_quality.nets", labels={"kind": "torch"}, metadata=metadata
        ) as stored:
            torch.save(model.net_.checkpoint(), stored.path_of(TORCH_FILE))
        return str(stored.tag)

    return evaluate_and_save(
        kind="torch",
        args=args,
        split=split,
        data_sha256=sha,
        make_model=lambda seed: NetRegressor.from_config(replace(config, seed=seed), progress=not args.no_progress),
        save=save,
        hyperparameters=lambda model: {
            **asdict(config),
            "hidden": list(config.hidden),
            **{k: v for k, v in model.history_.items() if k != "val_mse"},  # the per-epoch curve stays out
        },
        libraries=("torch",),
    )


if __name__ == "__main__":
    main()
