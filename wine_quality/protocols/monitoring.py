"""GET /monitoring: the drift of each served model's recent inputs and predictions, and its live accuracy, as JSON."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from pydantic import Field

from wine_quality.capture.errors import CaptureUnavailable
from wine_quality.capture.live import LiveAccuracy
from wine_quality.monitoring import MonitoringReport, report
from wine_quality.protocols.base import plane

router = APIRouter()


class Monitoring(MonitoringReport):
    """Drift against the training data, and accuracy against the tasters' grades sent to /feedback."""

    live: LiveAccuracy | None = Field(
        description="per model tag and wine type, over the last WINE_LIVE_WINDOW labelled wines; null while capture "
        "is off or its database unreachable"
    )


# a plain function: FastAPI runs it in a thread, so a large window or the database never holds up the event loop
@router.get("/monitoring", response_model=Monitoring, tags=["Monitoring"])
def monitoring(request: Request) -> Monitoring:
    """Per model and feature: rows in the window, PSI and KS against the training data, training and recent
    quantiles; the same for the predicted grades; and live accuracy. Prometheus gets the same figures from /metrics."""
    data_plane = plane(request)
    drift = data_plane.monitor.report() if data_plane.monitor is not None else report(data_plane.settings.drift, {})
    live = None
    if data_plane.capture is not None:
        with contextlib.suppress(CaptureUnavailable):  # said by the null: drift is still worth answering
            live = data_plane.capture.live()
    return Monitoring(**dict(drift), live=live)
