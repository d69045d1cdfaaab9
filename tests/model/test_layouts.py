"""The training scripts train the layout (pooled, or one model per type) the committed evaluation chose for accuracy,
held to what each layout costs to serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train import classifier_model, sklearn_model, torch_model
from train.evaluation.pooled_sections import SCRIPTS, kind_of
from train.evaluation.pooling import served_layout, serving_cost

REPORT = Path(__file__).resolve().parents[2] / "reports" / "pooling" / "evaluation.json"  # make evaluate's pooling run
DEFAULTS = {"sklearn_model": sklearn_model.LAYOUT, "torch_model": torch_model.LAYOUT}
DEFAULTS["classifier_model"] = classifier_model.LAYOUT


@pytest.mark.parametrize("family", sorted(SCRIPTS))
def test_each_script_trains_the_layout_the_evaluation_and_the_serving_cost_chose(family: str) -> None:
    """reports/pooling/evaluation.json's choice for a family, held to its measured serving cost
    (reports/pooling/serving_cost.json), is its training script's default --layout."""
    chosen = json.loads(REPORT.read_text())["pooling"][family]["choice"]
    served = served_layout(chosen, serving_cost()[kind_of(family)])
    assert DEFAULTS[SCRIPTS[family]] == served, f"python -m train.{SCRIPTS[family]} trains {DEFAULTS[SCRIPTS[family]]}"


def test_pooled_is_served_only_where_it_costs_no_type_of_wine_more() -> None:
    """Pooled where it is as accurate and costs each type at most 1.1x one model per type; never where per type was
    the more accurate."""
    cost = {"per_type": {"red": 6.0, "white": 30.0}, "pooled": {"red": 6.5, "white": 29.0}}
    assert served_layout("pooled", cost) == "pooled"
    assert served_layout("per_type", cost) == "per_type"
    assert served_layout("pooled", cost | {"pooled": {"red": 9.0, "white": 29.0}}) == "per_type"
    assert served_layout("pooled", cost | {"pooled": {"red": 6.0, "white": 34.0}}) == "per_type"
