"""End to end: `make replicas` on the image built from this checkout: one capture database behind every replica, and
a replica killed mid-load costs no request.

Three containers of the image run with the prod overlay's pod spec (deploy/pod.py: non-root, read-only root
filesystem, emptyDir volumes, no capabilities, the ConfigMap's settings, the memory and CPU limits, the capture
database's URL from a secret) behind HAProxy, sharing one real PostgreSQL (deploy/replicas.py, deploy/database.py).
A wine graded by one replica takes its tasters' grade through another. Then async clients send predictions through
the balancer; one replica is killed with SIGKILL mid-run; every request must still succeed, HAProxy must take the dead
replica out within seconds, and once the container is started again it must come back UP and receive traffic. Load
goes to 127.0.0.1 only, bounded in time and count. Everything started here is removed at the end.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from deploy.balancer import ensure_haproxy
from deploy.database import EXAMPLE_GRADE, feedback_across
from deploy.load import Load
from deploy.pod import Pod, render
from deploy.replicas import Replicas, up
from tests.postgres import PostgresUnavailable, binaries, wait_until
from wine_quality.schema import EXAMPLE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COUNT = 3
CLIENTS = 16
BEFORE_KILL_S = 4.0
AFTER_REJOIN_S = 3.0
DOWN_LIMIT_S = 5.0  # HAProxy checks every second, every 250 ms when in doubt, and reacts to live errors at once
REJOIN_LIMIT_S = 120.0  # a restart on a 2-core machine under load: 14-42 s seen
RUN_LIMIT_S = 150.0
# a time-ordered id of 1970: never made by a replica, and too old to be waited for as one still being written
UNKNOWN_ID = "00000000-0001-7000-8000-000000000000"


@pytest.fixture(scope="module")
def pod() -> Pod:
    return Pod.of(render("prod"))


@pytest.fixture(scope="module")
def replicas(cli: str, image: str) -> Iterator[Replicas]:
    """`make replicas`'s script: PostgreSQL, three replicas of the e2e image and HAProxy; removed at the end."""
    try:
        ensure_haproxy()
        binaries()
    except (SystemExit, subprocess.CalledProcessError, PostgresUnavailable) as exc:
        pytest.skip(f"HAProxy or PostgreSQL cannot be installed on this machine: {exc}")
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


def test_feedback_sent_to_one_replica_joins_a_wine_graded_by_another(replicas: Replicas) -> None:
    """A wine graded through HAProxy by one replica (its X-Served-By header names it) takes its tasters' grade from
    another replica's own port: the grade is stored beside the wine in the one PostgreSQL, and a third replica's
    /metrics counts it for the model that graded the wine. An id that no replica made is a 404 on each."""
    shown = feedback_across(replicas)
    assert shown["graded_by"] != shown["sent_to"] and {shown["graded_by"], shown["sent_to"]} <= set(replicas.ports)
    assert shown["status"] == 200, shown["text"]
    stored = json.loads(shown["text"])["stored"]
    assert [(s["id"], s["quality"], s["new"]) for s in stored] == [(shown["id"], EXAMPLE_GRADE, True)]
    with psycopg.connect(replicas.admin_url) as db:
        row = db.execute(
            "SELECT p.model_tag, p.route, f.grade FROM predictions p JOIN feedback f ON f.id = p.id WHERE p.id = %s",
            (shown["id"],),
        ).fetchone()
    assert row is not None and row[1:] == ("/predict", EXAMPLE_GRADE), row
    third = next(name for name in replicas.ports if name not in (shown["graded_by"], shown["sent_to"]))
    labelled = f'wine_live_labelled{{model="{row[0]}",type="red"}}'

    def counted() -> bool:
        metrics = httpx.get(f"http://127.0.0.1:{replicas.ports[third]}/metrics", timeout=10).text
        return any(line.startswith(labelled) and float(line.split()[-1]) >= 1 for line in metrics.splitlines())

    wait_until(counted, timeout_s=30, every_s=0.5)  # live accuracy is read from the database every few seconds
    for name, port in replicas.ports.items():
        unknown = httpx.post(f"http://127.0.0.1:{port}/feedback", json={"id": UNKNOWN_ID, "quality": 6}, timeout=30)
        assert unknown.status_code == 404 and unknown.json()["unknown"] == [UNKNOWN_ID], (name, unknown.text)


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
    return {
        "seconds_from_kill_to_down": seconds_to_down,
        "seconds_from_start_to_up": seconds_to_up,
        "answered_while_out": answered_while_out,
        "sent_to_it_after_rejoin": int(replicas.server_states()[victim]["stot"]) - sent_before,
    }


async def run_load(replicas: Replicas, victim: str) -> tuple[Load, dict[str, float]]:
    """Single predictions on both models and a small batch now and then, from CLIENTS clients, around the kill."""
    calls = [("/predict", EXAMPLE), ("/predict_net", EXAMPLE)] * 5
    calls.append(("/predict_batch", {"model": "sklearn", "samples": [EXAMPLE] * 20}))
    async with Load(replicas.url, calls=calls, clients=CLIENTS) as load:
        figures = await asyncio.wait_for(kill_and_restart(replicas, load, victim), RUN_LIMIT_S)
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
