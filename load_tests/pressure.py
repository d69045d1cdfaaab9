"""Load at a chosen rate (open loop) or flat out (closed loop), for `make soak` and the load-shedding measurement.

An open-loop generator starts requests on a clock whatever the server does, as real clients do, so a slow server
shows up as latency and failures instead of as a lower request rate. Requests are a realistic mix: real wines one at
a time on both models, and now and then a 100-wine batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field

import aiohttp
import psutil

from train.data import RED, WHITE, load_wines
from wine_quality.schema import FEATURE_NAMES

# (route, share of requests): single wines on each model, and 100-wine batches
MIX = (("/predict", 0.46), ("/predict_net", 0.46), ("/predict_batch sklearn", 0.04), ("/predict_batch torch", 0.04))


def wine_rows() -> list[dict[str, float]]:
    """Every wine of both data files, as the fields of a JSON body."""
    return [
        dict(zip(FEATURE_NAMES, r, strict=True))
        for path in (RED, WHITE)
        for r in load_wines(path)[list(FEATURE_NAMES)].to_numpy(dtype=float).tolist()
    ]


def _bodies() -> dict[str, list[bytes]]:
    rows = wine_rows()
    rng = random.Random(7)
    singles = [json.dumps(r).encode() for r in rng.sample(rows, 500)]
    batches = {
        k: [json.dumps({"model": k, "samples": rng.sample(rows, 100)}).encode() for _ in range(20)]
        for k in ("sklearn", "torch")
    }
    return {
        "/predict": singles,
        "/predict_net": singles,
        "/predict_batch sklearn": batches["sklearn"],
        "/predict_batch torch": batches["torch"],
    }


@dataclass
class Outcome:
    """One request: when it started (s from the run's start), how long it took, and its status (0: no answer)."""

    start: float
    seconds: float
    status: int
    route: str


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (s from start, total RSS of the server)


def serving_rss_mb(pid: int) -> float:
    """Total RSS of a server and all its workers."""
    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total / 2**20


async def run_load(url: str, seconds: float, rate: float | None, clients: int, server_pid: int | None = None) -> Run:
    """Open loop at `rate` requests/s (at most `clients` in flight), or closed loop with `clients` when rate is None."""
    bodies, run, start = _bodies(), Run(), time.monotonic()
    routes, weights = zip(*MIX, strict=True)
    rng = random.Random(11)
    headers = {"Content-Type": "application/json"}
    limit = asyncio.Semaphore(clients)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one() -> None:
            name = rng.choices(routes, weights)[0]
            begun = time.monotonic()
            status = 0
            try:
                async with session.post(name.split()[0], data=rng.choice(bodies[name]), headers=headers) as r:
                    await r.read()
                    status = r.status
            except (TimeoutError, aiohttp.ClientError):
                pass
            finally:
                limit.release()
            run.outcomes.append(Outcome(begun - start, time.monotonic() - begun, status, name))

        async def watch_memory() -> None:
            while server_pid and time.monotonic() - start < seconds:
                run.rss_mb.append((time.monotonic() - start, serving_rss_mb(server_pid)))
                await asyncio.sleep(5)

        watcher = asyncio.create_task(watch_memory())
        tasks: set[asyncio.Task[None]] = set()
        sent = 0
        while (now := time.monotonic() - start) < seconds:
            if rate is not None:  # open loop: the next request is due at sent / rate
                due = sent / rate
                if due > now:
                    await asyncio.sleep(due - now)
            await limit.acquire()
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.gather(*tasks)
        watcher.cancel()
    return run


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")
