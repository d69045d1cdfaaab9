"""`make chaos`: the model services SIGKILLed in turn under mixed load; each kill's recovery and every failed request.

    .venv/bin/python -m load_tests.chaos [--kills 30] [--clients 4] [--client-timeout 5]

A real `bentoml serve` on a free port answers a few closed-loop clients sending real wines (/predict, /predict_net,
/classify, and 10-wine /predict_batch on either regressor); each gives up on a request after `--client-timeout`
seconds, as an impatient caller would. Once the server is ready, the next model service in turn is killed with SIGKILL;
then the next, once it is ready again. A kill's recovery runs from the signal to the first 200 of a request begun after
it on a route of that model: only the restarted process can have answered it. Prints each kill (respawn: when the
supervisor started the new process), every failed request with its error, and the median and maximum recovery per
service; writes chaos.json to results/chaos-<UTC stamp>/; exits 1 on any failed request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import psutil

from harness.devserver import Server, results_server, started_s, uptime_s, workers
from load_tests.pressure import wine_rows

KINDS = ("sklearn", "torch", "classifier")  # killed in this order, each model service `wine_quality_<kind>`
# (route, the model kind it reaches, share of requests)
MIX = (
    ("/predict", "sklearn", 0.3),
    ("/predict_net", "torch", 0.3),
    ("/classify", "classifier", 0.3),
    ("/predict_batch", "sklearn", 0.05),
    ("/predict_batch", "torch", 0.05),
)
BATCH_ROWS = 10
SETTLE_S = 1.0  # load on the restarted process before the next kill
GIVE_UP_S = 60.0  # a kill not answered again by then is a failure in itself
JSON = {"Content-Type": "application/json"}


@dataclass
class Kill:
    """One SIGKILL: which service, when (loop time), and what followed, in seconds after it."""

    service: str
    kind: str
    at: float
    respawned_s: float | None = None  # the supervisor's new process existed
    answered_s: float | None = None  # the first 200 from the new process
    requests: int = 0  # answered or failed from this kill to the next
    failed: list[str] = field(default_factory=list)


@dataclass
class Chaos:
    """What a chaos run saw."""

    client_timeout_s: float
    kills: list[Kill] = field(default_factory=list)
    requests: int = 0
    failed_before_first_kill: list[str] = field(default_factory=list)

    def failures(self) -> list[str]:
        return [*self.failed_before_first_kill, *(f for k in self.kills for f in k.failed)]

    def summary(self) -> dict[str, Any]:
        """Median and maximum recovery per service, and every failure."""
        per_service: dict[str, dict[str, Any]] = {}
        for service in sorted({k.service for k in self.kills}):
            back = [k.answered_s for k in self.kills if k.service == service and k.answered_s is not None]
            per_service[service] = {
                "kills": sum(k.service == service for k in self.kills),
                "median_recovery_s": round(statistics.median(back), 2) if back else None,
                "max_recovery_s": round(max(back), 2) if back else None,
            }
        return {
            "client_timeout_s": self.client_timeout_s,
            "requests": self.requests,
            "failed": len(self.failures()),
            "per_service": per_service,
            "failures": self.failures(),
        }


def bodies() -> dict[tuple[str, str], list[bytes]]:
    """Request bodies of real wines for each entry of MIX."""
    rows = wine_rows()
    rng = random.Random(3)
    singles = [json.dumps(r).encode() for r in rng.sample(rows, 300)]
    batch = {
        kind: [json.dumps({"model": kind, "samples": rng.sample(rows, BATCH_ROWS)}).encode() for _ in range(20)]
        for kind in ("sklearn", "torch")
    }
    return {(route, kind): batch[kind] if route == "/predict_batch" else singles for route, kind, _ in MIX}


async def ready(session: aiohttp.ClientSession, url: str) -> None:
    """Return once /readyz says 200 (polled; at most GIVE_UP_S)."""
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as answer:
                if answer.status == 200:
                    return
        except (TimeoutError, aiohttp.ClientError):
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the server was not ready within {GIVE_UP_S} s")


async def respawned(server: Server, service: str, victim: psutil.Process, killed_at: float) -> float | None:
    """Seconds from the kill (on uptime_s()'s clock) until the supervisor started the service's new process."""
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        now = await asyncio.to_thread(workers, server)
        if service in now and now[service].pid != victim.pid:
            return started_s(now[service]) - killed_at
        await asyncio.sleep(0.1)  # the process's start time says when, whenever we look
    return None


async def run_chaos(server: Server, kills: int, clients: int, client_timeout_s: float) -> Chaos:
    """Kill the model services in turn `kills` times under load from `clients` clients; what followed each kill."""
    loop, chaos, payloads, rng = asyncio.get_running_loop(), Chaos(client_timeout_s), bodies(), random.Random(11)
    done = asyncio.Event()
    back: dict[int, asyncio.Event] = {}
    weights = [share for _, _, share in MIX]

    def record(route: str, kind: str, begun: float, status: int | str) -> None:
        chaos.requests += 1
        kill = chaos.kills[-1] if chaos.kills else None
        if kill is not None:
            kill.requests += 1
        if status != 200:
            failure = f"{route} ({kind}) begun {begun - kill.at if kill else begun:+.2f} s: {status}"
            (kill.failed if kill else chaos.failed_before_first_kill).append(failure)
        elif kill is not None and kind == kill.kind and begun > kill.at and kill.answered_s is None:
            kill.answered_s = loop.time() - kill.at
            back[len(chaos.kills)].set()

    async def client(session: aiohttp.ClientSession) -> None:
        while not done.is_set():
            route, kind, _ = rng.choices(MIX, weights)[0]
            begun = loop.time()
            status_or_error: int | str
            try:
                async with session.post(route, data=rng.choice(payloads[route, kind]), headers=JSON) as answer:
                    await answer.read()
                    status_or_error = answer.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                status_or_error = f"{type(exc).__name__}: {exc}".strip(": ")
            record(route, kind, begun, status_or_error)

    timeout = aiohttp.ClientTimeout(total=client_timeout_s)
    connector = aiohttp.TCPConnector(limit=clients)
    async with (
        aiohttp.ClientSession(server.url, timeout=timeout, connector=connector) as session,
        aiohttp.ClientSession() as prober,
    ):
        load = [asyncio.create_task(client(session)) for _ in range(clients)]
        try:
            for i in range(kills):
                await ready(prober, server.url)
                await asyncio.sleep(SETTLE_S)
                kind = KINDS[i % len(KINDS)]
                service = f"wine_quality_{kind}"
                victim = (await asyncio.to_thread(workers, server))[service]
                back[i + 1] = asyncio.Event()
                kill = Kill(service, kind, loop.time())
                chaos.kills.append(kill)
                killed_at = uptime_s()
                os.kill(victim.pid, signal.SIGKILL)
                kill.respawned_s = await respawned(server, service, victim, killed_at)
                try:
                    await asyncio.wait_for(back[i + 1].wait(), GIVE_UP_S)
                except TimeoutError:
                    kill.failed.append(f"{service} did not answer again within {GIVE_UP_S} s")
                print(line(i + 1, kills, kill), flush=True)
            await ready(prober, server.url)
            await asyncio.sleep(SETTLE_S)  # the last kill's requests too
        finally:
            done.set()
            await asyncio.gather(*load)
    return chaos


def line(number: int, total: int, kill: Kill) -> str:
    """One kill, as printed."""
    respawn = f"{kill.respawned_s:5.2f} s" if kill.respawned_s is not None else "   never"
    answer = f"{kill.answered_s:5.2f} s" if kill.answered_s is not None else "never"
    text = f"kill {number:2}/{total} {kill.service:<24} respawned {respawn}  answered again {answer}"
    return "\n    ".join([text, *kill.failed])


def report(chaos: Chaos) -> str:
    """The summary, as printed."""
    summary = chaos.summary()
    lines = [f"{'service':<24} kills  median recovery  max recovery"]
    for service, s in summary["per_service"].items():
        lines.append(f"{service:<24} {s['kills']:5}  {s['median_recovery_s']:13} s  {s['max_recovery_s']:10} s")
    patience = f"clients give up after {chaos.client_timeout_s:g} s"
    lines.append(f"{summary['requests']} requests, {summary['failed']} failed ({patience})")
    lines += [f"    {f}" for f in chaos.failed_before_first_kill]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=30, help="kills in all, the model services in turn (default 30)")
    p.add_argument("--clients", type=int, default=4, help="closed-loop clients (default 4)")
    p.add_argument("--client-timeout", type=float, default=5.0, help="seconds a client waits for an answer")
    args = p.parse_args()
    out, server = results_server("chaos")
    # the clients as if elsewhere: below the server in priority (what the server started before this keeps its own)
    os.nice(10)
    try:
        print(f"bentoml serve ready in {server.seconds_to_ready:.1f} s; {args.kills} kills, {args.clients} clients")
        chaos = asyncio.run(run_chaos(server, args.kills, args.clients, args.client_timeout))
    finally:
        server.stop()
    (out / "chaos.json").write_text(
        json.dumps({**chaos.summary(), "kills": [asdict(k) for k in chaos.kills]}, indent=2)
    )
    print(report(chaos))
    print(f"wrote {out}/chaos.json")
    if chaos.failures():
        sys.exit(1)


if __name__ == "__main__":
    main()
