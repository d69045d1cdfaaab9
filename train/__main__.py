"""Train whichever model kind has no usable pinned model in the store (`python -m train`; --all retrains both)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from wine_quality.registry import KINDS, ModelStoreError, ServedModel, find_stored, pinned_tag
from wine_quality.settings import get_settings


def missing_kinds() -> list[str]:
    """The kinds whose pinned model is absent from the store or does not match the schema."""
    missing = []
    settings = get_settings()
    for kind in KINDS:
        try:
            ServedModel.from_stored(kind, find_stored(kind, pinned_tag(kind, settings)), settings.interval_coverage)
        except ModelStoreError as exc:
            print(f"{kind}: to train, because {exc}", file=sys.stderr)
            missing.append(kind)
    return missing


def main(argv: Sequence[str] | None = None) -> None:
    """Train what is missing (or everything), with each script's defaults."""
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    p.add_argument("--all", action="store_true", help="retrain both models even if pinned ones exist")
    args = p.parse_args(argv)
    kinds = list(KINDS) if args.all else missing_kinds()
    if not kinds:
        print("both pinned models are in the store; nothing to train (use --all to retrain)")
    for kind in kinds:
        if kind == "sklearn":
            from train import sklearn_model

            sklearn_model.main([])
        else:
            from train import torch_model

            torch_model.main(["--no-progress"])


if __name__ == "__main__":
    main()
