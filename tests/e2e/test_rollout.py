"""End to end: `make rollout` and `make rollback` on the replicas of `make replicas`, under load, lose no request.

Two replicas of the e2e image run behind HAProxy with their PostgreSQL (deploy/replicas.py, the dev overlay's pod
spec). The commands run as make runs them (deploy/replicas.py rollout|rollback, here with a state file of the test's
own) while their own clients send /predict, /predict_net and /classify through HAProxy: each replica is drained,
replaced and put back in turn. The new image carries new pins: a scikit-learn model trained here (another seed, not
pinned in the session's store) is added to the e2e image as a layer of its own, with the bento's pin file naming it
and the image's label saying so; built in seconds, where a second bento would cost a second image build of minutes.
An image that cannot serve is refused on the first replica, which runs the previous image again. Everything started
here is removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.balancer import ensure_haproxy
from deploy.replicas import Replicas, up
from deploy.rollout import answering_tags
from tests.e2e.conftest import ROOT, run
from tests.postgres import PostgresUnavailable, binaries
from wine_quality.settings import PIN_FILE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COUNT = 2
CLIENTS, RATE = 4, 60
LIMIT_S = 420  # one command: each replica stopped and started again under load (15-70 s each seen on 2 busy cores)
ROUTES = {"/predict", "/predict_net", "/classify"}


# a scikit-learn model other than the pinned one, cheap to train: another seed, fewer cross-validation fits
CHALLENGER = ("-m", "train.sklearn_model", "--no-pin", "--seed", "7", "--cv-folds", "2", "--cv-repeats", "1")
MODELS = "/home/bentoml/bento/models"  # the bento inside the image (bentoml containerize)
BROKEN = "ENV WINE_SKLEARN_MODEL=wine_quality_sklearn:notinthisimage"


def new_pins_layer(image: str, folder: Path) -> str:
    """A Containerfile that adds a newly trained scikit-learn model to the image and pins it, as a new bento would."""
    import bentoml

    tag = json.loads(run(sys.executable, *CHALLENGER).stdout)["tag"]
    model = bentoml.models.get(tag)
    shutil.copytree(model.path, folder / model.tag.version)
    pins = {**json.loads(Path(os.environ["WINE_MODEL_PINS"]).read_text()), "sklearn": tag}
    (folder / PIN_FILE).write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    return "\n".join(
        [
            f"FROM {image}",
            f"COPY --chown=bentoml:bentoml {model.tag.version} {MODELS}/{model.tag.name}/{model.tag.version}",
            f"COPY --chown=bentoml:bentoml {PIN_FILE} /home/bentoml/bento/src/{PIN_FILE}",
            f"LABEL ai.bentoml.label.sklearn_model={tag.replace(':', '.')}",
        ]
    )


@pytest.fixture(scope="module")
def images(
    cli: str, cli_env: dict[str, str], image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The e2e image (first), the same with a new scikit-learn model pinned (next), and one that stops at start-up,
    its pinned model not in it (broken): built FROM the e2e image in seconds, removed at the end."""
    repository, version = image.split(":")
    made = {}
    for role in ("next", "broken"):
        folder = tmp_path_factory.mktemp(role)
        lines = new_pins_layer(image, folder) if role == "next" else f"FROM {image}\n{BROKEN}"
        (folder / "Containerfile").write_text(lines + "\n")
        made[role] = f"{repository}-{role}:{version}"
        run(cli, "build", "--tag", made[role], "--file", str(folder / "Containerfile"), str(folder), env=cli_env)
    yield {"first": image, **made}
    for name in made.values():
        subprocess.run([cli, "rmi", "-f", name], env=cli_env, capture_output=True)


@pytest.fixture(scope="module")
def state(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`make replicas REPLICAS_ARGS=--detach`'s script: two replicas of the first image, kept in a state file."""
    try:
        ensure_haproxy()
        binaries()
    except (SystemExit, subprocess.CalledProcessError, PostgresUnavailable) as exc:
        pytest.skip(f"HAProxy or PostgreSQL cannot be installed on this machine: {exc}")
    path = tmp_path_factory.mktemp("replicas") / "state.json"
    started = time.monotonic()
    up(images["first"], COUNT).save(path)
    print(f"\n{COUNT} replicas, PostgreSQL and HAProxy ready in {time.monotonic() - started:.1f} s")
    yield path
    Replicas.load(path).down()


def replicas_command(state: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """deploy/replicas.py as `make rollout` / `make rollback` run it: its exit status and printed summary."""
    started = time.monotonic()
    command = [sys.executable, "deploy/replicas.py", "--state", str(state), *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=LIMIT_S)
    print(f"\n{' '.join(args[:1])} in {time.monotonic() - started:.0f} s:\n{done.stderr[-3000:]}")
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def images_running(state: Path) -> dict[str, str]:
    """What podman (or docker) says each replica's container runs: the image ids."""
    replicas = Replicas.load(state)
    inspect = [replicas.container("inspect", "--format", "{{.Image}}", name) for name in replicas.ports]
    return {name: done.stdout.strip() for name, done in zip(replicas.ports, inspect, strict=True)}


@pytest.mark.parametrize(("command", "target"), [("rollout", "next"), ("rollback", "first")])
def test_every_replica_moves_without_a_failed_request(
    state: Path, images: dict[str, str], command: str, target: str
) -> None:
    """`rollout --image next`, then `rollback`: every replica drained and replaced in turn while clients send
    requests through HAProxy; none fails, every route is answered throughout, and at the end each container runs
    the target image and answers with its model tags: the next image's scikit-learn model after the rollout, the
    first's again after the rollback; the load saw both answer /predict on the way."""
    args = [command, "--clients", str(CLIENTS), "--rate", str(RATE)]
    status, summary = replicas_command(state, *(args + ["--image", images[target]] if command == "rollout" else args))
    load = summary["load"]
    assert status == 0 and not summary["error"], summary
    assert load["failed"] == 0, load["failures"]
    assert set(load["answered"]) == ROUTES and load["requests"] > 100, load
    wanted = Replicas.load(state).image(images[target]).id
    assert summary["image"]["id"] == wanted and set(summary["moved"]) == set(Replicas.load(state).ports)
    assert set(images_running(state).values()) == {wanted}
    replicas = Replicas.load(state)
    assert {r.id for r in replicas.running.values()} == {wanted}
    models = {role: replicas.image(images[role]).models for role in ("first", "next")}
    assert models["first"]["sklearn"] != models["next"]["sklearn"], models
    assert {kind: tag for kind, tag in models["first"].items() if kind != "sklearn"} == {
        kind: tag for kind, tag in models["next"].items() if kind != "sklearn"
    }
    for name in replicas.ports:
        assert answering_tags(replicas, name) == models[target], name
    assert {f"/predict {models[role]['sklearn']}" for role in models} <= set(load["tags"]), load["tags"]


def test_an_image_that_cannot_serve_is_refused(state: Path, images: dict[str, str]) -> None:
    """A rollout to an image whose service stops at start-up fails (exit 1) on the first replica, which runs the
    previous image again and is back in HAProxy; the other replica is not touched, and no request failed."""
    before = images_running(state)
    status, summary = replicas_command(state, "rollout", "--image", images["broken"], "--clients", str(CLIENTS))
    assert status == 1 and "cannot serve: sklearn model" in summary["error"], summary
    assert summary["moved"] == {} and summary["load"]["failed"] == 0, summary["load"]["failures"]
    assert images_running(state) == before
    replicas = Replicas.load(state)
    assert all(row["status"] == "UP" for row in replicas.server_states().values())
