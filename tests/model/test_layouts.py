"""The training scripts train the layout (pooled, or one model per type) the committed evaluation chose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train import classifier_model, sklearn_model, torch_model
from train.evaluation.pooled_sections import SCRIPTS

REPORT = Path(__file__).resolve().parents[2] / "reports" / "pooling" / "evaluation.json"  # make evaluate's pooling run
DEFAULTS = {"sklearn_model": sklearn_model.LAYOUT, "torch_model": torch_model.LAYOUT}
DEFAULTS["classifier_model"] = classifier_model.LAYOUT


@pytest.mark.parametrize("family", sorted(SCRIPTS))
def test_each_script_trains_the_layout_the_evaluation_chose(family: str) -> None:
    """reports/evaluation.json's choice for a family is its training script's default --layout."""
    chosen = json.loads(REPORT.read_text())["pooling"][family]["choice"]
    assert DEFAULTS[SCRIPTS[family]] == chosen, f"python -m train.{SCRIPTS[family]} trains {DEFAULTS[SCRIPTS[family]]}"
