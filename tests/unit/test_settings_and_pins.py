"""Settings from the environment, and the pin file that says which model versions are served."""

from __future__ import annotations

from pathlib import Path

import pytest

from wine_quality.pins import pinned_tag, read_pins, write_pin
from wine_quality.settings import Settings
from wine_quality.store import ModelStoreError


def test_settings_come_from_wine_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """WINE_MAX_BATCH_SIZE and WINE_MAX_ROWS_PER_REQUEST set the batching and request limits."""
    monkeypatch.setenv("WINE_MAX_BATCH_SIZE", "64")
    monkeypatch.setenv("WINE_MAX_ROWS_PER_REQUEST", "5")
    settings = Settings()
    assert (settings.max_batch_size, settings.max_rows_per_request) == (64, 5)


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
    settings = Settings(model_pins=pins)
    assert pinned_tag("torch", settings) == "wine_quality_torch:chosen"
    assert pinned_tag("torch", Settings(model_pins=pins, model_tags={})) == "wine_quality_torch:pinned"


def test_a_pin_file_under_its_old_name_is_still_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkouts that trained before the rename keep serving: models.lock.json is read when model-pins.json is
    absent, and WINE_MODELS_LOCK still names the pin file."""
    old = tmp_path / "models.lock.json"
    old.write_text('{"sklearn": "wine_quality_sklearn:old"}')
    assert read_pins(tmp_path / "model-pins.json") == {"sklearn": "wine_quality_sklearn:old"}
    monkeypatch.delenv("WINE_MODEL_PINS", raising=False)
    monkeypatch.setenv("WINE_MODELS_LOCK", str(old))
    assert Settings().model_pins == old


def test_the_runtime_and_its_threads_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """WINE_RUNTIME chooses ONNX Runtime (the default) or the native libraries; anything else is refused."""
    assert Settings().runtime == "onnx"
    monkeypatch.setenv("WINE_RUNTIME", "native")
    monkeypatch.setenv("WINE_MODEL_THREADS", "2")
    assert (Settings().runtime, Settings().model_threads) == ("native", 2)
    monkeypatch.setenv("WINE_RUNTIME", "tensorrt")
    with pytest.raises(ValueError, match="runtime"):
        Settings()


def test_no_pin_names_the_training_command(tmp_path: Path) -> None:
    """With nothing pinned, the error says which command trains the model."""
    with pytest.raises(ModelStoreError, match=r"python -m train\.sklearn_model"):
        pinned_tag("sklearn", Settings(model_pins=tmp_path / "none.json", model_tags={}))
