"""Train whichever model kind has no usable pinned model in the store (`python -m train`; --all retrains them all)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from wine_quality.kinds import KINDS
from wine_quality.served import ServedModel
from wine_quality.settings import get_settings
from wine_quality.store import ModelStoreError


def missing_kinds() -> list[str]:
    """The kinds whose pinned model is absent from the store, or cannot be served as it is."""
    missing = []
    settings = get_settings()
    for kind in KINDS:
        try:
            ServedModel.load(kind, settings)
        except ModelStoreError as exc:
            print(f"{kind}: to train, because {exc}", file=sys.stderr)
            missing.append(kind)
    return missing


def main(argv: Sequence[str] | None = None) -> None:
    """Train what is missing (or everything), with each script's defaults."""
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    p.add_argument("--all", action="store_true", help="retrain every kind even if pinned ones exist")
    args = p.parse_args(argv)
    kinds = list(KINDS) if args.all else missing_kinds()
    if not kinds:
        print("every pinned model is in the store; nothing to train (use --all to retrain)")
    for kind in kinds:
        importlib.import_module(KINDS[kind].train_module).main([])


if __name__ == "__main__":
    main()
