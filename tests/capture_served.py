"""What the capture integration tests share: a real server capturing to a real database, every route's request and
the ids of its answer, rows read back, and a load that keeps every id it was answered."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import Engine, select

from harness.devserver import Server, start_server
from train.data import RED, load_wines
from wine_quality.capture.tables import make_engine, predictions
from wine_quality.schema import FEATURE_NAMES, TARGET
from wine_quality.settings import sqlalchemy_url

V2 = {"sklearn": "/v2/models/wine-quality-sklearn/infer", "torch": "/v2/models/wine-quality-torch/infer"}
# (route, its form, model kind): one request each, every way a wine is graded or classified
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("/predict", "object", "sklearn"),
    ("/predict_net", "object", "torch"),
    ("/predict_batch", "samples", "sklearn"),
    ("/predict_batch", "columns", "torch"),
    ("/classify", "object", "classifier"),
    ("/classify_batch", "samples", "classifier"),
    ("/classify_batch", "columns", "classifier"),
    (V2["sklearn"], "v2", "sklearn"),
    (V2["torch"], "v2", "torch"),
    ("/invocations", "json", "sklearn"),
    ("/invocations", "csv", "torch"),
)
PROTOCOLS = {"v2": "v2", "json": "mlflow", "csv": "mlflow"}


@dataclass
class Served:
    """A real `bentoml serve` capturing into a database this process can read too."""

    server: Server
    engine: Engine
    tags: dict[str, str]  # model kind -> the pinned tag the rows must name
    # the true grades the tests stored, with what was predicted: what the live figures must be computed from
    labelled: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def serving(env: dict[str, str], url: str, log_dir: Path, trained: dict[str, dict[str, Any]]) -> Iterator[Served]:
    """Start a server with these capture settings, and an engine on the same database; stop both after."""
    server = start_server(env={"WINE_ACCESS_LOG": "false", **env}, log_dir=log_dir)
    engine = make_engine(sqlalchemy_url(url))
    try:
        yield Served(server, engine, {kind: str(found["tag"]) for kind, found in trained.items()})
    finally:
        server.stop()
        engine.dispose()


def red_wines(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n distinct rows of the red file, drawn at random: the measurements [n, 11] and their tasters' grades."""
    frame = load_wines(RED).drop_duplicates().sample(n, random_state=seed)
    return frame[list(FEATURE_NAMES)].to_numpy(dtype=np.float64), frame[TARGET].to_numpy()


def request(
    route: str, form: str, kind: str, rows: np.ndarray, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """httpx.post's arguments (after the route) that send these rows by that route in that form, with these headers."""
    sent = _body(form, kind, rows)
    return {**sent, "headers": {**sent.get("headers", {}), **(headers or {})}}


def _body(form: str, kind: str, rows: np.ndarray) -> dict[str, Any]:
    wines = [dict(zip(FEATURE_NAMES, row, strict=True)) for row in rows.tolist()]
    if form == "object":
        assert len(rows) == 1
        return {"json": wines[0]}
    if form == "samples":
        return {"json": {"model": kind, "samples": wines}}
    if form == "columns":
        return {"json": {"model": kind, "columns": list(FEATURE_NAMES), "data": rows.tolist()}}
    if form == "v2":
        tensor = {"name": "wines", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}
        return {"json": {"inputs": [tensor]}}
    if form == "json":
        return {
            "params": {"model": kind},
            "json": {"dataframe_split": {"columns": FEATURE_NAMES, "data": rows.tolist()}},
        }
    lines = [",".join(FEATURE_NAMES), *(",".join(repr(v) for v in row) for row in rows.tolist())]
    return {"params": {"model": kind}, "content": "\n".join(lines), "headers": {"Content-Type": "text/csv"}}


def v2_output(answer: dict[str, Any], name: str) -> list[Any]:
    """One output's data from a V2 JSON answer."""
    return next(o["data"] for o in answer["outputs"] if o["name"] == name)


def ids_of(form: str, answer: dict[str, Any]) -> list[str]:
    """The wines' ids an answer of that form carries, in row order."""
    if form == "object":
        return [answer["id"]]
    if form == "v2":
        return v2_output(answer, "id")
    if form in PROTOCOLS:
        return list(answer["ids"])
    return [p["id"] for p in answer["predictions"]]


def stored(engine: Engine, ids: list[str]) -> dict[str, Any]:
    """The predictions rows of these ids (those that are there), by id."""
    found = {}
    with engine.connect() as connection:
        for start in range(0, len(ids), 500):
            query = select(predictions).where(predictions.c.id.in_(ids[start : start + 500]))
            found.update({row.id: row for row in connection.execute(query)})
    return found


def all_stored(engine: Engine, ids: list[str], timeout_s: float = 60.0) -> dict[str, Any]:
    """The rows of these ids once every one is in the database (polled; fails past the deadline naming the missing)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = stored(engine, ids)
        if len(found) == len(set(ids)):
            return found
        if time.monotonic() > deadline:
            missing = sorted(set(ids) - set(found))
            raise AssertionError(f"{len(missing)} of {len(set(ids))} wines not in the database: {missing[:5]}")
        time.sleep(0.1)


class Load:
    """`clients` keep-alive clients post real red wines through every route, from a thread of their own, until
    stopped: each answered wine's id with when its answer came (Unix time), and every failure."""

    def __init__(self, url: str, clients: int = 8, seed: int = 0) -> None:
        self.url, self.clients = url, clients
        self.rows, _ = red_wines(500, seed)
        self.answered: list[tuple[float, str]] = []
        self.failures: list[tuple[float, str, int | str]] = []  # (when, route, status or error)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="capture-load")

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def answers(self) -> int:
        return len(self.answered)

    def ids(self, before: float | None = None) -> list[str]:
        """The ids answered (before that Unix time)."""
        return [i for t, i in self.answered if before is None or t < before]

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            await asyncio.gather(*(self._client(client, i) for i in range(self.clients)))

    async def _client(self, client: httpx.AsyncClient, number: int) -> None:
        sent = number
        while not self._stop.is_set():
            route, form, kind = ROUTES[sent % len(ROUTES)]
            n = 1 if form == "object" else 3
            start = sent * 3 % (len(self.rows) - n)
            sent += 1
            try:
                answer = await client.post(route, **request(route, form, kind, self.rows[start : start + n]))
                status: int | str = answer.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            if status == 200:
                now = time.time()
                self.answered += [(now, i) for i in ids_of(form, answer.json())]
            else:
                self.failures.append((time.time(), route, status))
                await asyncio.sleep(0.05)  # a refused client does not spin: it tries again a little later
