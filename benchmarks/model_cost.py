"""What each served model's ONNX form costs a model service: memory and time to load it, and time to predict.

Each model is loaded in a fresh Python process, as a model service loads it (`wine_quality.runtimes.load_onnx` on its
store folder), so that one model's heap does not hide another's. Figures are medians over --processes processes:

- RSS before: the process with numpy and ONNX Runtime imported, and nothing loaded;
- load ms, RSS after, delta: the time and resident memory `load_onnx` adds (session creation);
- peak: the highest RSS the process reached, loading included;
- 1 row, 1,000 rows: the median time of one prediction, on real wines of both training files (or of one: --wines);
- after runs: the RSS once 1,000-row batches have run (ONNX Runtime keeps its working memory).

    python -m benchmarks.model_cost --home /tmp/wq-home --pins /tmp/wq-home/pins.json
    python -m benchmarks.model_cost --folder before=/tmp/old --folder after=/tmp/new   # folders holding model.onnx
    python -m benchmarks.model_cost --wines red    # red wines only: a model per type answers them with red's model
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wine_quality.runtimes import ONNX_FILE

BATCH = 1000
FIGURES = ("load_ms", "rss_before_mib", "rss_after_mib", "delta_mib", "peak_mib", "row_us", "batch_ms", "runs_mib")
HEADER = (
    "| model | file MiB | trees | load ms | RSS before MiB | RSS after MiB | delta MiB | peak MiB | 1 row µs "
    "| 1,000 rows ms | after runs MiB |"
)


def measure_here(folder: Path, rows_file: Path, threads: int, repeats: int) -> dict[str, float]:
    """The figures of one model, measured in this process (which must not have loaded any other)."""
    import time

    import numpy as np
    import onnxruntime  # noqa: F401  # imported before the first reading: a model service imports it to load its model
    import psutil

    from wine_quality.runtimes import load_onnx

    process = psutil.Process()
    rows = np.load(rows_file)
    before = process.memory_info().rss
    start = time.perf_counter()
    predict = load_onnx(folder, threads)
    load_s = time.perf_counter() - start
    after = process.memory_info().rss
    peak = peak_rss()

    def median_s(batch: int, times: int) -> float:
        spent = []
        for i in range(times + 5):  # the first calls warm ONNX Runtime's allocator up: not counted
            chunk = rows[(i * batch) % len(rows) :][:batch]
            start = time.perf_counter()
            predict(chunk)
            spent.append(time.perf_counter() - start)
        return statistics.median(spent[5:])

    row_s, batch_s = median_s(1, repeats), median_s(BATCH, max(5, repeats // 10))
    mib = 2**20
    return {
        "load_ms": load_s * 1e3,
        "rss_before_mib": before / mib,
        "rss_after_mib": after / mib,
        "delta_mib": (after - before) / mib,
        "peak_mib": peak / mib,
        "row_us": row_s * 1e6,
        "batch_ms": batch_s * 1e3,
        "runs_mib": process.memory_info().rss / mib,
    }


def peak_rss() -> int:
    """The highest RSS of this process, in bytes: Linux's VmHWM, which (unlike getrusage's) starts again at exec."""
    status = Path("/proc/self/status").read_text()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) * 1024


def measure(folder: Path, rows_file: Path, threads: int, repeats: int, processes: int) -> dict[str, float]:
    """The median figures of one model over fresh processes."""
    command = [sys.executable, "-m", "benchmarks.model_cost", "--child", str(folder), str(rows_file)]
    command += ["--threads", str(threads), "--repeats", str(repeats)]
    runs = []
    for _ in range(processes):
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=Path(__file__).parent.parent)
        if done.returncode:
            raise RuntimeError(f"measuring {folder} failed:\n{done.stderr}")
        runs.append(json.loads(done.stdout))
    return {name: statistics.median(run[name] for run in runs) for name in FIGURES}


def trees_in(onnx_file: Path) -> int:
    """How many trees the graph's tree-ensemble operators hold (0 for a graph without any)."""
    import onnx

    count = 0
    for node in onnx.load(str(onnx_file)).graph.node:
        attributes = {a.name: a for a in node.attribute}
        if node.op_type == "TreeEnsemble":
            count += len(attributes["tree_roots"].ints)
        elif node.op_type.startswith("TreeEnsemble"):
            count += len(set(attributes["nodes_treeids"].ints))
    return count


def pinned_folders() -> dict[str, Path]:
    """The store folder of each pinned model, by its store name, read from BENTOML_HOME and WINE_MODEL_PINS."""
    from wine_quality.kinds import KINDS
    from wine_quality.pins import pinned_tag
    from wine_quality.settings import ModelSettings
    from wine_quality.store import find_stored

    settings = ModelSettings()
    return {kind.store_name: Path(find_stored(key, pinned_tag(key, settings)).path) for key, kind in KINDS.items()}


def sample_rows(path: Path, wines: str = "both") -> None:
    """Real wines for the predictions: the distinct rows of both training files (or of one type's) as the models take
    them (MODEL_INPUTS: the features, then white), saved as a float64 array."""
    import numpy as np

    from train.data import DATA_FILES, load_files, split_wines
    from wine_quality.per_type import white_rows

    rows = split_wines(load_files(DATA_FILES), 0.2, 0).x_all
    if wines != "both":
        rows = rows[white_rows(rows) == (wines == "white")]
    np.save(path, np.random.default_rng(0).permutation(rows).astype(np.float64))


def table(results: dict[str, dict[str, Any]]) -> str:
    """The figures as a Markdown table."""
    lines = [HEADER, "|" + " --- |" * (HEADER.count("|") - 1)]
    for name, r in results.items():
        cells = [name, f"{r['file_mib']:.1f}", str(r["trees"] or "-"), f"{r['load_ms']:.0f}"]
        cells += [f"{r[k]:.0f}" for k in ("rss_before_mib", "rss_after_mib", "delta_mib", "peak_mib")]
        cells += [f"{r['row_us']:.0f}", f"{r['batch_ms']:.1f}", f"{r['runs_mib']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Measure the pinned models (or the folders given) and print the table."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.model_cost", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--home", type=Path, help="BENTOML_HOME of the store (default: the environment's)")
    p.add_argument("--pins", type=Path, help="the pin file (default: WINE_MODEL_PINS, else the project's)")
    p.add_argument("--folder", action="append", default=[], metavar="NAME=DIR", help="a folder holding model.onnx")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads, as WINE_MODEL_THREADS (default 1)")
    p.add_argument("--repeats", type=int, default=300, help="1-row predictions timed (a tenth as many batches)")
    p.add_argument("--processes", type=int, default=3, help="fresh processes per model (default 3)")
    p.add_argument("--wines", choices=("both", "red", "white"), default="both", help="rows predicted (default both)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        folder, rows_file = args.child
        print(json.dumps(measure_here(folder, rows_file, args.threads, args.repeats)))
        return {}
    if args.home:
        os.environ["BENTOML_HOME"] = str(args.home)
    if args.pins:
        os.environ["WINE_MODEL_PINS"] = str(args.pins)
    given = dict(item.split("=", 1) for item in args.folder)
    folders = {name: Path(folder) for name, folder in given.items()} if given else pinned_folders()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.npy"
        sample_rows(rows_file, args.wines)
        for name, folder in folders.items():
            onnx_file = folder / ONNX_FILE
            figures = measure(folder, rows_file, args.threads, args.repeats, args.processes)
            results[name] = {"file_mib": onnx_file.stat().st_size / 2**20, "trees": trees_in(onnx_file), **figures}
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
