"""`make image` / `make image-save`: an OCI image of the bento with `bentoml containerize`, and its tarball.

    .venv/bin/python deploy/image.py build [--bento wine-quality:latest] [--tag NAME:TAG]
    .venv/bin/python deploy/image.py save [--image wine-quality:latest] [--output build/wine-quality-image.tar]

The Dockerfile is always the one BentoML generates into the bento. Where a Docker engine answers (`docker info`),
this is plain `bentoml containerize` with the docker backend. Where none does (machines with podman/buildah from
Debian and no registry), the same command first prepares what the podman backend needs:
  - podman, buildah and friends, installed with apt-get when missing (as root);
  - CONTAINERS_CONF=deploy/containers.conf (ulimits, runc, cgroupfs, the host's CA bundle for pip/uv in RUN steps),
    unless CONTAINERS_CONF is already set;
  - the base image the Dockerfile names: pulled if a registry answers, else made locally by deploy/base_image.sh;
then runs `bentoml containerize --backend podman --opt network=host --opt squash`. Squashing the build's layers
into one lets deploy/slim_image.sh (the bento's setup script) actually reclaim space, and stores the wheel once.
WINE_CONTAINER_BACKEND=docker|podman forces a backend.

Prints the image name on stdout (the last line), progress on stderr.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BENTOML = str(Path(sys.executable).with_name("bentoml"))
IMAGE_NAME = "wine-quality"
DEFAULT_SAVE = ROOT / "build" / "wine-quality-image.tar"
PODMAN_PACKAGES = [
    *("podman", "buildah", "skopeo", "runc", "fuse-overlayfs", "slirp4netns", "uidmap", "debootstrap"),
    *("containernetworking-plugins", "golang-github-containers-common", "conmon", "catatonit", "iptables"),
]


def log(message: str) -> None:
    print(f"image: {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("check", True)
    return subprocess.run(cmd, text=True, **kwargs)


def docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return run(["docker", "info"], capture_output=True, check=False, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def backend() -> str:
    forced = os.environ.get("WINE_CONTAINER_BACKEND")
    if forced:
        if forced not in ("docker", "podman"):
            sys.exit(f"image: WINE_CONTAINER_BACKEND must be docker or podman, not {forced!r}")
        return forced
    return "docker" if docker_engine() else "podman"


def podman_env() -> dict[str, str]:
    """The environment podman runs with on this path: the project's containers.conf unless one is set."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(DEPLOY / "containers.conf"))
    return env


def ensure_podman() -> None:
    """podman & co from the distribution when missing (apt-get, as root)."""
    if shutil.which("podman") and shutil.which("debootstrap"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(
            "image: no Docker engine and no podman here; install podman (and debootstrap to make a base image "
            "without a registry), e.g. `apt-get install " + " ".join(PODMAN_PACKAGES) + "`"
        )
    started = time.monotonic()
    log("installing podman, buildah and debootstrap with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"env": env, "stdout": subprocess.DEVNULL}
    run(["apt-get", "update", "-q"], **quiet)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *PODMAN_PACKAGES], **quiet)
    log(f"installed in {time.monotonic() - started:.0f} s")


def bento_info(tag: str) -> tuple[str, Path, dict[str, str]]:
    """The bento's full tag, folder (BENTOML_HOME's store) and labels."""
    import bentoml

    bento = bentoml.get(tag)
    return str(bento.tag), Path(bento.path), dict(bento.info.labels)


