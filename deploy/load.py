"""A bounded load through the balancer, for `make rollout` and the replica tests: every answer checked and counted.

    async with Load("http://127.0.0.1:PORT", clients=4, rate=100) as load:
        ...  # what should cost no request
    load.failed, load.answered, load.tags

Each client sends the calls in turn (by default one wine to each model: /predict, /predict_net, /classify), at a
steady rate shared by the clients or as fast as answers come, until the block ends or MAX_REQUESTS were sent. A call
counts as answered only when it is a 200 whose grades are on the 0-10 scale (or whose probabilities sum to 1) and that
names the model tag that answered; anything else, a transport error included, is a failure, kept with its reason.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from wine_quality.schema import EXAMPLE

Call = tuple[str, Any]
MIXED: tuple[Call, ...] = (("/predict", EXAMPLE), ("/predict_net", EXAMPLE), ("/classify", EXAMPLE))
MAX_REQUESTS = 100_000


def answering_tag(reply: httpx.Response) -> str | None:
    """The model tag of a sound answer (one wine or a batch); None for anything else."""
    if reply.status_code != 200:
        return None
    try:
        body = reply.json()
        rows = body.get("predictions", [body])
        for row in rows:
            if "quality" in row:
                if not (isinstance(row["quality"], float) and 0 <= row["quality"] <= 10):
                    return None
            elif not math.isclose(sum(row["probabilities"].values()), 1.0, abs_tol=1e-6):
                return None
        return body["model"] if rows and isinstance(body["model"], str) else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass
class Load:
    """Clients of the balancer at url; counts by route (answered), by route and tag (tags), and the failures."""

    url: str
    calls: Sequence[Call] = MIXED
    clients: int = 4
    rate: float | None = None  # requests per second from all clients together; None: each sends as soon as answered
    answered: Counter[str] = field(default_factory=Counter)
    tags: Counter[tuple[str, str]] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _http: httpx.AsyncClient | None = None

    @property
    def ok(self) -> int:
        return sum(self.answered.values())

    @property
    def sent(self) -> int:
        return self.ok + len(self.failed)

    async def _client(self, http: httpx.AsyncClient, index: int) -> None:
        started = time.monotonic()
        step = self.clients / self.rate if self.rate else 0.0
        n = 0
        while not self._stop.is_set() and self.sent < MAX_REQUESTS:
            route, body = self.calls[(index + n * self.clients) % len(self.calls)]
            if step:  # the clients' turns interleave: client i at (n * clients + i) / rate
                wait = started + (n + index / self.clients) * step - time.monotonic()
                if wait > 0:
                    try:
                        await asyncio.wait_for(self._stop.wait(), wait)
                        break
                    except TimeoutError:
                        pass
            n += 1
            try:
                reply = await http.post(route, json=body)
            except httpx.HTTPError as exc:
                self.failed.append(f"{route}: {exc!r}")
                continue
            tag = answering_tag(reply)
            if tag is None:
                self.failed.append(f"{route}: {reply.status_code} {reply.text[:200]}")
            else:
                self.answered[route] += 1
                self.tags[route, tag] += 1

    async def __aenter__(self) -> Load:
        limits = httpx.Limits(max_connections=self.clients, max_keepalive_connections=self.clients)
        self._http = httpx.AsyncClient(base_url=self.url, timeout=60, limits=limits)
        self.seconds = time.monotonic()
        self._tasks = [asyncio.create_task(self._client(self._http, i)) for i in range(self.clients)]
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        self.seconds = time.monotonic() - self.seconds
        if self._http is not None:
            await self._http.aclose()

    def summary(self) -> dict[str, Any]:
        """The counts, as `make rollout` prints them."""
        return {
            "requests": self.sent,
            "failed": len(self.failed),
            "seconds": round(self.seconds, 1),
            "clients": self.clients,
            "answered": dict(self.answered),
            "tags": {f"{route} {tag}": n for (route, tag), n in sorted(self.tags.items())},
            "failures": self.failed[:20],
        }
