"""`python -m benchmarks.capture_flush`: what one flush of the capture writer costs the entry process.

The writer runs in a thread of the entry, so its CPU is taken from the answers and, while it holds the GIL, the
event loop waits. This writes N wines in batches of one (as /predict makes them), or of --batch wines (as a
1,000-wine /predict_batch makes them), into a temporary SQLite file, five times, and prints the CPU per wine and the
lag of an event loop that ticks every 0.5 ms meanwhile.

    python -m benchmarks.capture_flush                             # single wines
    python -m benchmarks.capture_flush --wines 4000 --batch 1000   # 1,000-wine batches
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from wine_quality.capture.batch import CaptureBatch
from wine_quality.capture.ids import new_ids
from wine_quality.capture.tables import make_engine, metadata
from wine_quality.capture.writer import Writer
from wine_quality.settings import CaptureSettings

TICK_S = 0.0005


def wines(rng: np.random.Generator, n: int) -> CaptureBatch:
    return CaptureBatch(
        ids=new_ids(n),
        route="/predict" if n == 1 else "/predict_batch",
        protocol="json",
        model_tag="wine_quality_sklearn:bench",
        runtime="onnx",
        kind="sklearn",
        features=rng.uniform(0.1, 20, (n, 11)),
        grades=rng.uniform(3, 8, n),
        interval_low=np.full(n, 4.9),
        interval_high=np.full(n, 6.1),
        interval_coverage=0.9,
        outside=[[] for _ in range(n)],
    )


async def measure(writer: Writer, wines_a_flush: int, batch: int, rounds: int) -> tuple[float, list[float]]:
    rng, cpu, lags = np.random.default_rng(0), 0.0, []
    wines_a_flush = max(batch, wines_a_flush - wines_a_flush % batch)
    for _ in range(rounds):
        for _ in range(wines_a_flush // batch):
            writer.record(wines(rng, batch))
        spent: list[float] = []

        def flush_once(spent: list[float] = spent) -> None:
            before = time.thread_time()  # the writer thread's own CPU
            writer.flush()
            spent.append(time.thread_time() - before)

        flush = threading.Thread(target=flush_once)
        flush.start()
        while flush.is_alive():
            start = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lags.append(time.perf_counter() - start - TICK_S)
        flush.join()
        cpu += spent[0]
    return cpu / (wines_a_flush * rounds), sorted(lags)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.capture_flush", description=__doc__)
    p.add_argument("--wines", type=int, default=1000, help="wines a flush (about a second of /predict)")
    p.add_argument("--batch", type=int, default=1, help="wines a captured batch (a request)")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'capture.db'}")
        metadata.create_all(engine)
        settings = CaptureSettings(url=str(engine.url), flush_interval_s=3600, buffer_rows=max(100_000, args.wines))
        writer = Writer(engine, settings)
        per_wine, lags = asyncio.run(measure(writer, args.wines, args.batch, args.rounds))
        engine.dispose()

    def pick(q: float) -> float:
        return lags[min(len(lags) - 1, int(q * len(lags)))] * 1e3

    print(
        f"flush CPU {per_wine * 1e6:.1f} us a wine; event-loop lag during flushes (ms): p50 {pick(0.5):.2f}, "
        f"p99 {pick(0.99):.2f}, max {lags[-1] * 1e3:.2f} over {len(lags)} ticks"
    )


if __name__ == "__main__":
    main()