def base_image_of(bento_path: Path) -> str:
    """The FROM of the bento's generated Dockerfile, as podman names it (docker.io/library/... for short names)."""
    dockerfile = (bento_path / "env/docker/Dockerfile").read_text()
    found = re.search(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    if not found:
        sys.exit("image: no FROM in the bento's Dockerfile")
    name = found.group(1)
    first = name.split("/")[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def ensure_base_image(name: str, env: dict[str, str]) -> None:
    """The base image in podman's storage: already there, pulled, or made by deploy/base_image.sh."""
    if run(["podman", "image", "exists", name], env=env, check=False).returncode == 0:
        return
    started = time.monotonic()
    try:
        pulled = run(["podman", "pull", "-q", name], env=env, check=False, capture_output=True, timeout=60)
        if pulled.returncode == 0:
            log(f"pulled {name} in {time.monotonic() - started:.0f} s")
            return
        reason = (pulled.stderr.strip().splitlines() or ["?"])[-1]
    except subprocess.TimeoutExpired:
        reason = "no answer in 60 s"
    log(f"cannot pull {name} ({reason}); making a local stand-in with debootstrap")
    run(["bash", str(DEPLOY / "base_image.sh"), name], env=env)
    log(f"made {name} in {time.monotonic() - started:.0f} s")


def build(bento: str, tag: str | None) -> str:
    full_tag, bento_path, bento_labels = bento_info(bento)
    name, version = full_tag.split(":", 1)  # the image is named as its bento: wine-quality or wine-quality-native
    tags = [tag] if tag else [f"{name}:{version}", f"{name}:latest"]
    which = backend()
    started = time.monotonic()
    cmd = [BENTOML, "containerize", full_tag, "--backend", which]
    for t in tags:
        cmd += ["--image-tag", t]
    # the bento's labels (project, model tags, git commit) and its tag, readable with `docker inspect`
    labels = {
        "org.opencontainers.image.title": name,
        "org.opencontainers.image.version": version,
        "ai.bentoml.bento": full_tag,
        **{f"ai.bentoml.label.{k}": v for k, v in bento_labels.items()},
    }
    for key, value in labels.items():
        cmd += ["--opt", f"label={key}={value}"]
    if which == "docker":
        env = dict(os.environ)
    else:
        ensure_podman()
        env = podman_env()
        ensure_base_image(base_image_of(bento_path), env)
        cmd += ["--opt", "network=host", "--opt", "squash"]
    # bentoml containerize logs a failed build and still exits 0: the builder's image-id file says it worked
    iidfile = Path(tempfile.mkstemp(prefix="wine-image-", suffix=".iid")[1])
    cmd += ["--opt", f"iidfile={iidfile}"]
    log(" ".join(cmd[1:]))
    try:
        done = run(cmd, env=env, check=False)
        made = iidfile.read_text().strip()
    finally:
        iidfile.unlink(missing_ok=True)
    if done.returncode != 0 or not made:
        hint = (
            " (a failed podman build can leave working containers: `buildah containers`)" if which == "podman" else ""
        )
        sys.exit(f"image: bentoml containerize did not produce {tags[0]}{hint}")
    size = run([which, "image", "inspect", "--format", "{{.Size}}", tags[0]], env=env, capture_output=True).stdout
    log(f"built {', '.join(tags)} ({int(size) / 1e9:.2f} GB) in {time.monotonic() - started:.0f} s")
    print(tags[0])
    return tags[0]


def save(image: str, output: Path) -> Path:
    which = backend()
    env = dict(os.environ) if which == "docker" else podman_env()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".partial")
    tmp.unlink(missing_ok=True)
    cmd = [which, "save", "-o", str(tmp), image]
    if which == "podman":
        cmd[2:2] = ["--format", "docker-archive"]
    run(cmd, env=env)
    tmp.replace(output)
    log(f"saved {image} to {output} ({output.stat().st_size / 1e9:.2f} GB): `docker load -i` or `podman load -i` it")
    print(output)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="deploy/image.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="containerize a bento (make image)")
    b.add_argument("--bento", default=f"{IMAGE_NAME}:latest", help="bento tag (default: the newest wine-quality)")
    b.add_argument("--tag", help=f"image name:tag (default: {IMAGE_NAME}:<bento version> and {IMAGE_NAME}:latest)")
    s = sub.add_parser("save", help="write a docker-archive tarball (make image-save)")
    s.add_argument("--image", default=f"{IMAGE_NAME}:latest")
    s.add_argument("--output", type=Path, default=DEFAULT_SAVE)
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.bento, args.tag)
    else:
        save(args.image, args.output)


if __name__ == "__main__":
    main()
