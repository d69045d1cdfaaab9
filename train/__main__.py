"""Train whichever model kind has no usable pinned model in the store (`python -m train`; --all retrains them all).

--with-feedback retrains every kind with the capture database's tasted wines (train/feedback.py) and pins nothing:
stdout is then one JSON object, kind -> that run's result (its `tag` to give `python -m train.promote`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
from collections.abc import Sequence

from train.feedback import gate_share
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
    p.add_argument(
        "--with-feedback",
        action="store_true",
        help="retrain every kind with the capture database's tasted wines, pinning none (python -m train.promote does)",
    )
    p.add_argument("--gate-share", type=gate_share, default=0.2, help="with --with-feedback: see each script's --help")
    args = p.parse_args(argv)
    if args.with_feedback:
        options = ["--with-feedback", "--gate-share", str(args.gate_share)]
        results = {}
        for kind in KINDS:
            with contextlib.redirect_stdout(sys.stderr):  # each run's own JSON; stdout gets them all as one
                results[kind] = importlib.import_module(KINDS[kind].train_module).main(options)
        print(json.dumps(results, indent=2))
        return
    kinds = list(KINDS) if args.all else missing_kinds()
    if not kinds:
        print("every pinned model is in the store; nothing to train (use --all to retrain)")
    for kind in kinds:
        importlib.import_module(KINDS[kind].train_module).main([])


if __name__ == "__main__":
    main()
