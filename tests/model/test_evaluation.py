"""`make evaluate`'s nested cross-validation: searches see only training rows, choices and intervals come from the
inner out-of-fold residuals, and the command writes a report that states its own figures.

A recording model stands in for the real ones: it predicts its training rows' mean grade plus a shift (its one
setting), and remembers every row it was fitted on and asked to predict, so that each fit can be traced back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.model.test_evaluation_verdicts import _result
from train.crossval import INTERVAL_LEVELS, conformal_half_widths
from train.data import RED, load_wines, split_wines
from train.evaluation.candidates import Params
from train.evaluation.curves import learning_curve
from train.evaluation.nested import CVPlan, Fold, nested_cv
from train.evaluation.pooled import TypeData, pooled_nested_cv
from train.evaluation.pooling import Pooling
from train.evaluation.results import ModelResult
from train.evaluation.runner import evaluate_model, single_threaded
from train.metrics import regression_metrics
from train.network import NetConfig, fit_ensemble, fit_net

PLAN = CVPlan()  # the evaluation's own: 5 outer folds x 3 repeats, 3 inner folds, seed 42
GRID: tuple[Params, ...] = ({"shift": 0.6}, {"shift": 0.0}, {"shift": -0.6}, {"shift": 0.2})
ROWS = 90


@dataclass
class Fit:
    """One fit of a recording model: its setting, the rows it saw, and every batch of rows it then predicted."""

    shift: float
    seed: int
    rows: frozenset[int]
    predicted: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (row ids, predictions)


class Recorder:
    """Predicts the mean grade of its training rows plus `shift`; column 0 of x is each row's id."""

    def __init__(self, shift: float, seed: int, log: list[Fit]) -> None:
        self.shift, self.seed, self.log = shift, seed, log

    def fit(self, x: np.ndarray, y: np.ndarray) -> Recorder:
        self.record = Fit(self.shift, self.seed, frozenset(x[:, 0].astype(int).tolist()))
        self.log.append(self.record)
        self.mean = float(np.mean(y))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        predicted = np.full(len(x), self.mean + self.shift)
        self.record.predicted.append((x[:, 0].astype(int), predicted))
        return predicted


def _rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.column_stack([np.arange(ROWS), rng.normal(size=ROWS)])
    return x, rng.integers(3, 9, size=ROWS).astype(np.float64)


@pytest.fixture(scope="module")
def searched() -> tuple[list[Fold], list[Fit], np.ndarray]:
    """The real nested search over GRID, on recording models."""
    x, y = _rows()
    log: list[Fit] = []
    folds = nested_cv(lambda params, seed: Recorder(params["shift"], seed, log), GRID, x, y, PLAN)
    return folds, log, y


def _fits_within(log: list[Fit], fold: Fold) -> list[Fit]:
    return [fit for fit in log if fit.rows <= set(fold.train.tolist())]


def test_no_outer_test_row_is_ever_in_a_fit_of_its_fold(searched: tuple[list[Fold], list[Fit], np.ndarray]) -> None:
    """Every model the search fits for an outer fold sees that fold's training rows only; its test rows are
    predicted once, by the model refitted on all its training rows, and by no model of its search."""
    folds, log, _ = searched
    assert len(folds) == PLAN.folds * PLAN.repeats
    # every fit lies within one outer fold's training rows: a fit that held a test row of its own fold would not
    assert all(any(fit.rows <= set(fold.train.tolist()) for fold in folds) for fit in log)
    per_fold = len(GRID) * PLAN.inner_folds + 1  # each setting on each inner split, then the refit
    assert len(log) == len(folds) * per_fold
    for fold in folds:
        train, test = set(fold.train.tolist()), set(fold.test.tolist())
        assert not train & test and len(train | test) == ROWS
        fits = _fits_within(log, fold)
        assert len(fits) == per_fold
        refits = [fit for fit in fits if fit.rows == train]
        assert len(refits) == 1 and [set(ids.tolist()) for ids, _ in refits[0].predicted] == [test]
        for fit in fits:
            if fit is not refits[0]:
                assert all(set(ids.tolist()) <= train for ids, _ in fit.predicted), "the search looked at test rows"


