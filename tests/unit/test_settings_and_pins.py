"""Settings from the environment, and the pin file that says which model versions are served."""

from __future__ import annotations

from pathlib import Path

import pytest

from wine_quality.registry import ModelStoreError, pinned_tag, read_pins, write_pin
from wine_quality.settings import Settings


def test_settings_come_from_wine_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """WINE_MAX_BATCH_SIZE and WINE_MAX_ROWS_PER_REQUEST set the batching and request limits."""
    monkeypatch.setenv("WINE_MAX_BATCH_SIZE", "64")
    monkeypatch.setenv("WINE_MAX_ROWS_PER_REQUEST", "5")
    settings = Settings()
    assert (settings.max_batch_size, settings.max_rows_per_request) == (64, 5)


def test_pins_round_trip_and_keep_other_kinds(tmp_path: Path) -> None:
    """Pinning one kind leaves the other kind's pin as it was."""
    lock = tmp_path / "models.lock.json"
    write_pin(lock, "sklearn", "wine_quality_sklearn:aaa")
    write_pin(lock, "torch", "wine_quality_torch:bbb")
    write_pin(lock, "sklearn", "wine_quality_sklearn:ccc")
    assert read_pins(lock) == {"sklearn": "wine_quality_sklearn:ccc", "torch": "wine_quality_torch:bbb"}


def test_an_explicit_tag_wins_over_the_pin_file(tmp_path: Path) -> None:
    """WINE_TORCH_MODEL names the served torch version whatever the pin file says."""
    lock = tmp_path / "models.lock.json"
    write_pin(lock, "torch", "wine_quality_torch:pinned")
    settings = Settings(models_lock=lock, torch_model="wine_quality_torch:chosen")
    assert pinned_tag("torch", settings) == "wine_quality_torch:chosen"


def test_no_pin_names_the_training_command(tmp_path: Path) -> None:
    """With nothing pinned, the error says which command trains the model."""
    with pytest.raises(ModelStoreError, match=r"python -m train\.sklearn_model"):
        pinned_tag("sklearn", Settings(models_lock=tmp_path / "none.json"))
