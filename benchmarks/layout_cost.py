"""`python -m benchmarks.layout_cost`: what each model kind's two layouts cost its model service, per type of wine.

make evaluate's pooling run says, for each kind, whether one model for both wines (pooled) is as accurate as one model
per type. This says what each layout costs to serve: every kind is trained both ways with its script's settings into a
temporary model store (about 8 minutes on 2 cores), then both ONNX forms are loaded side by side in one process, one
thread each, and answer 1,000 red wines and 1,000 white wines in turns, ROUNDS times over (the median of each). In
turns, because this machine's speed drifts by tens of percent from one minute to the next: measured in fresh processes
one after the other, the one network's two layouts came out 1.06 and 2.44 ms on the same 1,000 wines. It writes
reports/pooling/serving_cost.json, which the layout rule reads (train.evaluation.pooling.served_layout: pooled only
where it costs no type of wine more than one model per type).

    python -m benchmarks.layout_cost
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.model_cost import sample_rows
from wine_quality.card import Layout
from wine_quality.kinds import KINDS
from wine_quality.schema import TYPES
from wine_quality.settings import PROJECT_ROOT

OUT = PROJECT_ROOT / "reports" / "pooling" / "serving_cost.json"
LAYOUTS: tuple[Layout, ...] = ("pooled", "per_type")
ROUNDS, BATCHES = 8, 10  # each round: BATCHES of 1,000 wines for each layout, the first of each not counted


def train(kind: str, layout: Layout, home: Path) -> Path:
    """Train one kind in one layout into `home` (not pinned); its store folder."""
    module = KINDS[kind].train_module
    command = [sys.executable, "-m", module, "--layout", layout, "--no-pin"]
    env = {**os.environ, "BENTOML_HOME": str(home)}
    done = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    name, version = str(json.loads(done.stdout)["tag"]).split(":")
    return home / "models" / name / version


def in_turns(folders: dict[Layout, Path], rows: dict[str, np.ndarray]) -> dict[Layout, dict[str, float]]:
    """The median ms of 1,000 wines of each type for each layout's ONNX form, loaded side by side, run in turns."""
    import statistics
    import time

    from wine_quality.runtimes import load_onnx

    predict = {layout: load_onnx(folder, 1) for layout, folder in folders.items()}
    spent: dict[Layout, dict[str, list[float]]] = {layout: {t: [] for t in rows} for layout in folders}
    for _ in range(ROUNDS):
        for wine_type, wines in rows.items():
            for layout, run in predict.items():
                for i in range(BATCHES):
                    batch = wines[(i * 97) % (len(wines) - 1000) :][:1000]
                    start = time.perf_counter()
                    run(batch)
                    if i:
                        spent[layout][wine_type].append(time.perf_counter() - start)
    return {layout: {t: round(1e3 * statistics.median(s), 2) for t, s in by.items()} for layout, by in spent.items()}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.layout_cost", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated (default %(default)s)")
    p.add_argument("--out", type=Path, default=OUT, help="default: reports/pooling/serving_cost.json")
    args = p.parse_args(argv)
    cost: dict[str, dict[Layout, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows: dict[str, np.ndarray] = {}
        for wine_type in TYPES:
            sample_rows(Path(tmp) / f"{wine_type}.npy", wine_type)
            rows[wine_type] = np.load(Path(tmp) / f"{wine_type}.npy")
        for kind in args.kinds.split(","):
            folders = {layout: train(kind, layout, Path(tmp) / "home") for layout in LAYOUTS}
            cost[kind] = in_turns(folders, rows)
            print(f"{kind}: ms a 1,000 wines {cost[kind]}", flush=True)
    result = {"command": "python -m benchmarks.layout_cost", "ms_per_1000_wines_one_thread": cost}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
