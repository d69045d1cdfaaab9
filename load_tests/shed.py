"""Load shedding, measured: capacity, then a burst far beyond it, then recovery (figures for the README and notes).

    .venv/bin/python -m load_tests.shed [--burst-clients 320] [--seconds 10]

1. capacity: 32 clients flat out, single wines on both models and a few batches (the soak's mix);
2. burst: ten times the clients that reach capacity, flat out: every answer must be 200 or 503 (+ Retry-After) within
   a second, and /livez is timed all along;
3. recovery: 32 clients again; the throughput of its first seconds against capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter

import httpx

from harness.devserver import start_server
from load_tests.pressure import Run, percentile, run_load


def _spread(ms: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(ms, 0.5), 1), "p99": round(percentile(ms, 0.99), 1), "max": round(max(ms), 1)}


async def burst_with_probe(url: str, seconds: float, clients: int) -> tuple[Run, list[float]]:
    """The burst, and /livez's latency (ms) sampled every 100 ms meanwhile."""
    live: list[float] = []

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                begun = time.monotonic()
                (await client.get("/livez")).raise_for_status()
                live.append((time.monotonic() - begun) * 1000)
                await asyncio.sleep(0.1)

    load, _ = await asyncio.gather(run_load(url, seconds, None, clients), probe())
    return load, live


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--burst-clients", type=int, default=320)
    p.add_argument("--seconds", type=float, default=10.0)
    args = p.parse_args()
    server = start_server(env={"WINE_ACCESS_LOG": "false"})
    try:
        base = asyncio.run(run_load(server.url, args.seconds, None, 32))
        capacity = sum(o.status == 200 for o in base.outcomes) / args.seconds
        burst, live = asyncio.run(burst_with_probe(server.url, args.seconds, args.burst_clients))
        after = asyncio.run(run_load(server.url, 5, None, 32))
    finally:
        server.stop()
    statuses = Counter(o.status for o in burst.outcomes)
    by_status = {s: [o.seconds * 1000 for o in burst.outcomes if o.status == s] for s in statuses}
    figures = {
        "capacity_per_s": round(capacity),
        "burst_clients": args.burst_clients,
        "burst_answers_per_s": round(len(burst.outcomes) / args.seconds),  # type: ignore[attr-defined]
        "burst_statuses": dict(statuses),
        "burst_ms": {
            s: {"p50": round(percentile(v, 0.5), 1), "p99": round(percentile(v, 0.99), 1), "max": round(max(v), 1)}
            for s, v in by_status.items()
        },
        "livez_ms": {"p50": round(percentile(live, 0.5), 1), "max": round(max(live), 1)},
        "after_burst_per_s": round(sum(o.status == 200 for o in after.outcomes) / 5),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
