"""A throw-away PostgreSQL server: Debian's package (installed with apt-get where missing), a temporary cluster on a
free port of 127.0.0.1, stopped and removed at the end. The capture tests use it through tests/postgres.py's fixture,
`make replicas` through deploy/database.py.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.ports import free_port

PACKAGES = ("postgresql",)
USER = "postgres"  # initdb refuses root: as root, the server runs as the user Debian's package creates
DATABASE = "capture_test"
PREFIX, OWNER = "wine-postgres-", "owner"  # the temporary folder, and the file in it naming the test process


class PostgresUnavailable(Exception):
    """No PostgreSQL here, and it cannot be installed (not root, no apt-get, or apt-get failed)."""


def binaries() -> Path:
    """The folder of initdb and pg_ctl, installing Debian's postgresql with apt-get when there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    if not shutil.which("apt-get"):
        raise PostgresUnavailable("no PostgreSQL server (initdb) and no apt-get to install it")
    if os.geteuid() != 0:
        raise PostgresUnavailable(f"no PostgreSQL server, and installing it needs root: apt-get install {PACKAGES[0]}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"env": env, "capture_output": True, "text": True, "timeout": 900}
    subprocess.run(["apt-get", "update", "-q"], **quiet)  # type: ignore[call-overload]
    done = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES], **quiet)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise PostgresUnavailable(f"apt-get install {' '.join(PACKAGES)} failed: {done.stderr.strip()[-500:]}")
    return binaries()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Postgres:
    """One temporary PostgreSQL cluster with one database, trusted connections from 127.0.0.1 only."""

    def __init__(self) -> None:
        self.bin = binaries()
        self._remove_orphans()
        self.folder = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.folder / OWNER).write_text(str(os.getpid()))
        self.data, self.port = self.folder / "data", free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.folder, USER)
        self.user = USER if self.as_root else os.environ.get("USER", "postgres")
        self.url = f"postgresql://{self.user}@127.0.0.1:{self.port}/{DATABASE}"
        self._run("initdb", "-A", "trust", "-U", self.user, "-E", "UTF8", "--no-sync", "-D", str(self.data))
        self.start()
        self.database(DATABASE)

    def database(self, name: str) -> str:
        """A new, empty database on this server: its URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.as_root:
            command = ["runuser", "-u", USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")

    def start(self) -> None:
        """Start the server (again) on the same port and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.folder / "log"), "-o", options
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: open connections are cut, as in an outage."""
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data))

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def _remove_orphans(self) -> None:
        """Servers of test runs that were killed before their clean-up (a timeout's SIGTERM, SIGKILL): removed."""
        for owner in Path(tempfile.gettempdir()).glob(f"{PREFIX}*/{OWNER}"):
            if owner.read_text().strip().isdigit() and not _alive(int(owner.read_text())):
                orphan = object.__new__(Postgres)
                orphan.bin, orphan.folder, orphan.data = self.bin, owner.parent, owner.parent / "data"
                orphan.as_root = os.geteuid() == 0
                orphan.remove()

    def remove(self) -> None:
        """Stop the server if it runs and delete its folder."""
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
