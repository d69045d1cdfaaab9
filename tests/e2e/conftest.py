"""What the end-to-end tests share: one bento and one OCI image per session, built by `make bento` / `make image`'s
scripts from the session's temporary model store, and removed at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import image as deploy_image

ROOT = Path(__file__).resolve().parents[2]
BENTOML = str(Path(sys.executable).with_name("bentoml"))


def run(*cmd: str, env: dict[str, str] | None = None, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """Run a command from the project root; fail with its output's tail when it fails."""
    done = subprocess.run(
        list(cmd), cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        output = f"{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{output}")
    return done


@pytest.fixture(scope="session")
def bento_tag(trained: dict[str, dict[str, object]]) -> Iterator[str]:
    """`make bento`'s script on the session's store; the bento is deleted at the end."""
    started = time.monotonic()
    tag = run(sys.executable, "deploy/bento.py").stdout.strip().splitlines()[-1]
    print(f"\nbento {tag} built in {time.monotonic() - started:.1f} s")
    yield tag
    subprocess.run([BENTOML, "delete", "-y", tag], capture_output=True)


@pytest.fixture(scope="session")
def cli() -> str:
    """The container CLI deploy/image.py builds with; podman is installed if neither it nor a Docker engine is here."""
    backend = deploy_image.backend()
    if backend == "podman" and not os.environ.get("WINE_CONTAINER_BACKEND"):
        try:
            deploy_image.ensure_podman()
        except (SystemExit, subprocess.CalledProcessError) as exc:
            pytest.skip(f"no Docker engine, and podman cannot be installed on this machine: {exc}")
    return backend


@pytest.fixture(scope="session")
def cli_env(cli: str) -> dict[str, str]:
    return deploy_image.podman_env() if cli == "podman" else dict(os.environ)


@pytest.fixture(scope="session")
def image(cli: str, cli_env: dict[str, str], bento_tag: str) -> Iterator[str]:
    """`make image`'s script on that bento, under a tag of its own; the image is removed at the end."""
    name = f"wine-quality-e2e:{bento_tag.split(':')[1]}"
    started = time.monotonic()
    run(sys.executable, "deploy/image.py", "build", "--bento", bento_tag, "--tag", name)
    print(f"\nimage {name} built in {time.monotonic() - started:.0f} s")
    yield name
    subprocess.run([cli, "rmi", "-f", name], env=cli_env, capture_output=True)
