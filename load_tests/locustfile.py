"""Locust users for the wine-quality service, sending real wines from the data files.

User classes (name one or more at the end of the locust command line, as usual):

- ``PredictUser``: ``POST /predict``, one wine, scikit-learn model.
- ``PredictNetUser``: ``POST /predict_net``, one wine, PyTorch model.
- ``BatchUser``: ``POST /predict_batch``, ``LOAD_TEST_BATCH_SIZE`` wines (default 100), either model.
- ``MixedUser``: mostly single predictions on both models, now and then a batch on either.

When no class is named (neither on the command line nor in ``LOCUST_USER_CLASSES``), an ``init`` listener
narrows the run to ``MixedUser`` alone; name several classes to run them side by side.

Every payload is a row of ``data/winequality-red.csv`` or ``data/winequality-white.csv``, drawn at random per
request. A request counts as failed when the status is not 200, the body is not the documented shape, a
``quality`` is not a finite number from 0 to 10, the ``model`` tag is missing or names the other model, or a batch
answer has a different number of predictions than samples sent; the failure message quotes what came back.
"""

from __future__ import annotations

import itertools
import math
import os
import random
from typing import Any

from locust import HttpUser, between, events, task
from locust.env import Environment

from train.data import RED, WHITE, load_wines
from wine_quality.kinds import KINDS
from wine_quality.schema import FEATURE_NAMES, TARGET_HIGH, TARGET_LOW

BATCH_SIZE = int(os.environ.get("LOAD_TEST_BATCH_SIZE", "100"))
if BATCH_SIZE < 1:
    raise ValueError(f"LOAD_TEST_BATCH_SIZE must be at least 1, got {BATCH_SIZE}")

# Request names, as they appear in locust's statistics (and in tests/integration/test_load.py).
PREDICT = "/predict [sklearn, 1 wine]"
PREDICT_NET = "/predict_net [torch, 1 wine]"
BATCH = {"sklearn": "/predict_batch [sklearn]", "torch": "/predict_batch [torch]"}
MODEL_NAMES = {kind: registered.store_name for kind, registered in KINDS.items()}


def _rows() -> list[dict[str, float]]:
    """Every wine of both data files, as the JSON sample the service takes."""
    rows: list[dict[str, float]] = []
    for path in (RED, WHITE):
        frame = load_wines(path)
        values = frame[list(FEATURE_NAMES)].to_numpy(dtype=float).tolist()
        rows += [dict(zip(FEATURE_NAMES, row, strict=True)) for row in values]
    return rows


WINES = _rows()


def _sample() -> dict[str, float]:
    return random.choice(WINES)


def _samples(count: int) -> list[dict[str, float]]:
    return random.sample(WINES, count) if count <= len(WINES) else random.choices(WINES, k=count)


def _quality_problem(quality: Any) -> str | None:
    if isinstance(quality, bool) or not isinstance(quality, int | float):
        return f"quality is not a number: {quality!r}"
    if not math.isfinite(quality) or not TARGET_LOW <= quality <= TARGET_HIGH:
        return f"quality {quality!r} is outside {TARGET_LOW}-{TARGET_HIGH}"
    return None


def _outside_problem(outside: Any) -> str | None:
    if not isinstance(outside, list) or any(name not in FEATURE_NAMES for name in outside):
        return f"outside_training_range is not a list of feature names: {outside!r}"
    return None


def _interval_problem(interval: Any, quality: float) -> str | None:
    if not isinstance(interval, dict) or set(interval) != {"low", "high", "coverage"}:
        return f"not an interval: {interval!r:.300}"
    if not interval["low"] <= quality <= interval["high"] or not 0 < interval["coverage"] < 1:
        return f"interval {interval!r} does not hold quality {quality!r} at a coverage between 0 and 1"
    return None


def _model_problem(model: Any, kind: str) -> str | None:
    if not isinstance(model, str) or not model:
        return f"model tag missing or empty: {model!r}"
    if not model.startswith(MODEL_NAMES[kind] + ":"):
        return f"model tag {model!r} is not a {MODEL_NAMES[kind]} version"
    return None


ROW_FIELDS = {"id", "type", "quality", "interval", "outside_training_range"}


def _wine_problem(row: dict[str, Any]) -> str | None:
    """Each wine's own id (for POST /feedback) and its type: the load sends red wines, untyped."""
    if not isinstance(row["id"], str) or not row["id"]:
        return f"id missing or empty: {row['id']!r}"
    return None if row["type"] == "red" else f"type {row['type']!r} for a red wine sent without a type"


