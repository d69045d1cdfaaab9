"""Settings from the environment, and the pin file that says which model versions are served."""

from __future__ import annotations

from pathlib import Path

import pytest

from wine_quality.pins import pinned_tag, read_pins, write_pin
from wine_quality.settings import ModelSettings, Settings, env_names
from wine_quality.store import ModelStoreError


def test_settings_come_from_wine_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """WINE_MAX_BATCH_SIZE and WINE_MAX_ROWS_PER_REQUEST set the batching and request limits."""
    monkeypatch.setenv("WINE_MAX_BATCH_SIZE", "64")
    monkeypatch.setenv("WINE_MAX_ROWS_PER_REQUEST", "5")
    settings = Settings()
    assert (settings.batching.max_batch_size, settings.requests.max_rows) == (64, 5)


def test_every_setting_keeps_a_flat_wine_variable_of_its_own() -> None:
    """Grouping the settings changed no environment name: every field of every group has its own WINE_ variable."""
    names = [name for group in Settings.model_fields.values() for name in env_names(group.annotation)]
    assert len(names) == len(set(names))
    assert all(name.startswith("WINE_") for name in names)
    assert {"WINE_REQUEST_TIMEOUT_S", "WINE_MAX_ROWS_PER_REQUEST", "WINE_DRIFT", "WINE_MODEL_PINS"} <= set(names)


def test_pins_round_trip_and_keep_other_kinds(tmp_path: Path) -> None:
    """Pinning one kind leaves the other kind's pin as it was."""
    pins = tmp_path / "model-pins.json"
    write_pin(pins, "sklearn", "wine_quality_sklearn:aaa")
    write_pin(pins, "torch", "wine_quality_torch:bbb")
    write_pin(pins, "sklearn", "wine_quality_sklearn:ccc")
    assert read_pins(pins) == {"sklearn": "wine_quality_sklearn:ccc", "torch": "wine_quality_torch:bbb"}


def test_an_explicit_tag_wins_over_the_pin_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """WINE_TORCH_MODEL names the served torch version whatever the pin file says."""
    pins = tmp_path / "model-pins.json"
    write_pin(pins, "torch", "wine_quality_torch:pinned")
    monkeypatch.setenv("WINE_TORCH_MODEL", "wine_quality_torch:chosen")
    settings = ModelSettings(pins=pins)
    assert pinned_tag("torch", settings) == "wine_quality_torch:chosen"
    assert pinned_tag("torch", ModelSettings(pins=pins, tags={})) == "wine_quality_torch:pinned"


def test_the_runtime_and_its_threads_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """WINE_RUNTIME chooses ONNX Runtime (the default) or the native libraries; anything else is refused."""
    assert Settings().models.runtime == "onnx"
    monkeypatch.setenv("WINE_RUNTIME", "native")
    monkeypatch.setenv("WINE_MODEL_THREADS", "2")
    assert (Settings().models.runtime, Settings().models.threads) == ("native", 2)
    monkeypatch.setenv("WINE_RUNTIME", "tensorrt")
    with pytest.raises(ValueError, match="runtime"):
        Settings()


def test_no_pin_names_the_training_command(tmp_path: Path) -> None:
    """With nothing pinned, the error says which command trains the model."""
    with pytest.raises(ModelStoreError, match=r"python -m train\.sklearn_model"):
        pinned_tag("sklearn", ModelSettings(pins=tmp_path / "none.json", tags={}))
