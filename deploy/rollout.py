"""`make rollout` / `make rollback`: the replicas of `make replicas` moved to another image one at a time, under load.

For each replica not yet on the image: wait until the others are UP in HAProxy, set it to drain (no new requests;
those it holds finish), wait until it holds none, set it to maintenance, stop its container (SIGTERM, the pod's grace
period), start the new image's in its place (same name, port, pod spec and secret), wait for /readyz, set it ready
in HAProxy and wait until HAProxy sees it UP; then check that it answers with the image's model tags. A replacement
that does not become ready is replaced by the previous image again, and the rollout stops there (exit 1).

Meanwhile a few clients (deploy/load.py) send /predict, /predict_net and /classify through HAProxy at a steady rate;
the counts are printed, by route and by the model tag that answered, and any failed request fails the command.
`rollback` is a rollout to the image the replicas ran before the last one (the state file keeps it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from deploy.load import MIXED, Load
from deploy.pod import Pod, render

if TYPE_CHECKING:
    from deploy.replicas import Image, Replicas

UP_LIMIT_S = 30.0
ROUTE_KINDS = {"/predict": "sklearn", "/predict_net": "torch", "/classify": "classifier"}


class RolloutFailed(Exception):
    """A replica could not be moved; it runs its previous image again."""


def log(message: str) -> None:
    print(f"rollout: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def locked(state: Path) -> Iterator[None]:
    """One rollout at a time."""
    with state.with_suffix(".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(f"replicas: another rollout holds {lock.name}")
        yield


def target(replicas: Replicas, command: str, image: str) -> Image:
    """What to move to: image for a rollout, what ran before the last rollout for a rollback (by id, as named then)."""
    if command == "rollout":
        return replicas.image(image)
    if replicas.previous is None:
        sys.exit("replicas: nothing to roll back to: no rollout since `make replicas`")
    found = replicas.image(replicas.previous.id)
    found.name = replicas.previous.name
    return found


def answering_tags(replicas: Replicas, name: str) -> dict[str, str]:
    """The model tag each kind answers with on that replica's own port (one wine each)."""
    tags = {}
    for route, body in MIXED:
        reply = httpx.post(f"http://127.0.0.1:{replicas.ports[name]}{route}", json=body, timeout=30)
        reply.raise_for_status()
        tags[ROUTE_KINDS[route]] = reply.json()["model"]
    return tags


def replace(replicas: Replicas, name: str, target: Image, pod: Pod) -> dict[str, float]:
    """Drain one replica in HAProxy, run target in its place, put it back; the seconds each step took."""
    balancer, grace = replicas.balancer, float(pod.spec.get("terminationGracePeriodSeconds", 30))
    before = replicas.running[name]
    for other in replicas.ports.keys() - {name}:
        balancer.wait(other, "UP", UP_LIMIT_S)
    steps = {}
    balancer.set_state(name, "drain")
    try:
        steps["drained"] = balancer.wait(name, "empty", grace)
    except TimeoutError:  # SIGTERM below still lets the service finish what it holds
        log(f"{name} still holds requests after {grace:.0f} s; stopping it all the same")
    balancer.set_state(name, "maint")
    started = time.monotonic()
    replicas.container("stop", "-t", str(int(grace)), name)
    replicas.container("rm", "-f", "-v", name)
    steps["stopped"] = time.monotonic() - started
    check = pod.probe_path("readinessProbe")
    try:
        replicas.start(name, target, pod)
        steps["ready"] = replicas.wait_ready(name, check)
    except RuntimeError as exc:
        log(f"{name}: {target} did not start; running {before} again")
        replicas.container("rm", "-f", "-v", name)
        replicas.start(name, before, pod)
        replicas.wait_ready(name, check)
        balancer.set_state(name, "ready")
        balancer.wait(name, "UP", UP_LIMIT_S)
        raise RolloutFailed(f"{name} could not run {target}: {exc}") from exc
    balancer.set_state(name, "ready")
    steps["up"] = balancer.wait(name, "UP", UP_LIMIT_S)
    answering = answering_tags(replicas, name)
    if target.models and answering != target.models:
        raise RolloutFailed(f"{name} answers with {answering}, not the image's models {target.models}")
    return steps


async def roll(replicas: Replicas, target: Image, state: Any, clients: int, rate: float) -> dict[str, Any]:
    """Move every replica not on target, one at a time, under load; the summary (what runs, the load's counts)."""
    pod = Pod.of(render(replicas.overlay))
    todo = [name for name, image in replicas.running.items() if image.id != target.id]
    left = next((replicas.running[name] for name in todo), None)
    moved: dict[str, Any] = {}
    error = ""
    async with Load(replicas.url, clients=clients, rate=rate) as load:
        for name in todo:
            try:
                steps = await asyncio.to_thread(replace, replicas, name, target, pod)
            except (RolloutFailed, TimeoutError, RuntimeError) as exc:
                error = str(exc)
                break
            finally:
                replicas.save(state)
            moved[name] = steps
            log(f"{name} runs {target}: " + ", ".join(f"{k} in {v:.1f} s" for k, v in steps.items()))
    if left is not None and not error:
        replicas.previous = left
        replicas.save(state)
    backend = replicas.server_states()["BACKEND"]
    return {
        "image": {"name": target.name, "id": target.id, "models": target.models},
        "error": error,
        "moved": moved,
        "replicas": {name: image.name for name, image in replicas.running.items()},
        "on_target": sum(image.id == target.id for image in replicas.running.values()),
        "load": load.summary() if clients else None,
        "haproxy": {"retries": int(backend["wretr"]), "redispatched": int(backend["wredis"])},
    }


def succeeded(summary: dict[str, Any]) -> bool:
    """Every replica on the image, and no request failed."""
    load = summary["load"]
    everyone = summary["on_target"] == len(summary["replicas"])
    return not summary["error"] and everyone and (load is None or load["failed"] == 0)


def add_commands(sub: Any) -> None:
    """The `rollout` and `rollback` subcommands of deploy/replicas.py."""
    for command, what in (("rollout", "move the replicas to --image"), ("rollback", "back to the previous image")):
        parser: argparse.ArgumentParser = sub.add_parser(command, help=f"{what}, one at a time (make {command})")
        if command == "rollout":
            parser.add_argument("--image", default="wine-quality:latest", help="default: %(default)s")
        parser.add_argument("--clients", type=int, default=4, help="load clients (0: no load; default: %(default)s)")
        parser.add_argument("--rate", type=float, default=100.0, help="requests/s in all (default: %(default)s)")


def report(summary: dict[str, Any]) -> None:
    """The counts, in words on stderr and as JSON on stdout."""
    load = summary["load"]
    if load:
        by_route = ", ".join(f"{route} {n}" for route, n in sorted(load["answered"].items()))
        log(
            f"load: {load['requests']} requests in {load['seconds']:.0f} s from {load['clients']} clients, "
            f"{load['failed']} failed ({by_route})"
        )
        for tagged, n in load["tags"].items():
            log(f"  {tagged}: {n}")
        for failure in load["failures"]:
            log(f"  failed: {failure}")
    log(f"HAProxy retried {summary['haproxy']['retries']}, sent {summary['haproxy']['redispatched']} elsewhere")
    log(
        f"{summary['on_target']} of {len(summary['replicas'])} replicas run {summary['image']['name']}: "
        + ", ".join(f"{kind} {tag}" for kind, tag in summary["image"]["models"].items())
    )
    if summary["error"]:
        log(f"stopped: {summary['error']}")
    print(json.dumps(summary), flush=True)