def single_problem(body: Any, kind: str) -> str | None:
    """What is wrong with a single prediction's body, or None."""
    if not isinstance(body, dict) or set(body) != ROW_FIELDS | {"model", "runtime"}:
        return f"not a single prediction: {body!r:.300}"
    return (
        _model_problem(body["model"], kind)
        or _wine_problem(body)
        or _quality_problem(body["quality"])
        or _interval_problem(body["interval"], body["quality"])
        or _outside_problem(body["outside_training_range"])
    )


def batch_problem(body: Any, kind: str, sent: int) -> str | None:
    """What is wrong with a batch answer's body, or None."""
    if (
        not isinstance(body, dict)
        or set(body) != {"model", "runtime", "predictions"}
        or not isinstance(body["predictions"], list)
    ):
        return f"not a batch prediction: {body!r:.300}"
    problem = _model_problem(body["model"], kind)
    if problem:
        return problem
    predictions = body["predictions"]
    if len(predictions) != sent:
        return f"{len(predictions)} predictions for {sent} samples"
    for i, row in enumerate(predictions):
        if not isinstance(row, dict) or set(row) != ROW_FIELDS:
            return f"prediction {i} is not a row prediction: {row!r:.300}"
        problem = (
            _wine_problem(row)
            or _quality_problem(row["quality"])
            or _interval_problem(row["interval"], row["quality"])
            or _outside_problem(row["outside_training_range"])
        )
        if problem:
            return f"prediction {i}: {problem}"
    return None


class WineUser(HttpUser):
    """What every user does; the subclasses choose which calls and how often."""

    abstract = True
    wait_time = between(0, 0.01)

    def _post(self, path: str, name: str, payload: dict[str, Any], check: Any) -> None:
        with self.client.post(path, json=payload, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:300]!r}")
                return
            try:
                body = response.json()
            except ValueError:
                response.failure(f"body is not JSON: {response.text[:300]!r}")
                return
            problem = check(body)
            if problem:
                response.failure(problem)
            else:
                response.success()

    def predict(self) -> None:
        self._post("/predict", PREDICT, _sample(), lambda body: single_problem(body, "sklearn"))

    def predict_net(self) -> None:
        self._post("/predict_net", PREDICT_NET, _sample(), lambda body: single_problem(body, "torch"))

    def predict_batch(self, kind: str) -> None:
        payload = {"model": kind, "samples": _samples(BATCH_SIZE)}
        self._post("/predict_batch", BATCH[kind], payload, lambda body: batch_problem(body, kind, BATCH_SIZE))


class PredictUser(WineUser):
    """Grades one wine at a time with the scikit-learn model."""

    @task
    def one_wine(self) -> None:
        self.predict()


class PredictNetUser(WineUser):
    """Grades one wine at a time with the PyTorch model."""

    @task
    def one_wine(self) -> None:
        self.predict_net()


class BatchUser(WineUser):
    """Grades LOAD_TEST_BATCH_SIZE wines per call, with either model in turn at random."""

    @task
    def sklearn_batch(self) -> None:
        self.predict_batch("sklearn")

    @task
    def torch_batch(self) -> None:
        self.predict_batch("torch")


class MixedUser(WineUser):
    """Realistic traffic: about 91 % single predictions (half per model), 9 % batches (half per model).

    Each user walks its own shuffled cycle of 22 calls (10 and 10 single wines, one batch per model), so any 22
    consecutive requests of a user hold every kind of call: a short run sees them all.
    """

    SCHEDULE = ("sklearn",) * 10 + ("torch",) * 10 + ("batch sklearn", "batch torch")

    def on_start(self) -> None:
        self._calls = itertools.cycle(random.sample(self.SCHEDULE, len(self.SCHEDULE)))

    @task
    def next_call(self) -> None:
        call = next(self._calls)
        if call == "sklearn":
            self.predict()
        elif call == "torch":
            self.predict_net()
        else:
            self.predict_batch(call.removeprefix("batch "))


@events.init.add_listener
def _mixed_by_default(environment: Environment, **_: Any) -> None:
    """With no user class named, run MixedUser alone rather than every class at once."""
    options = environment.parsed_options
    if options is not None and not options.user_classes:
        environment.user_classes[:] = [MixedUser]
