"""The capture database of `make replicas`: one PostgreSQL 15 that every replica reaches as wine-quality-postgres.

The server is harness/postgres.py's throw-away cluster (Debian's package, installed with apt-get where missing, run as
the `postgres` user), also listening on the gateway of the containers' bridge network, where only its role `wine`
may log in, with a password made here. Replicas get its URL as the dev overlay's pods do, from a secret:
`postgresql://wine:<password>@wine-quality-postgres:<port>/capture`, the name resolving to that gateway.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.balancer import SERVED_BY  # noqa: E402
from harness.postgres import OWNER, USER, Postgres, binaries  # noqa: E402
from wine_quality.schema import EXAMPLE  # noqa: E402

if TYPE_CHECKING:
    from deploy.replicas import Replicas

HOST = "wine-quality-postgres"  # the dev overlay's Service (deploy/k8s/overlays/dev/postgres.yaml)
ROLE, DATABASE = "wine", "capture"  # as in the dev overlay's Secret
EXAMPLE_GRADE = 5  # the tasters' grade of the schema's example, the red file's first wine


class Network(NamedTuple):
    """The containers' bridge network, as the host sees it."""

    gateway: str
    subnet: str


def bridge(cli: str, env: dict[str, str]) -> Network:
    """The default network of podman (or docker): where a container reaches the host."""
    name, path = ("podman", "Subnets") if cli == "podman" else ("bridge", "IPAM.Config")
    done = subprocess.run(
        [cli, "network", "inspect", name, "--format", "{{json ." + path + "}}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    first = json.loads(done.stdout)[0]
    return Network(first.get("gateway") or first["Gateway"], first.get("subnet") or first["Subnet"])


def assigned(address: str) -> bool:
    """Whether this machine has that address (a bridge appears with the first container on its network)."""
    with socket.socket() as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


class Database(Postgres):
    """tests/postgres.py's server, listening on 127.0.0.1 and on the bridge's gateway, with a capture database."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.password = secrets.token_urlsafe(18)
        super().__init__()  # initdb, start (below), a test database nobody uses
        with psycopg.connect(self.url, autocommit=True) as admin:
            role, name = sql.Identifier(ROLE), sql.Identifier(DATABASE)
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(self.password)))
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(name, role))

    def start(self) -> None:
        """Start the server; containers on the bridge may log in as the role, with its password only."""
        hba = self.data / "pg_hba.conf"
        rule = f"host {DATABASE} {ROLE} {self.network.subnet} scram-sha-256\n"
        if rule not in hba.read_text():
            with hba.open("a") as f:
                f.write(rule)
        listen = f"127.0.0.1,{self.network.gateway}"
        options = f"-p {self.port} -k {self.folder} -c listen_addresses={listen} -c fsync=off"
        logfile = str(self.folder / "log")
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", logfile, "-o", options)

    @property
    def replica_url(self) -> str:
        """The URL replicas connect with (the secret they get)."""
        return f"postgresql://{ROLE}:{self.password}@{HOST}:{self.port}/{DATABASE}"

    @property
    def admin_url(self) -> str:
        """The capture database as the server's superuser, from this machine (no password: 127.0.0.1 is trusted)."""
        return self.url.rsplit("/", 1)[0] + f"/{DATABASE}"

    def owned_by(self, pid: int) -> None:
        """Tie the server's life to that process: another Postgres() removes it as an orphan once it is gone."""
        (self.folder / OWNER).write_text(str(pid))


def remove(folder: str) -> None:
    """Stop the server of that folder (what `down` finds in the state file) and delete it."""
    data = Path(folder) / "data"
    if (data / "postmaster.pid").exists():
        command = [str(binaries() / "pg_ctl"), "stop", "-w", "-t", "60", "-m", "immediate", "-D", str(data)]
        as_postgres = ["runuser", "-u", USER, "--"] if Path(folder).owner() == USER else []
        subprocess.run([*as_postgres, *command], capture_output=True, check=False, timeout=90)
    shutil.rmtree(folder, ignore_errors=True)


def feedback_across(replicas: Replicas) -> dict[str, Any]:
    """Grade the example wine through HAProxy, then send its tasters' grade to another replica's own port: what each
    said. The second replica finds the wine in the shared database (its answer: stored, new)."""
    graded = httpx.post(f"{replicas.url}/predict", json=EXAMPLE, timeout=30)
    graded.raise_for_status()
    grader = graded.headers[SERVED_BY]
    other = next(name for name in replicas.ports if name != grader)
    body = {"id": graded.json()["id"], "quality": EXAMPLE_GRADE}
    answer = httpx.post(f"http://127.0.0.1:{replicas.ports[other]}/feedback", json=body, timeout=30)
    return {"id": body["id"], "graded_by": grader, "sent_to": other, "status": answer.status_code, "text": answer.text}