def test_the_search_chooses_by_inner_mad_and_sizes_intervals_from_inner_residuals(
    searched: tuple[list[Fold], list[Fit], np.ndarray],
) -> None:
    """Within each outer fold, every setting's inner models predict each training row once; the setting with the
    lowest MAD over those predictions wins, and its absolute residuals give the conformal half-widths."""
    folds, log, y = searched
    for fold in folds:
        train = set(fold.train.tolist())
        inner = [fit for fit in _fits_within(log, fold) if fit.rows != train]
        residuals = {}
        for setting in GRID:
            batches = [batch for fit in inner if fit.shift == setting["shift"] for batch in fit.predicted]
            ids = np.concatenate([ids for ids, _ in batches])
            assert sorted(ids.tolist()) == sorted(train), "each training row predicted once per setting"
            residuals[setting["shift"]] = np.abs(y[ids] - np.concatenate([p for _, p in batches]))
        mad = {shift: float(np.mean(r)) for shift, r in residuals.items()}
        assert [m for _, m in fold.search.inner_mae] == pytest.approx([mad[s["shift"]] for s in GRID])
        best = min(mad, key=mad.__getitem__)
        assert fold.search.params == {"shift": best}
        assert fold.search.half_widths == pytest.approx(conformal_half_widths(residuals[best]))
    # the grid is not ordered by quality, and the choice follows the data, not the grid's order
    assert {fold.search.params["shift"] for fold in folds} - {GRID[0]["shift"]}


def test_the_models_are_seeded_as_the_training_scripts_seed_their_folds(
    searched: tuple[list[Fold], list[Fit], np.ndarray],
) -> None:
    """Outer fold i's refit is seeded seed + i and the inner models of its search seed + i + j, so that the committed
    report's figures can be reproduced."""
    folds, log, _ = searched
    for i, fold in enumerate(folds):
        train = set(fold.train.tolist())
        fits = _fits_within(log, fold)
        assert [fit.seed for fit in fits if fit.rows == train] == [PLAN.seed + i]
        inner_seeds = [fit.seed for fit in fits if fit.rows != train]
        assert inner_seeds == [PLAN.seed + i + j for _ in GRID for j in range(PLAN.inner_folds)]


def test_a_fixed_setting_is_fitted_once_per_outer_fold_without_intervals() -> None:
    """With one setting and no intervals wanted, no inner search runs: one fit per outer fold, on its training rows."""
    x, y = _rows()
    log: list[Fit] = []
    folds = nested_cv(lambda params, seed: Recorder(params["shift"], seed, log), GRID[:1], x, y, PLAN, intervals=False)
    assert [fit.rows for fit in log] == [frozenset(fold.train.tolist()) for fold in folds]
    assert all(fold.search.half_widths == {} and fold.search.inner_mae == () for fold in folds)


def test_intervals_cover_about_their_level_on_real_outer_test_folds() -> None:
    """Linear regression on the deduplicated red rows: each level's interval covers that share of unseen wines."""
    result = evaluate_model("red", "linear", CVPlan(folds=3, repeats=1, quick=True))
    assert (result.rows_raw, len(result.y)) == (len(load_wines(RED)), len(load_wines(RED).drop_duplicates()))
    assert sorted(result.intervals) == sorted(f"{level:g}" for level in INTERVAL_LEVELS)
    for level, interval in result.intervals.items():
        assert abs(interval.coverage_pooled - float(level)) < 0.05, (level, interval)
    # one repeat: the per-run figures are those of the out-of-fold predictions of every row
    assert result.metrics_per_run["mae"].mean == pytest.approx(regression_metrics(result.y, result.first_run)["mae"])


def test_the_learning_curve_is_fit_nets_own_record() -> None:
    """The reported curve and best epoch are fit_net's on the training scripts' split, of an ensemble its first
    member's (the one with the curve's seed); the test figures are the whole ensemble's."""
    split = split_wines(load_wines(RED), 0.2, 3)
    params: Params = {"hidden": (8,), "epochs": 12, "patience": 4, "lr": 0.05, "members": 2}
    with single_threaded():  # as the evaluation runs it; several threads make these tiny fits far slower
        curve = learning_curve("red", split, params, seed=3)
        _, history = fit_net(split.x_train, split.y_train, NetConfig(**params, seed=3), progress=False)
        ensemble, _ = fit_ensemble(split.x_train, split.y_train, NetConfig(**params, seed=3), progress=False)
    assert curve.config.loss == "l1" and curve.val_loss == pytest.approx(history["val_loss"])
    assert (curve.best_epoch, curve.epochs_run) == (history["best_epoch"], history["epochs_run"])
    assert curve.val_loss[curve.best_epoch - 1] == min(curve.val_loss)
    assert curve.test_metrics == pytest.approx(regression_metrics(split.y_test, ensemble.predict(split.x_test)))


