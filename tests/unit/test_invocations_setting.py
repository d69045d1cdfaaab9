"""WINE_INVOCATIONS_MODEL: the model that answers MLflow's /invocations when a request names none."""

from __future__ import annotations

import pytest

from wine_quality.settings import Settings, SettingsError, read_settings


def test_the_default_is_the_scikit_learn_model() -> None:
    """Without the setting, /invocations is answered by the sklearn model, as /predict is."""
    assert Settings().server.invocations_model == "sklearn"


def test_a_kind_that_is_not_served_stops_the_service_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt kind is refused when the settings are read (the service does not start), naming the kinds."""
    monkeypatch.setenv("WINE_INVOCATIONS_MODEL", "xgboost")
    with pytest.raises(SettingsError, match="WINE_INVOCATIONS_MODEL='xgboost': Input should be 'sklearn' or 'torch'"):
        read_settings()
