"""GET /monitoring: the drift of each served model's recent inputs and predictions, as JSON."""

from __future__ import annotations

from fastapi import APIRouter, Request

from wine_quality.monitoring import MonitoringReport, report
from wine_quality.protocols.base import plane

router = APIRouter()


# a plain function: FastAPI runs it in a thread, so a large window never holds up the event loop
@router.get("/monitoring", response_model=MonitoringReport, tags=["Monitoring"])
def monitoring(request: Request) -> MonitoringReport:
    """Per model and feature: rows in the window, PSI and KS against the training data, training and recent
    quantiles; the same for the predicted grades. Prometheus gets the same figures from /metrics."""
    data_plane = plane(request)
    if data_plane.monitor is None:
        return report(data_plane.settings.drift, {})
    return data_plane.monitor.report()
