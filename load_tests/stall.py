"""Stalled clients against a real server: what they cost everyone else, and how the server ends them (make stall).

    .venv/bin/python -m load_tests.stall [--stalled 2000] [--seconds 60] [--clients 8] [--refill]

1. unloaded: 8 clients send /predict back to back for as long as a phase lasts; their p50 and p99.
2. two phases of --seconds each: --stalled connections stall mid-body (headers and 1 byte of a declared 200-byte
   body), then mid-headers, each for as long as the phase lasts unless the server ends it, while the 8 clients keep
   sending /predict. With --refill each connection the server ends is opened again at once, so that as many stall
   all along.

It prints JSON: every ordinary request's status counts and p50/p99 against unloaded; how each stalled connection
ended (408, closed without an answer, still open when the phase ended, or could not connect) and how long after its
connection began (min/p50/max); the entry worker's CPU time and memory; and the bar: every ordinary request 200,
loaded p99 at most twice unloaded, every stalled connection answered 408 or closed at the read timeout
(WINE_READ_TIMEOUT_S). It exits 1 if the bar is missed. The stalled connections live in a process of their own, at
a lower priority, as if they came from elsewhere: on one machine their client would otherwise compete with the server
and the ordinary clients for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import sys
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psutil

from harness.devserver import start_server, workers
from load_tests.pressure import percentile
from wine_quality.drain import ENTRY_SERVICE
from wine_quality.schema import EXAMPLE
from wine_quality.settings import get_settings

STALLS = {
    "body": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{",
    "headers": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: appli",
}
SLACK_S = 2.0  # past the read timeout: thousands of connections timing out together are answered (and seen) in turn


async def _stall(host: str, port: int, data: bytes, until: float, refill: bool, ends: list[tuple[str, float]]) -> None:
    """One stalled connection after another until `until`; each end noted as (how, seconds after it began)."""
    loop = asyncio.get_running_loop()
    while (begun := loop.time()) < until:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), until - begun)
        except (OSError, TimeoutError):
            ends.append(("could not connect", loop.time() - begun))
            await asyncio.sleep(0.1)
            continue
        writer.write(data)
        try:
            answer = await asyncio.wait_for(reader.read(), until - loop.time())
            how = "closed" if not answer else answer.split(b"\r\n", 1)[0].decode(errors="replace")
        except TimeoutError:
            how = "still open"
        except ConnectionError:
            how = "closed"
        ends.append((how, loop.time() - begun))
        writer.close()
        if not refill:
            return


def stall_process(url: str, kind: str, count: int, seconds: float, refill: bool, ready: Any, out: Connection) -> None:
    """Keep `count` connections stalled for `seconds`; send back how each ended."""
    os.nice(10)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 1024)), hard))
    address = urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or 80

    async def run() -> list[tuple[str, float]]:
        ends: list[tuple[str, float]] = []
        until = asyncio.get_running_loop().time() + seconds
        tasks = [asyncio.create_task(_stall(host, port, STALLS[kind], until, refill, ends)) for _ in range(count)]
        await asyncio.sleep(min(2.0, seconds / 10))  # let them connect before the clients measure
        ready.set()
        await asyncio.gather(*tasks)
        return ends

    out.send(asyncio.run(run()))


async def clients(url: str, seconds: float, count: int) -> list[tuple[int, float]]:
    """`count` clients sending /predict back to back for `seconds`: (status, ms) of every request (0: no answer)."""
    results: list[tuple[int, float]] = []
    body = json.dumps(EXAMPLE).encode()
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=count)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        end = time.monotonic() + seconds

        async def one_client() -> None:
            while (begun := time.monotonic()) < end:
                status = 0
                try:
                    async with session.post("/predict", data=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                except (TimeoutError, aiohttp.ClientError):
                    pass
                results.append((status, (time.monotonic() - begun) * 1000))

        await asyncio.gather(*(one_client() for _ in range(count)))
    return results


def latency(results: list[tuple[int, float]]) -> dict[str, Any]:
    ms = [m for _, m in results]
    statuses = Counter(s for s, _ in results)
    return {
        "requests": len(results),
        "statuses": dict(statuses),
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
    }


def endings(ends: list[tuple[str, float]]) -> dict[str, dict[str, Any]]:
    """How the stalled connections ended: count, and seconds after their start (min, p50, max)."""
    by_how: dict[str, list[float]] = {}
    for how, after in ends:
        by_how.setdefault(how, []).append(after)
    return {
        how: {"count": len(s), "after_s": [round(min(s), 2), round(percentile(s, 0.5), 2), round(max(s), 2)]}
        for how, s in sorted(by_how.items())
    }


def ended_at_the_timeout(ends: list[tuple[str, float]], timeout: float) -> bool:
    """Each connection got 408 or was closed, at the read timeout; those still open were younger than that."""
    ok_end = {"closed", "HTTP/1.1 408 Request Timeout"}
    return bool(ends) and all(
        (how in ok_end and timeout - 0.1 <= after <= timeout + SLACK_S)
        or (how == "still open" and after < timeout + SLACK_S)
        for how, after in ends
    )


def cost(entry: psutil.Process, cpu_before: float, seconds: float) -> dict[str, float]:
    """The entry worker's CPU share since `cpu_before` over `seconds`, and its memory now."""
    times = entry.cpu_times()
    return {
        "entry_cpu_share": round((times.user + times.system - cpu_before) / seconds, 2),
        "entry_rss_mib": round(entry.memory_info().rss / 2**20, 1),
    }


