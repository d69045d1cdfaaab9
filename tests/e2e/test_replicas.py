"""End to end: `make replicas` on the image built from this checkout; a replica killed mid-load costs no request.

Three containers of the image run with the prod overlay's pod spec (deploy/pod.py: non-root, read-only root
filesystem, emptyDir volumes, no capabilities, the ConfigMap's settings, the memory and CPU limits) behind HAProxy
(deploy/replicas.py). An async client sends predictions through the balancer; one replica is killed with SIGKILL
mid-run; every request must still succeed, HAProxy must take the dead replica out within seconds, and once the
container is started again it must come back UP and receive traffic. Load goes to 127.0.0.1 only, bounded in time
and count. Everything started here is removed at the end.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from deploy.pod import Pod, render
from deploy.replicas import Replicas, ensure_haproxy, up
from wine_quality.schema import EXAMPLE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COUNT = 3
CLIENTS = 16
BEFORE_KILL_S = 4.0
AFTER_REJOIN_S = 3.0
DOWN_LIMIT_S = 5.0  # HAProxy checks every second, every 250 ms when in doubt, and reacts to live errors at once
REJOIN_LIMIT_S = 120.0  # a restart on a 2-core machine under load: 14-42 s seen
RUN_LIMIT_S = 150.0
MAX_REQUESTS = 50_000


@pytest.fixture(scope="module")
def pod() -> Pod:
    return Pod.of(render("prod"))


@pytest.fixture(scope="module")
def replicas(cli: str, image: str) -> Iterator[Replicas]:
    """`make replicas`'s script: three replicas of the e2e image behind HAProxy; removed at the end."""
    try:
        ensure_haproxy()
    except (SystemExit, subprocess.CalledProcessError) as exc:
        pytest.skip(f"HAProxy cannot be installed on this machine: {exc}")
    started = time.monotonic()
    running = up(image, COUNT, overlay="prod")
    print(f"\n{COUNT} replicas and HAProxy ready in {time.monotonic() - started:.1f} s at {running.url}")
    yield running
    running.down()


def test_replicas_run_as_the_manifests_say(replicas: Replicas, pod: Pod) -> None:
    """Each replica runs the image with a read-only root filesystem as the pod's user, and serves the probe paths
    and predictions; so does the balancer."""
    user = pod.spec["securityContext"]["runAsUser"]
    for name, port in replicas.ports.items():
        inspect = replicas.container("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}", name)
        assert inspect.stdout.split() == ["true", f"{user}:{user}"], inspect.stdout + inspect.stderr
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            path = pod.probe_path(probe)
            assert httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).status_code == 200, (name, path)
        written = replicas.container("exec", name, "sh", "-c", "touch /home/bentoml/x 2>&1; echo $?").stdout
        assert written.strip().endswith("1"), f"the root filesystem of {name} is writable: {written}"
    answer = httpx.post(f"{replicas.url}/predict", json=EXAMPLE, timeout=30)
    assert answer.status_code == 200 and 4.0 < answer.json()["quality"] < 6.5, answer.text


@dataclass
class Load:
    """Counts of a load run through the balancer."""

    ok: int = 0
    failed: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self, route: str, reply: httpx.Response) -> None:
        """A success is a 200 whose every quality is a grade from 0 to 10."""
        try:
            body = reply.json()
            qualities = [p["quality"] for p in body["predictions"]] if "predictions" in body else [body["quality"]]
            good = reply.status_code == 200 and all(isinstance(q, float) and 0 <= q <= 10 for q in qualities)
        except (ValueError, KeyError, TypeError):
            good = False
        if good:
            self.ok += 1
        else:
            self.failed.append(f"{route}: {reply.status_code} {reply.text[:200]}")

    async def client(self, http: httpx.AsyncClient, index: int) -> None:
        """Single predictions on both models and a small batch now and then, until told to stop."""
        routes = [("/predict", EXAMPLE), ("/predict_net", EXAMPLE)] * 5
        routes.append(("/predict_batch", {"model": "sklearn", "samples": [EXAMPLE] * 20}))
        i = index
        while not self.stop.is_set() and self.ok + len(self.failed) < MAX_REQUESTS:
            route, body = routes[i % len(routes)]
            i += 1
            try:
                self.check(route, await http.post(route, json=body))
            except httpx.HTTPError as exc:
                self.failed.append(f"{route}: {exc!r}")


async def wait_for(replicas: Replicas, name: str, status: str, limit: float) -> float:
    """Seconds until HAProxy shows the replica in that status (UP, DOWN); fails after limit."""
    started = time.monotonic()
    while not replicas.server_states()[name]["status"].startswith(status):
        assert time.monotonic() - started < limit, f"{name} not {status} after {limit} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def kill_and_restart(replicas: Replicas, load: Load, victim: str) -> dict[str, float]:
    """Kill the victim under load, see HAProxy take it out, start it again, see it come back and get traffic."""
    await asyncio.sleep(BEFORE_KILL_S)
    answered_before = load.ok
    killed = time.monotonic()
    done = await asyncio.to_thread(replicas.container, "kill", "--signal", "KILL", victim)
    assert done.returncode == 0, done.stderr
    await wait_for(replicas, victim, "DOWN", DOWN_LIMIT_S)
    seconds_to_down = time.monotonic() - killed
    await asyncio.sleep(1.0)
    restarted = time.monotonic()
    done = await asyncio.to_thread(replicas.container, "start", victim)
    assert done.returncode == 0, done.stderr
    await wait_for(replicas, victim, "UP", REJOIN_LIMIT_S)
    seconds_to_up = time.monotonic() - restarted
    answered_while_out = load.ok - answered_before
    sent_before = int(replicas.server_states()[victim]["stot"])
    await asyncio.sleep(AFTER_REJOIN_S)
    load.stop.set()
    return {
        "seconds_from_kill_to_down": seconds_to_down,
        "seconds_from_start_to_up": seconds_to_up,
        "answered_while_out": answered_while_out,
        "sent_to_it_after_rejoin": int(replicas.server_states()[victim]["stot"]) - sent_before,
    }


async def run_load(replicas: Replicas, victim: str) -> tuple[Load, dict[str, float]]:
    load = Load()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=replicas.url, timeout=60, limits=limits) as http:
        clients = [asyncio.create_task(load.client(http, i)) for i in range(CLIENTS)]
        try:
            figures = await asyncio.wait_for(kill_and_restart(replicas, load, victim), RUN_LIMIT_S)
        finally:
            load.stop.set()
            await asyncio.gather(*clients)
    return load, figures


def test_a_killed_replica_loses_no_request_and_rejoins(replicas: Replicas) -> None:
    """SIGKILL one of three replicas under load: zero failed requests; HAProxy marks it DOWN within seconds;
    started again, it is UP and receives requests."""
    victim = next(iter(replicas.ports))
    started = time.monotonic()
    load, figures = asyncio.run(run_load(replicas, victim))
    backend = replicas.server_states()["BACKEND"]
    print(
        f"\n{load.ok} requests answered, {len(load.failed)} failed in {time.monotonic() - started:.0f} s "
        f"({CLIENTS} clients); HAProxy retried {backend['wretr']} and sent {backend['wredis']} to another replica; "
        + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
    )
    assert load.failed == [], f"{len(load.failed)} failed, e.g. {load.failed[:5]}"
    assert load.ok > 100, "too little load to say anything"
    assert figures["seconds_from_kill_to_down"] < DOWN_LIMIT_S
    assert figures["answered_while_out"] > 0, "the other replicas did not answer while one was out"
    assert figures["sent_to_it_after_rejoin"] > 0, "the restarted replica is UP but gets no traffic"
