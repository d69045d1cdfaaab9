"""`make soak`: ten minutes at about 70 % of measured capacity, mixed load; failures, memory growth and p99 over time;
then `make chaos` on the same server.

    .venv/bin/python -m load_tests.soak [--minutes 10] [--share 0.7] [--chaos-kills 30]

Capacity is what the service answers with 32 clients sending flat out through the same client (the generator's own
CPU is part of the machine's budget). The run then sends at `share` of that rate, open loop. It writes soak.json and
soak.png to results/soak-<UTC stamp>/ and exits non-zero on any failed request or on memory growth of 5 % or more
after the first minute (the warm-up). Then, unless --chaos-kills is 0, the model services are killed in turn under
load (load_tests/chaos.py): each kill's recovery and every failed request go into the same report, and any failure
fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

from harness.devserver import results_server
from load_tests.chaos import Chaos, report, run_chaos
from load_tests.pressure import Run, percentile, run_load

WARM_UP_S = 60.0


def per_minute(run: Run) -> list[dict[str, float]]:
    """Requests, failures and latency percentiles for each minute of the run."""
    minutes: dict[int, list[tuple[float, int]]] = {}
    for o in run.outcomes:
        minutes.setdefault(int(o.start // 60), []).append((o.seconds * 1000, o.status))
    return [
        {
            "minute": m,
            "requests": len(v),
            "failed": sum(s != 200 for _, s in v),
            "p50_ms": percentile([ms for ms, _ in v], 0.5),
            "p99_ms": percentile([ms for ms, _ in v], 0.99),
        }
        for m, v in sorted(minutes.items())
    ]


def chart(path: Path, minutes: list[dict[str, float]], rss: list[tuple[float, float]], rate: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.plot([m["minute"] + 1 for m in minutes], [m["p99_ms"] for m in minutes], marker="o", label="p99")
    left.plot([m["minute"] + 1 for m in minutes], [m["p50_ms"] for m in minutes], marker="o", label="p50")
    left.set(xlabel="minute", ylabel="latency (ms)", title=f"latency at {rate:.0f} requests/s")
    left.legend()
    right.plot([t / 60 for t, _ in rss], [mb for _, mb in rss])
    right.set(xlabel="minute", ylabel="MB", title="RSS of every serving process")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--share", type=float, default=0.7, help="share of measured capacity to send (default 0.7)")
    p.add_argument("--chaos-kills", type=int, default=30, help="model services killed after the soak (0: none)")
    args = p.parse_args()
    out, server = results_server("soak")
    try:
        probe = asyncio.run(run_load(server.url, 20, None, 32))
        capacity = sum(o.status == 200 for o in probe.outcomes) / 20
        rate = args.share * capacity
        print(f"capacity {capacity:.0f} requests/s (mixed, 32 clients); soaking at {rate:.0f}/s for {args.minutes} min")
        run = asyncio.run(run_load(server.url, args.minutes * 60, rate, 256, server.process.pid))
        chaos: Chaos | None = None
        if args.chaos_kills:
            print(f"chaos: {args.chaos_kills} kills of the model services under load")
            chaos = asyncio.run(run_chaos(server, args.chaos_kills, clients=4, client_timeout_s=5.0))
    finally:
        server.stop()
    minutes = per_minute(run)
    settled = [mb for t, mb in run.rss_mb if t >= WARM_UP_S]
    growth = (max(settled) - settled[0]) / settled[0] if settled else float("nan")
    failed = sum(o.status != 200 for o in run.outcomes)
    statuses = Counter(str(o.status) for o in run.outcomes if o.status != 200)  # "0": no answer
    summary = {
        "capacity_per_s": capacity,
        "rate_per_s": rate,
        "requests": len(run.outcomes),
        "failed": failed,
        "failed_by_status": dict(statuses),
        "rss_mb_after_warm_up": settled[0] if settled else None,
        "rss_mb_max": max(settled) if settled else None,
        "rss_growth": growth,
        "minutes": minutes,
        "chaos": chaos.summary() if chaos else None,
    }
    (out / "soak.json").write_text(json.dumps(summary, indent=2))
    chart(out / "soak.png", minutes, run.rss_mb, rate)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("minutes", "chaos")}, indent=2))
    print("p99 per minute (ms):", [round(m["p99_ms"], 1) for m in minutes])
    if chaos:
        print(report(chaos))
    print(f"wrote {out}/soak.json and soak.png")
    chaos_failed = len(chaos.failures()) if chaos else 0
    if failed or not growth < 0.05 or chaos_failed:
        sys.exit(f"soak failed: {failed} failed requests, memory growth {growth:.1%}, {chaos_failed} failed in chaos")


if __name__ == "__main__":
    main()
