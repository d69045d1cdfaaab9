"""GET /monitoring: the drift of each served model's recent inputs and predictions, as JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from wine_quality.grading import Grader
from wine_quality.monitoring import MonitoringReport, report
from wine_quality.protocols import current_grader

router = APIRouter()


# a plain function: FastAPI runs it in a thread, so a large window never holds up the event loop
@router.get("/monitoring", response_model=MonitoringReport, tags=["Monitoring"])
def monitoring(grader: Annotated[Grader, Depends(current_grader)]) -> MonitoringReport:
    """Per model and feature: rows in the window, PSI and KS against the training data, training and recent
    quantiles; the same for the predicted grades. Prometheus gets the same figures from /metrics."""
    if grader.monitor is None:
        return report(grader.settings, {})
    return grader.monitor.report()
