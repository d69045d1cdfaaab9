"""Stalled clients against a real server: what they cost everyone else, and how the server ends them (make stall).

    .venv/bin/python -m load_tests.stall [--stalled 2000] [--seconds 60] [--clients 8] [--no-refill]

1. unloaded: 8 clients send /predict back to back for --baseline-seconds; their p50 and p99.
2. two phases of --seconds each: --stalled connections stall mid-body (headers and 1 byte of a declared 200-byte
   body), then mid-headers; each one the server ends is opened again at once (not with --no-refill), so that many
   stall all along, while the 8 clients keep sending /predict.

It prints JSON: every ordinary request's status counts and p50/p99 against unloaded; how each stalled connection
ended (408, closed without an answer, still open when the phase ended, or could not connect) and how long after its
connection began (min/p50/max); and the bar: every ordinary request 200, loaded p99 at most twice unloaded, every
stalled connection answered 408 or closed at the read timeout (WINE_READ_TIMEOUT_S). It exits 1 if the bar is missed.
The stalled connections live in a process of their own, so that the clients' latency is not theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import sys
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psutil

from load_tests.pressure import percentile
from tests.devserver import start_server
from wine_quality.schema import EXAMPLE
from wine_quality.settings import get_settings

STALLS = {
    "body": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{",
    "headers": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: appli",
}
SLACK_S = 2.0  # past the read timeout, for the server to answer thousands of connections that time out together


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


def entry_open_files(server_pid: int) -> int | None:
    """The open-file limit of the entry service's worker (it holds every client connection)."""
    for process in psutil.Process(server_pid).children(recursive=True):
        cmd = process.cmdline()
        if "--service-name" in cmd and cmd[cmd.index("--service-name") + 1] == "wine_quality":
            return int(process.rlimit(psutil.RLIMIT_NOFILE)[0])
    return None


def phase(url: str, kind: str, args: argparse.Namespace) -> tuple[list[tuple[int, float]], list[tuple[str, float]]]:
    """The clients' results and the stalled connections' ends while `kind` stalls."""
    context = multiprocessing.get_context("spawn")
    ready, (receiving, sending) = context.Event(), context.Pipe(duplex=False)
    process = context.Process(
        target=stall_process, args=(url, kind, args.stalled, args.seconds, not args.no_refill, ready, sending)
    )
    process.start()
    if not ready.wait(60):
        raise RuntimeError(f"the {kind} stalls did not start")
    loaded = asyncio.run(clients(url, args.seconds - min(2.0, args.seconds / 10), args.clients))
    ends: list[tuple[str, float]] = receiving.recv()
    process.join()
    return loaded, ends


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stalled", type=int, default=2000, help="connections stalled at once")
    p.add_argument("--seconds", type=float, default=60.0, help="length of each stalled phase")
    p.add_argument("--baseline-seconds", type=float, default=20.0, help="length of the unloaded measurement")
    p.add_argument("--clients", type=int, default=8, help="ordinary clients sending /predict")
    p.add_argument("--no-refill", action="store_true", help="open the stalled connections once, not again as they end")
    args = p.parse_args()
    timeout = get_settings().read_timeout_s
    server = start_server(env={"WINE_ACCESS_LOG": "false"})
    try:
        asyncio.run(clients(server.url, 3, args.clients))  # warm up
        unloaded = latency(asyncio.run(clients(server.url, args.baseline_seconds, args.clients)))
        report: dict[str, Any] = {
            "read_timeout_s": timeout,
            "entry_worker_open_files_limit": entry_open_files(server.process.pid),
            "unloaded": unloaded,
        }
        bar = {"every ordinary request 200": True, "p99 within twice unloaded": True, "stalls end at the timeout": True}
        for kind in STALLS:
            loaded, ends = phase(server.url, kind, args)
            figures = latency(loaded)
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
