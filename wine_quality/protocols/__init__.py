"""Protocols beside our own JSON API, as FastAPI routers that service.py mounts next to BentoML's APIs.

A router's endpoints reach the entry service's Grader through the `current_grader` dependency, which the service
points at its own instance when it starts (`routes.dependency_overrides`), so every protocol answers from the same
model services, through the same batching, as /predict, /predict_net and /predict_batch.
"""

from __future__ import annotations

from wine_quality.grading import Grader


def current_grader() -> Grader:
    """The running entry service's Grader (overridden by service.py at start-up)."""
    raise RuntimeError("the entry service has not started: it sets this dependency in its __init__")