def phase(
    url: str, kind: str, args: argparse.Namespace, entry: psutil.Process
) -> tuple[dict[str, Any], list[tuple[str, float]]]:
    """The clients' figures (and the entry's cost) and the stalled connections' ends while `kind` stalls."""
    context = multiprocessing.get_context("spawn")
    ready, (receiving, sending) = context.Event(), context.Pipe(duplex=False)
    process = context.Process(
        target=stall_process, args=(url, kind, args.stalled, args.seconds, args.refill, ready, sending)
    )
    process.start()
    if not ready.wait(60):
        raise RuntimeError(f"the {kind} stalls did not start")
    seconds, cpu = args.seconds - min(2.0, args.seconds / 10), sum(entry.cpu_times()[:2])
    figures = latency(asyncio.run(clients(url, seconds, args.clients)))
    figures.update(cost(entry, cpu, seconds))
    ends: list[tuple[str, float]] = receiving.recv()
    process.join()
    return figures, ends


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stalled", type=int, default=2000, help="connections stalled at once")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the unloaded measurement and of each phase")
    p.add_argument("--clients", type=int, default=8, help="ordinary clients sending /predict")
    p.add_argument("--refill", action="store_true", help="open each stalled connection again as soon as it ends")
    args = p.parse_args()
    timeout = get_settings().requests.read_timeout_s
    server = start_server(env={"WINE_ACCESS_LOG": "false"})
    try:
        entry = workers(server)[ENTRY_SERVICE]  # it holds every client connection
        asyncio.run(clients(server.url, 3, args.clients))  # warm up
        cpu = sum(entry.cpu_times()[:2])
        unloaded = latency(asyncio.run(clients(server.url, args.seconds, args.clients)))
        unloaded.update(cost(entry, cpu, args.seconds))
        report: dict[str, Any] = {
            "read_timeout_s": timeout,
            "stalled_at_once": args.stalled,
            "refill": args.refill,
            "entry_worker_open_files_limit": entry.rlimit(psutil.RLIMIT_NOFILE)[0],
            "unloaded": unloaded,
        }
        bar = {"every ordinary request 200": True, "p99 within twice unloaded": True, "stalls end at the timeout": True}
        for kind in STALLS:
            figures, ends = phase(server.url, kind, args, entry)
            figures["p99_vs_unloaded"] = round(figures["p99_ms"] / unloaded["p99_ms"], 2)
            report[f"stalled mid-{kind}"] = {"ordinary": figures, "stalled": endings(ends)}
            bar["every ordinary request 200"] &= set(figures["statuses"]) == {200}
            bar["p99 within twice unloaded"] &= figures["p99_vs_unloaded"] <= 2
            bar["stalls end at the timeout"] &= ended_at_the_timeout(ends, timeout)
    finally:
        server.stop()
    report["bar"] = bar
    print(json.dumps(report, indent=2))
    sys.exit(0 if all(bar.values()) else 1)


if __name__ == "__main__":
    main()
