"""WINE_INVOCATIONS_MODEL: the model that answers MLflow's /invocations when a request names none."""

from __future__ import annotations

import pytest

from wine_quality.protocols import mlflow_scoring
from wine_quality.settings import Settings


def test_the_default_is_the_scikit_learn_model() -> None:
    """Without the setting, /invocations is answered by the sklearn model, as /predict is."""
    assert Settings().invocations_model == "sklearn"


def test_a_kind_that_is_not_served_stops_the_service_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt kind is refused when the service starts, naming the kinds there are."""
    monkeypatch.setattr(mlflow_scoring, "get_settings", lambda: Settings(invocations_model="xgboost"))
    with pytest.raises(
        ValueError, match="WINE_INVOCATIONS_MODEL='xgboost' is not a served model kind: use one of sklearn, torch"
    ):
        mlflow_scoring.default_kind()
