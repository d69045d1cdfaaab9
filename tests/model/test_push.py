"""Issue 14's accuracy push: the chemistry features, the ordinal model and the serving rule."""

from __future__ import annotations

import numpy as np
import pytest

from tests.model.test_evaluation_verdicts import _result
from train.data import RED, load_wines
from train.evaluation.push import OrdinalForest, chemistry
from train.evaluation.push_sections import _net_gap, beats_served, paired
from wine_quality.schema import EXAMPLE, FEATURE_NAMES, TARGET


def test_chemistry_features_are_what_a_winemaker_computes() -> None:
    """For the seed's wine (free SO2 11, total 34, pH 3.51): bound SO2 23 mg/dm3 and molecular SO2 about 0.21."""
    row = chemistry(np.array([list(EXAMPLE.values())]))[0]
    assert row[:11].tolist() == list(EXAMPLE.values())
    assert row[11] == pytest.approx(23.0)
    assert row[12] == pytest.approx(11.0 / (1 + 10 ** (3.51 - 1.81)))
    assert row[13] == pytest.approx(7.4 / 0.7) and row[15] == pytest.approx(7.4 + 0.7 + 0.0)


def test_the_ordinal_forest_predicts_grades_in_the_seen_range_and_in_order() -> None:
    """Fitted on red, it predicts within the grades seen, and the wines it grades highest are better on average."""
    frame = load_wines(RED).drop_duplicates()
    x, y = frame[list(FEATURE_NAMES)].to_numpy(), frame[TARGET].to_numpy()
    predicted = OrdinalForest(n_estimators=10, random_state=0).fit(x[:1000], y[:1000]).predict(x[1000:])
    assert np.all((predicted >= 3) & (predicted <= 8))
    order = np.argsort(predicted)
    assert y[1000:][order[-50:]].mean() > y[1000:][order[:50]].mean() + 0.5


def test_a_candidate_is_served_only_if_it_beats_extra_trees_by_more_than_a_standard_error() -> None:
    """Paired over the same folds: a steady small gain qualifies, a larger but noisy one does not."""
    served = _result("extra_trees", "sklearn", 0.49)
    steady, noisy = _result("steady", "sklearn", 0.48), _result("noisy", "sklearn", 0.47)
    served.per_fold.extend({"mae": v} for v in (0.50, 0.48, 0.49, 0.49))
    steady.per_fold.extend({"mae": v} for v in (0.49, 0.47, 0.48, 0.48))
    noisy.per_fold.extend({"mae": v} for v in (0.40, 0.56, 0.42, 0.50))
    results = {"extra_trees": served, "steady": steady, "noisy": noisy}
    assert paired(results, "steady") == pytest.approx((-0.01, 0.0))
    assert beats_served(results, "steady") and not beats_served(results, "noisy")
    assert not beats_served(results, "extra_trees")


def test_the_network_target_is_judged_on_the_served_network() -> None:
    """Issue 14's network target (within 0.02 MAD of the best scikit-learn model) is the served ensemble's, even where
    another network does better; without the ensemble in the run, the best network's, said so."""
    results = {
        "extra_trees": _result("extra_trees", "sklearn", 0.49),
        "stacking": _result("stacking", "sklearn", 0.48),
        "torch": _result("torch", "torch", 0.51),
        "torch_ensemble": _result("torch_ensemble", "torch", 0.505),
        "torch_l1_log": _result("torch_l1_log", "torch", 0.495),
    }
    line = _net_gap("red", results)
    assert line.startswith("- red: the served network, `torch_ensemble`, MAD 0.505, is +0.025 from")
    assert "`stacking` (0.480): target ≤ +0.02 **not reached**; the best network, `torch_l1_log`, is +0.015" in line
    del results["torch_ensemble"]
    assert _net_gap("red", results).startswith("- red: the best network (the served one was not run), `torch_l1_log`")
