"""`make evaluate`'s verdicts: which model counts as best, issue 5's targets against the paper, the recommendation."""

from __future__ import annotations

import numpy as np
import pytest

from train.crossval import INTERVAL_LEVELS
from train.evaluation.candidates import Kind, Params
from train.evaluation.results import METRICS, Interval, ModelResult, SearchSummary, Stat
from train.evaluation.verdicts import PAPER, best_sklearn, recommended, targets

NOMINAL = tuple(INTERVAL_LEVELS)


def _result(
    model: str,
    kind: Kind,
    mae: float,
    within: float = 0.6,
    within_1_0: float = 0.9,
    coverage: tuple[float, ...] = NOMINAL,
    modal: Params | None = None,
) -> ModelResult:
    """A nested result with these figures; the rest is filler the verdicts do not read."""
    metrics = {name: Stat(0.0, 0.0) for name in METRICS}
    metrics.update(mae=Stat(mae, 0.01), within_0_5=Stat(within, 0.01), within_1_0=Stat(within_1_0, 0.01))
    levels = zip(NOMINAL, coverage, strict=True)
    intervals = {f"{lv:g}": Interval(Stat(c, 0.01), c, Stat(0.5, 0.01), {}) for lv, c in levels}
    setting = modal if modal is not None else {}
    return ModelResult(
        dataset="red",
        model=model,
        label=model,
        kind=kind,
        duplicates_kept=False,
        rows_raw=10,
        y=np.zeros(1),
        metrics=metrics,
        metrics_per_run=metrics,
        per_fold=[],
        intervals=intervals,
        search=SearchSummary((setting,), (), ((setting, 15),)),
        seconds=1.0,
        first_run=np.zeros(1),
    )


def test_linear_regression_and_the_network_are_never_the_best_scikit_learn_model() -> None:
    """The best scikit-learn model is the other candidate with the lowest MAD, even where the baseline and the
    network do better; linear regression counts only when asked for."""
    results = {
        "torch": _result("torch", "torch", 0.40),
        "linear": _result("linear", "sklearn", 0.45),
        "svr": _result("svr", "sklearn", 0.52),
        "extra_trees": _result("extra_trees", "sklearn", 0.50),
    }
    assert best_sklearn(results) == "extra_trees"
    assert best_sklearn(results, linear=True) == "linear"
    assert best_sklearn({"linear": results["linear"]}) is None


def test_targets_read_mad_as_lower_is_better_and_shares_as_higher_is_better() -> None:
    """Against the paper's SVM on red, a MAD at or below it and shares at or above it are reached (its own figures
    count as reached); the served network's (the ensemble's) gap is measured from the best scikit-learn model;
    coverage counts when every level is within 3 points of nominal."""
    paper = PAPER["red"]["SVM"]
    results = {
        "svr": _result(
            "svr", "sklearn", paper["mae"], within=paper["within_0_5"], within_1_0=paper["within_1_0"] - 0.01
        ),
        "torch": _result("torch", "torch", paper["mae"] + 0.01, coverage=(0.8, 0.9, 0.91)),
        "torch_ensemble": _result("torch_ensemble", "torch", paper["mae"] + 0.05),
    }
    found = targets("red", results)
    assert found.sklearn is not None and found.torch is not None
    assert found.sklearn.model == "svr"
    assert found.sklearn.reached == {"mae": True, "within_0_5": True, "within_1_0": False}
    # the network target is the served network's, the ensemble, not the searched single network's
    assert found.torch.model == "torch_ensemble"
    assert found.torch.gap == pytest.approx(0.05) and not found.torch.reached
    assert found.coverage_within_3_points == {"svr": True, "torch": False, "torch_ensemble": True}
    assert targets("red", {"svr": results["svr"], "torch": results["torch"]}).torch is None


def test_the_recommendation_is_reds_best_model_with_its_most_chosen_setting() -> None:
    """Red decides when it was run; otherwise the one data set run does."""
    red = {
        "svr": _result("svr", "sklearn", 0.49, modal={"C": 1.0}),
        "extra_trees": _result("extra_trees", "sklearn", 0.48, modal={"max_features": 0.67}),
        "torch": _result("torch", "torch", 0.51, modal={"hidden": (64, 32)}),
    }
    white = {"svr": _result("svr", "sklearn", 0.53, modal={"C": 3.0})}
    both = recommended({"white": white, "red": red})
    assert (both["sklearn"].model, both["sklearn"].params) == ("extra_trees", {"max_features": 0.67})
    assert both["torch"].params == {"hidden": (64, 32)}
    only_white = recommended({"white": white})
    assert (only_white["sklearn"].model, only_white["sklearn"].params) == ("svr", {"C": 3.0})
    assert "torch" not in only_white
