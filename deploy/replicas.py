"""`make replicas`: the Deployment's pod run two or three times (1-5) here with podman, behind HAProxy, sharing one
PostgreSQL for payload capture; `make rollout` / `make rollback` move them to another image one at a time.

    .venv/bin/python deploy/replicas.py up [--image wine-quality:latest] [--replicas 3] [--overlay dev] [--detach]
    .venv/bin/python deploy/replicas.py rollout [--image wine-quality:latest] [--clients 4] [--rate 100]
    .venv/bin/python deploy/replicas.py rollback [--clients 4] [--rate 100]
    .venv/bin/python deploy/replicas.py down

Each replica is a container of the image on its own loopback port, run with the pod spec of deploy/k8s (user,
read-only root filesystem, emptyDir volumes, capabilities, ConfigMap settings, limits: deploy/pod.py). The models are
in the image; the capture database is shared: a PostgreSQL 15 (deploy/database.py) whose URL each replica reads from a
podman secret, as the pod reads it from the Secret wine-quality-capture. HAProxy (installed with apt-get when missing)
checks each one's readiness probe path, retries a request that a replica failed on another replica, and names the
replica that answered in the X-Served-By header. `up` shows a wine graded by one replica taking its taster's grade
through another, prints the balancer's URL and keeps what runs in build/replicas/state.json (--state), which
`rollout`, `rollback` and `down` read; in the foreground it removes everything on Ctrl-C, with --detach it leaves them
running until `down`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy import database, rollout  # noqa: E402
from deploy.balancer import Balancer, ensure_haproxy, haproxy_config  # noqa: E402
from deploy.image import IMAGE_NAME, backend, ensure_podman, podman_env  # noqa: E402
from deploy.pod import ROOT, Pod, render  # noqa: E402
from harness.ports import free_port  # noqa: E402

STATE = ROOT / "build" / "replicas" / "state.json"
READY_LIMIT_S = 120.0  # three replicas starting at once on a busy 2-core machine: up to ~40 s seen
CAPTURE_VAR = "WINE_CAPTURE_URL"


def log(message: str) -> None:
    print(f"replicas: {message}", file=sys.stderr, flush=True)


@dataclass
class Image:
    """An image as the replicas run it: the name it was asked by, its id, and the model tags its bento pins."""

    name: str
    id: str
    models: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.name} ({self.id[:12]})"


@dataclass
class Replicas:
    """What runs, for `rollout` and `down`: saved to the state file while it runs."""

    cli: str
    workdir: str
    overlay: str = "dev"
    url: str = ""
    stats_url: str = ""
    socket: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    running: dict[str, Image] = field(default_factory=dict)  # what each replica runs
    previous: Image | None = None  # what they ran before the last rollout: what `rollback` returns to
    haproxy_pid: int = 0
    database: str = ""  # the PostgreSQL's folder
    admin_url: str = ""  # its capture database, as superuser from 127.0.0.1
    secret: str = ""  # the podman secret holding the replicas' database URL
    hosts: dict[str, str] = field(default_factory=dict)  # names the containers resolve (the database's)

    @classmethod
    def load(cls, path: Path) -> Replicas:
        data = json.loads(path.read_text())
        previous = data.pop("previous")
        running = {name: Image(**image) for name, image in data.pop("running").items()}
        return cls(**data, running=running, previous=Image(**previous) if previous else None)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tmp").write_text(json.dumps(asdict(self), indent=2) + "\n")
        path.with_suffix(".tmp").replace(path)

    @property
    def balancer(self) -> Balancer:
        return Balancer(self.socket)

    def server_states(self) -> dict[str, dict[str, str]]:
        """HAProxy's view of each replica, and of all of them as BACKEND (deploy/balancer.py)."""
        return self.balancer.states()

    def container(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the container CLI (podman or docker) as deploy/image.py does."""
        env = podman_env() if self.cli == "podman" else dict(os.environ)
        return subprocess.run([self.cli, *args], env=env, input=stdin, capture_output=True, text=True, check=False)

    def image(self, name: str) -> Image:
        """The image of that name (or id) here, with the model tags of its bento's labels (deploy/image.py)."""
        done = self.container("image", "inspect", "--format", "{{json .}}", name)
        if done.returncode != 0:
            raise LookupError(f"no image {name} here: `make image` builds {IMAGE_NAME}:latest, IMAGE=... names another")
        found = json.loads(done.stdout)
        found = found[0] if isinstance(found, list) else found
        labels = found.get("Config", {}).get("Labels") or found.get("Labels") or {}
        models = {
            key.removeprefix("ai.bentoml.label.").removesuffix("_model"): ":".join(value.rsplit(".", 1))
            for key, value in sorted(labels.items())
            if key.startswith("ai.bentoml.label.") and key.endswith("_model")
        }
        return Image(name, found["Id"], models)

    def secret_flags(self) -> dict[str, list[str]]:
        """How a container gets the database URL: a podman secret, or (docker) a file of this folder; none without a
        database (the pod's capture then writes SQLite into its emptyDir, as a pod does without the Secret)."""
        if not self.secret:
            return {}
        if self.cli == "podman":
            return {CAPTURE_VAR: [f"--secret={self.secret},type=env,target={CAPTURE_VAR}"]}
        return {CAPTURE_VAR: [f"--env-file={self.secret}"]}

    def start(self, name: str, image: Image, pod: Pod, limits: bool = True) -> None:
        """Run the image as the pod's container, on the replica's loopback port (a free one for a new replica)."""
        port = self.ports.setdefault(name, free_port())
        hosts = [f"--add-host={host}:{address}" for host, address in self.hosts.items()]
        flags = [*pod.podman_flags(limits, self.secret_flags()), *hosts]
        publish = f"127.0.0.1:{port}:{pod.port}"
        done = self.container("run", "-d", "--name", name, "-p", publish, *flags, image.id)
        if done.returncode != 0:
            raise RuntimeError(f"{self.cli} run {image} failed: {done.stderr.strip()}")
        self.running[name] = image

    def wait_ready(self, name: str, path: str = "/readyz", limit: float = READY_LIMIT_S) -> float:
        """Seconds until the replica answers 200 on path; raises with its log if it stops or takes too long."""
        started = time.monotonic()
        while time.monotonic() - started < limit:
            try:
                if httpx.get(f"http://127.0.0.1:{self.ports[name]}{path}", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            state = self.container("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
            if state not in ("created", "running", "configured"):
                break
            time.sleep(0.2)
        raise RuntimeError(f"replica {name} not ready on {path}:\n{self.last_words(name)}")

    def last_words(self, name: str, limit: float = 5.0) -> str:
        """The end of the container's log (conmon writes the last lines a moment after the process exits)."""
        deadline = time.monotonic() + limit
        while True:
            logs = self.container("logs", "--tail", "40", name)
            if logs.stdout + logs.stderr or time.monotonic() > deadline:
                return logs.stdout + logs.stderr
            time.sleep(0.2)

    def make_secret(self, url: str) -> None:
        """The database URL where only the containers read it: a podman secret (docker: a file only root reads)."""
        if self.cli == "podman":
            self.secret = f"wine-capture-{Path(self.workdir).name}"
            done = self.container("secret", "create", self.secret, "-", stdin=url)
            if done.returncode != 0:
                raise RuntimeError(f"podman secret create failed: {done.stderr.strip()}")
        else:
            self.secret = str(Path(self.workdir) / "capture.env")
            Path(self.secret).touch(mode=0o600)
            Path(self.secret).write_text(f"{CAPTURE_VAR}={url}\n")

    def down(self) -> None:
        """Stop HAProxy and PostgreSQL and remove the containers, the secret and the generated files."""
        if self.haproxy_pid:
            try:
                cmdline = Path(f"/proc/{self.haproxy_pid}/cmdline").read_bytes()
                if self.workdir.encode() in cmdline:  # still our haproxy, not a recycled pid
                    os.kill(self.haproxy_pid, signal.SIGTERM)
            except (FileNotFoundError, ProcessLookupError):
                pass
        for name in self.ports:
            self.container("rm", "-f", "-v", "-t", "0", name)
        if self.secret and self.cli == "podman":
            self.container("secret", "rm", self.secret)
        if self.database:
            database.remove(self.database)
        shutil.rmtree(self.workdir, ignore_errors=True)


def up(image: str, count: int, overlay: str = "dev") -> Replicas:
    """Start PostgreSQL, count replicas of image and HAProxy in front; every replica ready and UP on return."""
    cli = backend()
    if cli == "podman":
        ensure_podman()
    haproxy = ensure_haproxy()
    pod = Pod.of(render(overlay))
    check = pod.probe_path("readinessProbe")
    workdir = Path(tempfile.mkdtemp(prefix="wine-replicas-"))
    port, stats_port = free_port(), free_port()
    sock = str(workdir / "admin.sock")
    replicas = Replicas(cli, str(workdir), overlay, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stats_port}/", sock)
    try:
        chosen = replicas.image(image)
        started = time.monotonic()
        network = database.bridge(cli, podman_env() if cli == "podman" else dict(os.environ))
        if not database.assigned(network.gateway):  # no container yet since boot: one that does nothing makes it
            replicas.container("run", "--rm", "--entrypoint", "true", chosen.id)
        db = database.Database(network)
        replicas.database, replicas.admin_url = str(db.folder), db.admin_url
        replicas.hosts = {database.HOST: network.gateway}
        replicas.make_secret(db.replica_url)
        log(f"PostgreSQL ready in {time.monotonic() - started:.1f} s on {network.gateway}:{db.port} ({database.HOST})")
        token = uuid.uuid4().hex[:6]
        for i in range(count):
            replicas.start(f"wine-replica-{token}-{i + 1}", chosen, pod)
        for name, host_port in replicas.ports.items():
            log(f"{name} ready in {replicas.wait_ready(name, check):.1f} s on 127.0.0.1:{host_port}")
        config = workdir / "haproxy.cfg"
        config.write_text(haproxy_config(replicas.ports, port, stats_port, sock, check))
        process = subprocess.Popen(
            [haproxy, "-db", "-f", str(config)],
            stdout=(workdir / "haproxy.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this process with --detach; Ctrl-C reaches only this one
        )
        replicas.haproxy_pid = process.pid
        db.owned_by(process.pid)  # the database lives as long as the balancer, whichever process started them
        wait_up(replicas, process)
    except BaseException:
        replicas.down()
        raise
    return replicas


def wait_up(replicas: Replicas, process: subprocess.Popen[bytes], limit: float = 15.0) -> None:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if process.poll() is not None:
            raise RuntimeError(f"haproxy exited with {process.returncode}: check {replicas.workdir}/haproxy.cfg")
        try:
            if all(s["status"] == "UP" for s in replicas.server_states().values()):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"HAProxy does not see every replica UP after {limit} s")


def move(state: Path, command: str, image: str, clients: int, rate: float) -> int:
    """`rollout` to image, or `rollback` to what ran before; the exit status (1: a failed request, a replica left)."""
    if not state.exists():
        sys.exit("replicas: none running: `make replicas` (in another terminal, or with REPLICAS_ARGS=--detach)")
    with rollout.locked(state):
        replicas = Replicas.load(state)
        try:
            target = rollout.target(replicas, command, image)
        except LookupError as exc:
            sys.exit(f"replicas: {exc}")
        log(f"{command} to {target}, one replica at a time, under {clients} clients at {rate:g} requests/s")
        summary = asyncio.run(rollout.roll(replicas, target, state, clients, rate))
    rollout.report(summary)
    return 0 if rollout.succeeded(summary) else 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="deploy/replicas.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, default=STATE, help="where what runs is kept (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("up", help="start PostgreSQL, the replicas and HAProxy (make replicas)")
    start.add_argument("--image", default=f"{IMAGE_NAME}:latest")
    start.add_argument("--replicas", type=int, default=3, choices=range(1, 6))
    start.add_argument("--overlay", default="dev", help="deploy/k8s overlay whose pod spec the replicas use")
    start.add_argument("--detach", action="store_true", help="leave them running; `down` removes them")
    rollout.add_commands(sub)
    sub.add_parser("down", help="remove what `up --detach` left running (make replicas-down)")
    args = parser.parse_args(argv)
    if args.command in ("rollout", "rollback"):
        sys.exit(move(args.state, args.command, getattr(args, "image", ""), args.clients, args.rate))
    if args.command == "down":
        if not args.state.exists():
            log("nothing to remove")
            return
        Replicas.load(args.state).down()
        args.state.unlink()
        log("removed")
        return
    if args.state.exists():
        sys.exit(f"replicas: already running ({args.state}); `make replicas-down` first")
    try:
        replicas = up(args.image, args.replicas, args.overlay)
    except LookupError as exc:
        sys.exit(f"replicas: {exc}")
    replicas.save(args.state)
    if args.replicas > 1:
        shown = database.feedback_across(replicas)
        log(
            f"shared capture: wine {shown['id']} graded by {shown['graded_by']} (through HAProxy); its tasters' grade "
            f"sent to {shown['sent_to']}: {shown['status']} {shown['text']}"
        )
    log(f"HAProxy statistics: {replicas.stats_url}")
    print(replicas.url, flush=True)
    if args.detach:
        log("running; `make rollout IMAGE=...` moves them to another image, `make replicas-down` removes them")
        return
    log("Ctrl-C removes them; `make rollout IMAGE=...` (another terminal) moves them to another image")
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for stop in stops:  # set here: a shell starts a background job with SIGINT ignored
        signal.signal(stop, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except SystemExit:
        pass
    finally:
        for stop in stops:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(stop, signal.SIG_IGN)
        (Replicas.load(args.state) if args.state.exists() else replicas).down()
        args.state.unlink(missing_ok=True)
        log("removed")


if __name__ == "__main__":
    main()
