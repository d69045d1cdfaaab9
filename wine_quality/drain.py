"""Graceful drain: on SIGTERM a model service keeps answering until the entry service has finished its requests.

BentoML's supervisor stops every worker at once. Without this, the model services exit while the entry is still
answering the requests it had accepted, and those fail. A model service therefore holds the SIGTERM it gets until no
entry worker is left (they exit once their own in-flight requests are answered), or until `max_wait` seconds have
passed, and then hands the signal to the server's own handler, which shuts down as usual.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

ENTRY_SERVICE = "wine_quality"


def service_of(cmdline: list[str]) -> str | None:
    """The BentoML service a serving process runs (`--service-name NAME` on its command line), else None."""
    try:
        return cmdline[cmdline.index("--service-name") + 1]
    except (ValueError, IndexError):
        return None


def entry_workers_alive() -> bool:
    """Whether a worker of the entry service still runs beside this process (same supervisor)."""
    import psutil

    try:
        siblings = psutil.Process(os.getppid()).children()
    except psutil.Error:
        return False
    for process in siblings:
        try:
            cmd = process.cmdline()
        except psutil.Error:
            continue
        if service_of(cmd) == ENTRY_SERVICE:
            return True
    return False


def hold_sigterm_while(busy: Callable[[], bool], max_wait: float, poll: float = 0.1) -> None:
    """From now on, a SIGTERM to this process takes effect once `busy()` is false (or after `max_wait` s)."""
    handler = signal.getsignal(signal.SIGTERM)
    if not callable(handler):  # nothing installed a handler (not under a server): leave the default alone
        return
    original: Callable[[int, FrameType | None], Any] = handler

    def deliver_when_idle(signum: int) -> None:
        deadline = time.monotonic() + max_wait
        while busy() and time.monotonic() < deadline:
            time.sleep(poll)
        original(signum, None)

    def hold(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=deliver_when_idle, args=(signum,), name="drain", daemon=True).start()

    signal.signal(signal.SIGTERM, hold)


def listening_fd() -> int | None:
    """The listening socket BentoML's supervisor handed this worker (`--fd N` on its command line), if any."""
    import sys

    argv = sys.argv
    try:
        return int(argv[argv.index("--fd") + 1])
    except (ValueError, IndexError):
        return None


def refuse_new_connections_on_sigterm() -> None:
    """On SIGTERM, stop the listening socket itself before the server's own handler runs.

    The supervisor keeps its own copy of the socket, so the kernel would go on accepting connections into the backlog
    after the server stopped accepting, and reset them only when the supervisor exits. Shutting the socket down makes
    new connections fail at once, while the requests already accepted are answered.
    """
    import socket

    fd = listening_fd()
    handler = signal.getsignal(signal.SIGTERM)
    if fd is None or not callable(handler):
        return
    original: Callable[[int, FrameType | None], Any] = handler

    def refuse_then_stop(signum: int, frame: FrameType | None) -> None:
        try:
            listener = socket.socket(fileno=os.dup(fd))
            listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        except OSError:
            pass
        original(signum, frame)

    signal.signal(signal.SIGTERM, refuse_then_stop)