def test_the_command_writes_a_report_that_states_its_figures(tmp_path: Path) -> None:
    """`python -m train.evaluate` writes the JSON, the markdown and the plots; the markdown shows the JSON's figures
    and the best scikit-learn model is the one with the lowest MAD."""
    from train.evaluate import main

    main(["--data", "red", "--models", "linear,svr", "--quick", "--folds", "2", "--jobs", "1", "--out", str(tmp_path)])
    assert {p.name for p in tmp_path.glob("*.png")} == {
        "predicted_vs_true.png",
        "residuals_by_grade.png",
        "interval_coverage.png",
        "reliability.png",
    }
    report = json.loads((tmp_path / "evaluation.json").read_text())
    markdown = (tmp_path / "EVALUATION.md").read_text()
    nested = report["nested"]["red"]
    for model, result in nested.items():
        mae = result["metrics"]["mae"]
        assert f"| {model}" in markdown and f"{mae['mean']:.3f} ± {mae['std']:.3f}" in markdown
    assert report["targets"]["red"]["sklearn"]["model"] == "svr"  # the only candidate besides the baseline
    assert set(report["duplicates_kept"]["red"]) == {"linear", "svr"}
    # the classifier beside its baselines, on the same outer folds, in the JSON and the markdown
    scores = report["classifier"]["red"]["scores"]
    assert len(report["classifier"]["red"]["per_fold"]["classifier"]) == 2
    assert (
        scores["classifier"]["brier"]["mean"] < scores["prior"]["brier"]["mean"] < scores["majority"]["brier"]["mean"]
    )
    assert scores["classifier"]["brier_good"]["mean"] < scores["prior"]["brier_good"]["mean"]
    assert f"{scores['classifier']['brier']['mean']:.4f}" in markdown and "(reliability.png)" in markdown


def _typed_rows() -> TypeData:
    """Two types of recording rows: column 0 is a row id unique across both types (red 0-89, white 1000-1089)."""
    x, y = _rows()
    white = x.copy()
    white[:, 0] += 1000
    return {"red": (x, y, ROWS), "white": (white, y[::-1].copy(), ROWS)}


def test_a_pooled_fold_pairs_with_each_types_own_fold() -> None:
    """Pooled outer fold i trains on red fold i's and white fold i's training rows (the per-type runs' folds, row for
    row), with the type as the last input, and is scored on their test rows; no fit of its search sees a test row."""
    data = _typed_rows()
    log: list[Fit] = []
    pooled = pooled_nested_cv(lambda params, seed: Recorder(params["shift"], seed, log), GRID, data, PLAN)
    for wine_type, (x, y, _) in data.items():
        alone = nested_cv(lambda params, seed: Recorder(params["shift"], seed, []), GRID, x, y, PLAN)
        assert len(pooled[wine_type]) == len(alone) == PLAN.folds * PLAN.repeats
        for mine, theirs in zip(pooled[wine_type], alone, strict=True):
            assert np.array_equal(mine.train, theirs.train) and np.array_equal(mine.test, theirs.test)
    for i, (red, white) in enumerate(zip(pooled["red"], pooled["white"], strict=True)):
        train = {int(r) for r in red.train} | {1000 + int(r) for r in white.train}
        test = {int(r) for r in red.test} | {1000 + int(r) for r in white.test}
        fits = [fit for fit in log if fit.rows <= train]
        assert len(fits) == len(GRID) * PLAN.inner_folds + 1  # each setting on each inner split, then the refit
        (refit,) = [fit for fit in fits if fit.rows == train]
        assert refit.seed == PLAN.seed + i and [set(ids.tolist()) for ids, _ in refit.predicted] == [test]
        for fit in fits:
            if fit is not refit:
                assert all(set(ids.tolist()) <= train for ids, _ in fit.predicted), "the search looked at test rows"
        assert red.search.params == white.search.params  # one pooled model: one setting, each type its intervals
        assert red.search.half_widths and red.search.ranges != white.search.ranges


def test_the_layout_is_pooled_only_when_not_worse_on_either_type() -> None:
    """Pooled − per type, fold by fold: within one standard error above zero on both types, pooled; worse by more on
    one, per type; better by more than one standard error is said to help."""

    def results(maes: dict[str, list[float]]) -> dict[str, ModelResult]:
        found = {}
        for wine_type, values in maes.items():
            found[wine_type] = _result("extra_trees", "sklearn", float(np.mean(values)))
            found[wine_type].per_fold.extend({"mae": v, "within_0_5": 0.6} for v in values)
        return found

    per_type = results({"red": [0.50, 0.48, 0.49, 0.51], "white": [0.53, 0.54, 0.52, 0.53]})
    helps = results({"red": [0.49, 0.47, 0.48, 0.50], "white": [0.531, 0.539, 0.521, 0.531]})
    hurts_white = results({"red": [0.49, 0.47, 0.48, 0.50], "white": [0.54, 0.55, 0.53, 0.54]})
    pooling = Pooling("extra_trees", per_type, helps)
    assert pooling.mae("red").lower and pooling.mae("white").not_worse and pooling.choice == "pooled"
    assert pooling.mae("red").mean == pytest.approx(-0.01) and pooling.mae("red").below == 4
    assert Pooling("extra_trees", per_type, hurts_white).choice == "per_type"
    assert Pooling("extra_trees", per_type, hurts_white).as_json()["white"]["pooled_minus_per_type"]["mae"]["mean"] > 0
