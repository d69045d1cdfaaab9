"""Nested repeated K-fold evaluation of every candidate model against the paper's figures; writes the report.

One protocol for every model: exact duplicate rows removed, an outer RepeatedKFold with a fixed seed, and, inside
each outer training fold only, an inner K-fold search over the model's small grid (lowest inner MAE wins, then a refit
on the whole outer training fold). The inner out-of-fold residuals of the winning setting also give the model's
cross-conformal interval half-widths, whose coverage is then measured on the outer test fold it never saw.

    python -m train.evaluate [--data red|white|both] [--repeats N] [--folds 5] [--quick]

Writes EVALUATION.md, evaluation.json and the PNG plots to --out (default reports/; build/evaluate-quick with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.model_selection import RepeatedKFold
from threadpoolctl import threadpool_limits

from train.crossval import INTERVAL_LEVELS, Regressor, conformal_half_widths, coverage, cross_validate
from train.data import RED, WHITE, deduplicate, file_sha256, load_wines, split_wines
from train.metrics import regression_metrics
from train.network import NetConfig, NetRegressor, fit_net
from train.sklearn_model import build_pipeline
from wine_quality.schema import FEATURE_NAMES, TARGET
from wine_quality.settings import PROJECT_ROOT

DATASETS = {"red": RED, "white": WHITE}
METRICS = ("r2", "mae", "rmse", "within_0_25", "within_0_5", "within_1_0")
METRIC_LABELS = {
    "r2": "R²",
    "mae": "MAD",
    "rmse": "RMSE",
    "within_0_25": "±0.25",
    "within_0_5": "±0.5",
    "within_1_0": "±1.0",
}
SHARES = ("within_0_25", "within_0_5", "within_1_0")

# Cortez et al. (2009), Decision Support Systems 47(4):547-553: regression, 20 runs of 5-fold CV, duplicates kept.
PAPER: dict[str, dict[str, dict[str, float]]] = {
    "red": {
        "SVM": {"mae": 0.46, "within_0_5": 0.624, "within_1_0": 0.890},
        "multiple regression": {"mae": 0.50, "within_0_5": 0.591},
    },
    "white": {"SVM": {"mae": 0.45, "within_0_5": 0.646, "within_1_0": 0.868}},
}
# Issue 5's targets under repeated 5-fold CV of deduplicated rows: the paper's SVM figures for each colour (for red
# the MAD <= 0.46 and ±0.5 >= 62.4 %), the network within 0.03 MAD of the scikit-learn model, and interval
# coverage within 3 points of the nominal level.
TARGET_TORCH_GAP, TARGET_COVERAGE_GAP = 0.03, 0.03

# The network's training regime (batch, learning rate, patience) was settled before this search, outside the nested
# protocol (NET_REGIME_NOTE says how); the search below varies the shape and the regularisation only.
NET_BASE = {"batch_size": 128, "lr": 2e-3, "patience": 30, "epochs": 500}
NET_REGIME_NOTE = (
    "chosen beforehand by a plain, non-nested 2 × 5-fold CV on all the deduplicated rows (hidden (128, 64), dropout "
    "0.2): batch 128 at lr 0.002 trained 1.5-2 times faster than batch 64 at lr 0.001 at a MAD within 0.004 "
    "(red 0.522 vs 0.521, white 0.554 vs 0.550); losses other than MSE (L1, Huber), widths up to 512, depth 3, "
    "dropout up to 0.4 and AdamW were also tried then on one 5-fold split of red, none clearly better (MAD 0.506-0.531)"
)


def _net(hidden: tuple[int, ...], dropout: float, weight_decay: float) -> dict[str, Any]:
    return {**NET_BASE, "hidden": hidden, "dropout": dropout, "weight_decay": weight_decay}


@dataclass(frozen=True)
class Candidate:
    """A model family and the settings its inner search may choose from."""

    key: str  # an ESTIMATORS name, or "torch"
    label: str
    grid: tuple[dict[str, Any], ...]
    quick_grid: tuple[dict[str, Any], ...]

    @property
    def kind(self) -> str:
        return "torch" if self.key == "torch" else "sklearn"

    def make(self, seed: int, params: dict[str, Any]) -> Regressor:
        """A fresh, unfitted model with these settings, built by the training scripts' own code."""
        if self.key == "torch":
            settings = {**params, "seed": seed}
            settings["hidden"] = tuple(settings.get("hidden", NetConfig.hidden))
            return NetRegressor.from_config(NetConfig(**settings))
        pipeline: Regressor = build_pipeline(self.key, seed, params)
        return pipeline


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("linear", "linear regression (the seed's model)", ({},), ({},)),
    Candidate(
        "svr",
        "SVR, RBF kernel",
        tuple(
            {"C": c, "gamma": g, "epsilon": e}
            for c in (0.3, 1.0, 3.0)
            for g in (0.01, 0.03, 0.1, 0.3)
            for e in (0.05, 0.2)
        ),
        ({"C": 1.0, "gamma": 0.1, "epsilon": 0.05},),
    ),
    Candidate(
        "random_forest",
        "random forest, 200 trees",
        tuple({"n_estimators": 200, "max_features": f, "min_samples_leaf": m} for f in (0.33, 0.67) for m in (1, 3)),
        ({"n_estimators": 30, "max_features": 0.33},),
    ),
    Candidate(
        "extra_trees",
        "extra trees, 200 trees",
        tuple({"n_estimators": 200, "max_features": f} for f in (0.33, 0.67, 1.0)),
        ({"n_estimators": 30, "max_features": 0.5},),
    ),
    Candidate(
        "gradient_boosting",
        "histogram gradient boosting",
        tuple(
            {"learning_rate": lr, "max_leaf_nodes": leaves, "max_iter": 200, "l2_regularization": 1.0}
            for lr in (0.03, 0.1)
            for leaves in (7, 15)
        ),
        ({"learning_rate": 0.1, "max_iter": 50},),
    ),
    Candidate(
        "torch",
        "torch MLP (fit_net, early stopping)",
        (
            _net((64, 32), 0.1, 1e-4),
            _net((128, 64), 0.2, 1e-4),
            _net((128, 64), 0.3, 1e-3),
            _net((64, 64, 32), 0.2, 1e-4),
        ),
        ({**_net((64, 32), 0.1, 1e-4), "epochs": 60, "patience": 10},),
    ),
)
BY_KEY = {c.key: c for c in CANDIDATES}


def mean_std(values: Sequence[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}


def _params_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


@dataclass
class FoldRecord:
    """What one outer fold's model chose and predicted."""

    params: dict[str, Any]
    inner_mae: dict[str, float]  # inner-CV MAE of every setting tried
    half_widths: dict[str, float]
    predicted: np.ndarray


def _make_with(candidate: Candidate, params: dict[str, Any], seed: int) -> Regressor:
    return candidate.make(seed, params)


class SearchedModel:
    """A candidate whose setting is chosen on the rows it is fitted on, and nowhere else.

    fit() runs an inner K-fold cross-validation (the project's cross_validate) of every setting in the grid on the
    given rows, keeps the setting with the lowest out-of-fold MAE, derives conformal half-widths from that setting's
    out-of-fold residuals, and refits it on all the given rows. predict() appends a FoldRecord to the shared log.
    """

    def __init__(
        self,
        candidate: Candidate,
        grid: Sequence[dict[str, Any]],
        seed: int,
        inner_folds: int,
        log: list[FoldRecord],
        calibrate: bool = True,
    ) -> None:
        self.candidate, self.grid, self.seed, self.inner_folds, self.log = candidate, grid, seed, inner_folds, log
        # with one setting and no intervals wanted, there is nothing to cross-validate inside
        self.inner = calibrate or len(grid) > 1

    def fit(self, x: np.ndarray, y: np.ndarray) -> SearchedModel:
        self.params, self.inner_mae, self.half_widths = self.grid[0], {}, {}
        if self.inner:
            best: tuple[float, dict[str, Any], np.ndarray] | None = None
            for params in self.grid:
                make = partial(_make_with, self.candidate, params)
                inner = cross_validate(make, x, y, folds=self.inner_folds, repeats=1, seed=self.seed)
                mae = float(np.mean(inner.residuals))
                self.inner_mae[_params_key(params)] = mae
                if best is None or mae < best[0]:
                    best = (mae, params, inner.residuals)
            assert best is not None, "empty grid"
            self.params, self.half_widths = best[1], conformal_half_widths(best[2])
        self.model = self.candidate.make(self.seed, self.params)
        self.model.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        predicted = np.asarray(self.model.predict(x), dtype=np.float64)
        self.log.append(FoldRecord(self.params, self.inner_mae, self.half_widths, predicted))
        return predicted


def load_xy(dataset: str, keep_duplicates: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """Features and grades of a data set, deduplicated unless told otherwise, and the raw row count."""
    frame = load_wines(DATASETS[dataset])
    rows = len(frame)
    if not keep_duplicates:
        frame = deduplicate(frame)
    return frame[list(FEATURE_NAMES)].to_numpy(np.float64), frame[TARGET].to_numpy(np.float64), rows


@dataclass(frozen=True)
class Protocol:
    folds: int = 5
    repeats: int = 3
    inner_folds: int = 3
    seed: int = 42
    quick: bool = False


@contextmanager
def _single_threaded() -> Iterator[None]:
    """One thread per job: reproducible, and no oversubscription when jobs run side by side."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


def evaluate_candidate(
    dataset: str, key: str, protocol: Protocol, keep_duplicates: bool = False, fixed: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Nested repeated K-fold CV of one candidate on one data set, intervals included.

    fixed= evaluates that one setting instead of searching, on the same outer folds, without intervals.
    """
    candidate = BY_KEY[key]
    grid: Sequence[dict[str, Any]] = (
        [fixed] if fixed is not None else (candidate.quick_grid if protocol.quick else candidate.grid)
    )
    x, y, rows = load_xy(dataset, keep_duplicates)
    log: list[FoldRecord] = []
    started = time.perf_counter()
    with _single_threaded():
        cv = cross_validate(
            lambda seed: SearchedModel(candidate, grid, seed, protocol.inner_folds, log, calibrate=fixed is None),
            x,
            y,
            folds=protocol.folds,
            repeats=protocol.repeats,
            seed=protocol.seed,
        )
    seconds = time.perf_counter() - started
    splits = list(
        RepeatedKFold(n_splits=protocol.folds, n_repeats=protocol.repeats, random_state=protocol.seed).split(x)
    )
    assert len(log) == len(splits) == len(cv.per_fold), "one prediction per outer fold"
    for (_, test), record, fold in zip(splits, log, cv.per_fold, strict=True):
        # the record belongs to this fold: its predictions reproduce the fold's metrics
        assert np.isclose(regression_metrics(y[test], record.predicted)["mae"], fold["mae"])
    summary = cv.summary()
    # per run (one repeat = every row predicted once): the paper's unit
    per_run: list[dict[str, float]] = []
    oof = np.empty((protocol.repeats, len(y)))
    for i, ((_, test), record) in enumerate(zip(splits, log, strict=True)):
        oof[i // protocol.folds, test] = record.predicted
    for run in range(protocol.repeats):
        per_run.append(regression_metrics(y, oof[run]))
    intervals = _intervals(y, splits, log) if log[0].half_widths else {}
    chosen = Counter(_params_key(r.params) for r in log)
    inner = {k: mean_std([r.inner_mae[k] for r in log]) for k in log[0].inner_mae}
    return {
        "dataset": dataset,
        "model": key,
        "label": candidate.label,
        "kind": candidate.kind,
        "duplicates": "kept" if keep_duplicates else "removed",
        "rows": {"raw": rows, "used": len(y)},
        "metrics": {name: summary[name] for name in METRICS},
        "metrics_per_run": {name: mean_std([m[name] for m in per_run]) for name in METRICS},
        "per_fold": [{name: round(fold[name], 5) for name in METRICS if name in fold} for fold in cv.per_fold],
        "intervals": intervals,
        "search": {
            "grid": [dict(p) for p in grid],
            "inner_mae": inner,
            "chosen": dict(chosen.most_common()),
            "modal": json.loads(chosen.most_common(1)[0][0]),
        },
        "seconds": round(seconds, 1),
        "_oof": oof[0],  # repeat 0's out-of-fold predictions, for the plots (not written to the JSON)
        "_y": y,
    }


def _intervals(y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], log: list[FoldRecord]) -> dict[str, Any]:
    """Measured coverage of each outer fold's conformal intervals on that fold's test rows, per level."""
    levels = [f"{level:g}" for level in INTERVAL_LEVELS]
    fold_coverage = {
        lv: [coverage(y[test], r.predicted, r.half_widths[lv]) for (_, test), r in zip(splits, log, strict=True)]
        for lv in levels
    }
    abs_error = np.concatenate([np.abs(y[test] - r.predicted) for (_, test), r in zip(splits, log, strict=True)])
    widths = {
        lv: np.concatenate([np.full(len(test), r.half_widths[lv]) for (_, test), r in zip(splits, log, strict=True)])
        for lv in levels
    }
    grade = np.concatenate([y[test] for test in (t for _, t in splits)]).astype(int)
    return {
        lv: {
            "coverage": mean_std(fold_coverage[lv]),
            "coverage_pooled": float(np.mean(abs_error <= widths[lv])),
            "half_width": mean_std([r.half_widths[lv] for r in log]),
            # the intervals are marginal: they cover the common grades more, the rare ones less
            "by_grade": {
                str(g): {
                    "rows": int(np.sum(grade == g)),
                    "coverage": float(np.mean((abs_error <= widths[lv])[grade == g])),
                }
                for g in np.unique(grade)
            },
        }
        for lv in levels
    }


def learning_curve(dataset: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Validation MSE per epoch of fit_net on the training rows of the training scripts' split (test size 0.2)."""
    frame = load_wines(DATASETS[dataset])
    split = split_wines(frame, 0.2, seed)
    config = NetConfig(**{**params, "seed": seed})
    with _single_threaded():
        net, history = fit_net(split.x_train, split.y_train, config, progress=False)
    val_mse = history["val_mse"]
    test = regression_metrics(split.y_test, net.predict(split.x_test))
    return {
        "dataset": dataset,
        "config": {**asdict(config), "hidden": list(config.hidden)},
        "val_mse": [float(v) for v in val_mse],
        "best_epoch": history["best_epoch"],
        "epochs_run": history["epochs_run"],
        "test_metrics": test,
    }


# ---------------------------------------------------------------------------------------------------- the run


def _task(name: str, fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    print(f"  done {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return name, result


def run(datasets: Sequence[str], models: Sequence[str], protocol: Protocol, jobs: int) -> dict[str, Any]:
    """Every candidate on every data set (nested CV), then the duplicates-kept runs and the learning curves."""
    # the slowest first, so that two jobs finish together
    cost = {"torch": 6, "svr": 4, "random_forest": 4, "extra_trees": 3, "gradient_boosting": 2, "linear": 0}
    order = sorted(
        ((d, m) for d in datasets for m in models), key=lambda t: -(3 if t[0] == "white" else 1) * cost[t[1]]
    )
    parallel = Parallel(n_jobs=jobs, verbose=0)
    print(f"nested CV: {len(order)} runs on {jobs} job(s)", file=sys.stderr, flush=True)
    nested = dict(parallel(delayed(_task)(f"{d}/{m}", evaluate_candidate, d, m, protocol) for d, m in order))
    results: dict[str, dict[str, dict[str, Any]]] = {d: {} for d in datasets}
    for name, result in nested.items():
        d, m = name.split("/")
        results[d][m] = result

    # Second stage, with settings fixed by the first: the recommended settings without a search, the paper's
    # protocol (duplicates kept) and the learning curves.
    rec = recommended(results)
    later: list[tuple[str, Callable[..., dict[str, Any]], tuple[Any, ...], dict[str, Any]]] = []
    for d in datasets:
        for m, params in rec.values():
            later.append((f"{d}/{m}/fixed", evaluate_candidate, (d, m, protocol), {"fixed": params}))
        sk = {m: r for m, r in results[d].items() if r["kind"] == "sklearn"}
        kept = {"linear", "svr", best_sklearn(sk) or "linear"} & set(sk)
        for m in sorted(kept):
            fixed = results[d][m]["search"]["modal"]
            later.append(
                (f"{d}/{m}/kept", evaluate_candidate, (d, m, protocol), {"keep_duplicates": True, "fixed": fixed})
            )
        if "torch" in rec:
            later.append((f"{d}/curve/recommended", learning_curve, (d, rec["torch"][1], protocol.seed), {}))
            if d == "red":
                default = {k: v for k, v in asdict(NetConfig()).items() if k != "seed"}
                if protocol.quick:
                    default.update(epochs=60, patience=10)
                later.append((f"{d}/curve/current default", learning_curve, (d, default, protocol.seed), {}))
    print(f"second stage: {len(later)} runs", file=sys.stderr, flush=True)
    done = dict(parallel(delayed(_task)(name, fn, *args, **kwargs) for name, fn, args, kwargs in later))
    staged: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
        what: {d: {} for d in datasets} for what in ("fixed", "kept", "curve")
    }
    for name, result in done.items():
        d, m, what = name.split("/")
        if m == "curve":
            staged["curve"][d][what] = result
        else:
            staged[what][d][m] = result
    return {
        "nested": results,
        "recommended": {"settings": rec, "figures": staged["fixed"]},
        "duplicates_kept": staged["kept"],
        "curves": staged["curve"],
    }


def best_sklearn(results: dict[str, dict[str, Any]]) -> str | None:
    """The scikit-learn candidate with the lowest mean MAD among these results, if any."""
    sk = [m for m, r in results.items() if r["kind"] == "sklearn"]
    return min(sk, key=lambda m: results[m]["metrics"]["mae"]["mean"]) if sk else None


def versions() -> dict[str, str]:
    names = ("numpy", "scikit-learn", "torch")
    return {"python": platform.python_version(), **{n: importlib_metadata.version(n) for n in names}}


def _public(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Evaluate, write the report, print where it went."""
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=("red", "white", "both"), default="both", help="default: %(default)s")
    p.add_argument("--repeats", type=int, help="outer repeats (default 3; 1 with --quick)")
    p.add_argument("--folds", type=int, default=5, help="outer folds (default %(default)s)")
    p.add_argument("--inner-folds", type=int, default=3, help="inner search folds (default %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="seed of the folds and the models (default %(default)s)")
    p.add_argument("--models", default=",".join(BY_KEY), help="comma-separated subset of: %(default)s")
    p.add_argument("--jobs", type=int, default=2, help="runs side by side, one thread each (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="a smoke run: one repeat, one setting per model, few trees")
    p.add_argument("--out", type=Path, help="report folder (default reports/, or build/evaluate-quick with --quick)")
    args = p.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(BY_KEY))
    if unknown:
        p.error(f"unknown model(s) {unknown}; choose from {sorted(BY_KEY)}")
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1 or args.folds < 2 or args.inner_folds < 2 or args.jobs < 1:
        p.error("--repeats and --jobs must be at least 1, --folds and --inner-folds at least 2")
    out = args.out or (PROJECT_ROOT / ("build/evaluate-quick" if args.quick else "reports"))
    datasets = ["red", "white"] if args.data == "both" else [args.data]
    protocol = Protocol(
        folds=args.folds, repeats=repeats, inner_folds=args.inner_folds, seed=args.seed, quick=args.quick
    )

    started = time.perf_counter()
    results = run(datasets, models, protocol, args.jobs)
    wall = time.perf_counter() - started
    report = {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m train.evaluate " + " ".join(argv if argv is not None else sys.argv[1:]),
        "protocol": {**asdict(protocol), "selection": "lowest inner out-of-fold MAE", "levels": list(INTERVAL_LEVELS)},
        "wall_seconds": round(wall, 1),
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "versions": versions(),
        "data": {d: {"file": DATASETS[d].name, "sha256": file_sha256(DATASETS[d])} for d in datasets},
        "paper": {d: PAPER[d] for d in datasets},
        "targets": targets(results["nested"]),
        "recommended": {
            "settings": {k: {"model": m, "params": p} for k, (m, p) in results["recommended"]["settings"].items()},
            "figures": {
                d: {m: _public(r) for m, r in rs.items()} for d, rs in results["recommended"]["figures"].items()
            },
        },
        "nested": {d: {m: _public(r) for m, r in rs.items()} for d, rs in results["nested"].items()},
        "duplicates_kept": {d: {m: _public(r) for m, r in rs.items()} for d, rs in results["duplicates_kept"].items()},
        "learning_curves": results["curves"],
    }
    write_report(out, report, results)
    print(json.dumps({"out": str(out), "wall_seconds": report["wall_seconds"], "targets": report["targets"]}, indent=2))
    return report


def targets(nested: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Issue 5's targets, reached or not, for each data set evaluated."""
    found: dict[str, Any] = {}
    for d, rs in nested.items():
        entry: dict[str, Any] = {}
        best = best_sklearn({m: r for m, r in rs.items() if r["kind"] == "sklearn" and m != "linear"})
        if best is not None:
            paper = PAPER[d]["SVM"]
            ours = {k: rs[best]["metrics"][k]["mean"] for k in paper}
            reached = {k: ours[k] <= v if k == "mae" else ours[k] >= v for k, v in paper.items()}
            entry["sklearn"] = {"model": best, "ours": ours, "paper_svm": paper, "reached": reached}
            if "torch" in rs:
                gap = rs["torch"]["metrics"]["mae"]["mean"] - ours["mae"]
                entry["torch"] = {
                    "mae": rs["torch"]["metrics"]["mae"]["mean"],
                    "gap": gap,
                    "reached": gap <= TARGET_TORCH_GAP,
                }
        entry["coverage_within_3_points"] = {
            m: all(
                abs(r["intervals"][f"{lv:g}"]["coverage_pooled"] - lv) <= TARGET_COVERAGE_GAP for lv in INTERVAL_LEVELS
            )
            for m, r in rs.items()
        }
        found[d] = entry
    return found


def recommended(nested: dict[str, dict[str, dict[str, Any]]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """The training scripts' defaults this run suggests: on red (else the one data set run), the scikit-learn model
    with the lowest nested MAD and the setting its search chose most often, and the network's most chosen setting."""
    source = nested.get("red") or next(iter(nested.values()))
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    sk = {m: r for m, r in source.items() if r["kind"] == "sklearn" and m != "linear"}
    if sk:
        best = best_sklearn(sk)
        assert best is not None
        out["sklearn"] = (best, source[best]["search"]["modal"])
    if "torch" in source:
        out["torch"] = ("torch", source["torch"]["search"]["modal"])
    return out


# ------------------------------------------------------------------------------------------------- the report


SHOWN = 5  # settings listed per search in the markdown


def _pct(stat: dict[str, float]) -> str:
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f} %"


def _num(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def _cell(name: str, stat: dict[str, float]) -> str:
    return _pct(stat) if name in SHARES else _num(stat)


def _ours(name: str, value: float) -> str:
    # one digit more than the paper gives, so that "reached" can be read off the figures
    return f"{100 * value:.2f} %" if name in SHARES else f"{value:.3f}"


def _paper_cell(name: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f} %" if name in SHARES else f"{value:.2f}"


def _setting(params: dict[str, Any]) -> str:
    if not params:
        return "(none)"
    if "hidden" in params:  # a network: its shape and regularisation; the training regime is stated apart
        params = {k: params[k] for k in ("hidden", "dropout", "weight_decay") if k in params}
    return ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v}" for k, v in params.items())


def write_report(out: Path, report: dict[str, Any], results: dict[str, Any]) -> None:
    """evaluation.json, the PNG plots and EVALUATION.md in out/."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report, indent=1) + "\n")
    plots = _plots(out, report, results)
    (out / "EVALUATION.md").write_text(_markdown(report, plots))


def _shown_models(rs: dict[str, dict[str, Any]]) -> list[str]:
    """Linear, the best scikit-learn model and the network: the models the plots show."""
    shown = [m for m in ("linear",) if m in rs]
    sk = {m: r for m, r in rs.items() if r["kind"] == "sklearn" and m != "linear"}
    if sk:
        shown.append(best_sklearn(sk) or "")
    if "torch" in rs:
        shown.append("torch")
    return shown


def _plots(out: Path, report: dict[str, Any], results: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nested = results["nested"]
    datasets = list(nested)
    files: dict[str, str] = {}
    rng = np.random.default_rng(0)

    # predicted vs true grade, repeat 0's out-of-fold predictions
    cols = max(len(_shown_models(nested[d])) for d in datasets)
    fig, axes = plt.subplots(len(datasets), cols, figsize=(4 * cols, 3.8 * len(datasets)), squeeze=False)
    for row, d in enumerate(datasets):
        for col, m in enumerate(_shown_models(nested[d])):
            ax, r = axes[row][col], nested[d][m]
            y, p = r["_y"], r["_oof"]
            ax.scatter(y + rng.uniform(-0.25, 0.25, len(y)), p, s=4, alpha=0.25, color="tab:blue", rasterized=True)
            grades = np.unique(y)
            ax.plot(grades, [p[y == g].mean() for g in grades], "o-", color="tab:red", label="mean prediction")
            ax.plot([2.5, 9.5], [2.5, 9.5], "k--", lw=1, label="prediction = grade")
            ax.fill_between([2.5, 9.5], [2.0, 9.0], [3.0, 10.0], color="grey", alpha=0.12, label="±0.5")
            ax.set(xlim=(2.5, 9.5), ylim=(2.5, 9.5), xlabel="true grade (jittered)", ylabel="predicted grade")
            mae = r["metrics"]["mae"]["mean"]
            ax.set_title(f"{d}: {m} (MAD {mae:.3f})", fontsize=10)
            if row == 0 and col == 0:
                ax.legend(fontsize=7, loc="upper left")
        for col in range(len(_shown_models(nested[d])), cols):
            axes[row][col].axis("off")
    fig.suptitle("Predicted vs true grade: out-of-fold predictions of the first repeat, nested CV, deduplicated")
    fig.tight_layout()
    files["predicted_vs_true"] = "predicted_vs_true.png"
    fig.savefig(out / files["predicted_vs_true"], dpi=110)
    plt.close(fig)

    # residuals by grade
    fig, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 4.2), squeeze=False)
    for ax, d in zip(axes[0], datasets, strict=True):
        shown = _shown_models(nested[d])
        y = nested[d][shown[0]]["_y"]
        grades = np.unique(y).astype(int)
        width = 0.8 / len(shown)
        for i, m in enumerate(shown):
            r = nested[d][m]
            data = [r["_oof"][y == g] - g for g in grades]
            pos = grades - 0.4 + width * (i + 0.5)
            box = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=False)
            color = plt.get_cmap("tab10")(i)
            for patch in box["boxes"]:
                patch.set_facecolor(color)
                patch.set_alpha(0.6)
            ax.plot([], [], "s", color=color, label=m)
        ax.axhline(0, color="k", lw=1)
        ax.axhspan(-0.5, 0.5, color="grey", alpha=0.12)
        ax.set_xticks(grades, [f"{g}\n(n={int(np.sum(y == g))})" for g in grades])
        ax.set(xlabel="true grade", ylabel="prediction − grade", title=f"{d}: residuals by grade (whiskers 1.5 IQR)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    files["residuals_by_grade"] = "residuals_by_grade.png"
    fig.savefig(out / files["residuals_by_grade"], dpi=110)
    plt.close(fig)

    # torch learning curves
    curves = [(d, name, c) for d, cs in results["curves"].items() for name, c in cs.items()]
    if curves:
        fig, (full, zoom) = plt.subplots(1, 2, figsize=(13, 4.5))
        lowest = min(min(c["val_mse"]) for _, _, c in curves)
        for d, name, c in curves:
            cfg = c["config"]
            label = f"{d}, {name}: hidden {tuple(cfg['hidden'])}, dropout {cfg['dropout']}, batch {cfg['batch_size']}"
            epochs = range(1, len(c["val_mse"]) + 1)
            for ax in (full, zoom):
                (line,) = ax.plot(epochs, c["val_mse"], lw=1.2, label=label)
                ax.plot(c["best_epoch"], c["val_mse"][c["best_epoch"] - 1], "o", color=line.get_color())
        full.set(xlabel="epoch", ylabel="validation MSE", yscale="log", title="all epochs (log scale)")
        zoom.set(xlabel="epoch", ylim=(0.9 * lowest, 2.0 * lowest), title="near the best epoch")
        full.legend(fontsize=7)
        fig.suptitle(
            "torch learning curves on fit_net's early-stopping split (dot: best epoch, kept; training stops "
            "`patience` epochs later)",
            fontsize=10,
        )
        fig.tight_layout()
        files["learning_curve"] = "learning_curve.png"
        fig.savefig(out / files["learning_curve"], dpi=110)
        plt.close(fig)

    # interval coverage
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.5 * len(datasets), 4.2), squeeze=False)
    levels = list(INTERVAL_LEVELS)
    for ax, d in zip(axes[0], datasets, strict=True):
        models = list(nested[d])
        width = 0.8 / len(models)
        for i, m in enumerate(models):
            iv = nested[d][m]["intervals"]
            xs = np.arange(len(levels)) - 0.4 + width * (i + 0.5)
            measured = [100 * iv[f"{lv:g}"]["coverage_pooled"] for lv in levels]
            spread = [100 * iv[f"{lv:g}"]["coverage"]["std"] for lv in levels]
            ax.bar(xs, np.array(measured) - 70, width * 0.9, bottom=70, yerr=spread, label=m, capsize=2)
        for j, lv in enumerate(levels):
            ax.hlines(100 * lv, j - 0.45, j + 0.45, color="k", lw=1.5)
            ax.fill_between([j - 0.45, j + 0.45], 100 * lv - 3, 100 * lv + 3, color="grey", alpha=0.2, lw=0)
        ax.set_xticks(range(len(levels)), [f"nominal {100 * lv:.0f} %" for lv in levels])
        ax.set(ylim=(70, 100), ylabel="measured coverage on outer test folds (%)")
        ax.set_title(f"{d}: interval coverage (black: nominal, grey: ±3 points, bars: fold std)", fontsize=10)
        ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    files["interval_coverage"] = "interval_coverage.png"
    fig.savefig(out / files["interval_coverage"], dpi=110)
    plt.close(fig)
    return files


def _markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    proto = report["protocol"]
    nested, kept = report["nested"], report["duplicates_kept"]
    datasets = list(nested)
    folds, repeats, inner = proto["folds"], proto["repeats"], proto["inner_folds"]
    n_outer = folds * repeats
    lines: list[str] = [
        "# Model evaluation against the published results",
        "",
        f"Generated by `make evaluate` (`{report['command'].strip()}`) on {report['generated']}, "
        f"{report['wall_seconds'] / 60:.1f} min wall on {report['cpus']} CPUs with {report['jobs']} job(s). "
        "Do not edit by hand: rerun the command. Machine-readable figures: `evaluation.json`.",
        "",
    ]
    if proto["quick"]:
        lines += [
            "> **Quick smoke run** (`--quick`): one setting per model, few trees, short training. The figures "
            "below are not the evaluation.",
            "",
        ]
    lines += [
        "## Protocol",
        "",
        "- **Data**: exact duplicate rows removed before any split ("
        + ", ".join(
            f"{d} {nested[d][next(iter(nested[d]))]['rows']['raw']} → "
            f"{nested[d][next(iter(nested[d]))]['rows']['used']} rows"
            for d in datasets
        )
        + ").",
        f"- **Outer loop**: `RepeatedKFold({folds} folds × {repeats} repeats, seed {proto['seed']})` — the same "
        f"{n_outer} train/test splits for every model (`train.crossval.cross_validate`).",
        f"- **Inner search**: inside each outer training fold only, every setting of the model's grid is scored by a "
        f"{inner}-fold cross-validation of those rows (again `cross_validate`); the lowest out-of-fold MAD wins and is "
        "refitted on the whole outer training fold, then scored once on the outer test fold. The test fold never "
        "influences a choice.",
        f"- **Figures**: mean ± standard deviation over the {n_outer} outer test folds (`CrossValidation.summary`). "
        "Shares are of continuous predictions within ±0.25, ±0.5, ±1.0 of the true grade (the paper's tolerance "
        "T; ±0.5 is the same as rounding the prediction to the nearest grade). `evaluation.json` also holds the "
        "mean ± std over runs (one repeat = every row predicted once), the paper's unit.",
        "- **Intervals**: cross-conformal. The winning setting's inner out-of-fold absolute residuals give the "
        "half-width at each level (`conformal_half_widths`: the ⌈(n+1)·level⌉-th smallest); the coverage of "
        "prediction ± half-width is measured on the outer test fold (`coverage`).",
        "",
        "## Results beside the paper",
        "",
    ]
    for d in datasets:
        rs = nested[d]
        best = best_sklearn({m: r for m, r in rs.items() if r["kind"] == "sklearn" and m != "linear"})
        lines += [
            f"### {d.capitalize()} wine",
            "",
            "| model | protocol | R² | MAD | RMSE | ±0.25 | ±0.5 | ±1.0 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, figures in PAPER[d].items():
            cells = " | ".join(_paper_cell(k, figures.get(k)) for k in METRICS)
            lines.append(f"| paper: {name} | 20 × 5-fold, duplicates kept | {cells} |")
        for m, r in sorted(rs.items(), key=lambda t: t[1]["metrics"]["mae"]["mean"]):
            cells = " | ".join(_cell(k, r["metrics"][k]) for k in METRICS)
            mark = " **(chosen scikit-learn)**" if m == best else ""
            lines.append(f"| {m}{mark} | nested {folds}-fold × {repeats}, deduplicated | {cells} |")
        lines.append("")
        if best is not None:
            lines += [_paired(rs, best), ""]
    lines += ["### Issue 5's targets", ""]

    def ok(reached: bool) -> str:
        return "reached" if reached else "**not reached**"

    for d, t in report["targets"].items():
        if "sklearn" in t:
            sk = t["sklearn"]
            parts = [
                f"{METRIC_LABELS[k]} {_ours(k, sk['ours'][k])} vs {'≤' if k == 'mae' else '≥'} "
                f"{_paper_cell(k, v)} {ok(sk['reached'][k])}"
                for k, v in sk["paper_svm"].items()
            ]
            lines.append(
                f"- {d}: best scikit-learn model `{sk['model']}` against the paper's SVM: " + "; ".join(parts) + "."
            )
            if "torch" in t:
                tt = t["torch"]
                lines.append(
                    f"  torch MAD {tt['mae']:.3f}, {tt['gap']:+.3f} from it vs ≤ +{TARGET_TORCH_GAP}: "
                    f"{ok(tt['reached'])}."
                )
        cov = t["coverage_within_3_points"]
        good = [m for m, v in cov.items() if v]
        bad = [m for m, v in cov.items() if not v]
        lines.append(
            f"  Interval coverage within 3 points of nominal at 80/90/95 %: {', '.join(good) or 'none'}"
            + (f"; not: {', '.join(bad)}" if bad else "")
            + "."
        )
    kept_lines = []
    for d in datasets:
        paper = PAPER[d]["SVM"]
        for m, r in sorted(kept.get(d, {}).items(), key=lambda t: t[1]["metrics"]["mae"]["mean"]):
            if m == "linear":
                continue
            k = r["metrics"]
            verdict = "at or beyond" if k["mae"]["mean"] <= paper["mae"] + 0.005 else "short of"
            kept_lines.append(
                f"- {d}, {m}: MAD {k['mae']['mean']:.3f}, ±0.5 {100 * k['within_0_5']['mean']:.1f} %, "
                f"±1.0 {100 * k['within_1_0']['mean']:.1f} %: {verdict} the paper's SVM "
                f"({_paper_cell('mae', paper['mae'])}, {_paper_cell('within_0_5', paper['within_0_5'])}, "
                f"{_paper_cell('within_1_0', paper['within_1_0'])})."
            )
    lines += [
        "",
        "Much of the gap to the paper is the protocol. With the duplicates kept, a wine's copy is often in the "
        "training folds when the wine is tested, and the more closely a model can recall its training rows, the "
        "more that flatters it. Our models under the paper's protocol (settings as below):",
        "",
        *kept_lines,
        "",
        "### The same models with the duplicates kept (the paper's protocol)",
        "",
        f"Settings fixed to the ones the deduplicated search chose most often (no search inside these folds), "
        f"{folds}-fold × {repeats} on the raw rows.",
        "",
        "| data | model | MAD (kept) | MAD (removed) | ±0.5 (kept) | ±0.5 (removed) | ±1.0 (kept) | R² (kept) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in datasets:
        for m, r in kept.get(d, {}).items():
            dd = nested[d][m]["metrics"]
            k = r["metrics"]
            lines.append(
                f"| {d} | {m} ({_setting(r['search']['modal'])}) | {_num(k['mae'])} | {_num(dd['mae'])} | "
                f"{_pct(k['within_0_5'])} | {_pct(dd['within_0_5'])} | {_pct(k['within_1_0'])} | "
                f"{_num(k['r2'])} |"
            )
    lines += ["", "## What each search explored and what it chose", ""]
    for d in datasets:
        lines += [
            f"### {d.capitalize()}",
            "",
            "| model | settings tried, best first (inner MAD, mean over outer folds) | "
            f"chosen (times of {n_outer}) | run time |",
            "|---|---|---|---|",
        ]
        for m, r in nested[d].items():
            ranked = sorted(r["search"]["inner_mae"].items(), key=lambda kv: kv[1]["mean"])
            tried = "<br>".join(f"{_setting(json.loads(k))}: {v['mean']:.3f}" for k, v in ranked[:SHOWN])
            if len(ranked) > SHOWN:
                tried += f"<br>… {len(ranked) - SHOWN} more, up to {ranked[-1][1]['mean']:.3f} (evaluation.json)"
            chosen = "<br>".join(f"{_setting(json.loads(k))}: {n}" for k, n in r["search"]["chosen"].items())
            lines.append(f"| {m} | {tried} | {chosen} | {r['seconds']:.0f} s |")
        lines.append("")
    lines += [
        f"Fixed in every network setting: batch {NET_BASE['batch_size']}, Adam, learning rate {NET_BASE['lr']}, "
        f"MSE loss, at most {NET_BASE['epochs']} epochs, early stopping with patience {NET_BASE['patience']} on "
        f"fit_net's own 15 % validation split of the training rows; {NET_REGIME_NOTE}.",
        "",
        "## Prediction intervals",
        "",
        "Measured coverage of prediction ± half-width on the outer test folds, pooled over all test rows "
        "(in brackets: the standard deviation over the outer folds), and the mean half-width in grades.",
        "",
    ]
    levels = [f"{lv:g}" for lv in INTERVAL_LEVELS]
    lines += [
        "| data | model | " + " | ".join(f"{100 * float(lv):.0f} %: coverage | half-width" for lv in levels) + " |",
        "|---|---|" + "---|---|" * len(levels),
    ]
    for d in datasets:
        for m, r in nested[d].items():
            iv = r["intervals"]
            cells = " | ".join(
                f"{100 * iv[lv]['coverage_pooled']:.1f} % (± {100 * iv[lv]['coverage']['std']:.1f}) | "
                f"±{iv[lv]['half_width']['mean']:.2f}"
                for lv in levels
            )
            lines.append(f"| {d} | {m} | {cells} |")
    lines += [
        "",
        f"![interval coverage]({plots['interval_coverage']})",
        "",
        "The coverage is marginal: one half-width for every wine, so the stated level holds over wines like "
        "the data's, not for each grade. The common middle grades are covered more often than nominal and the rare "
        "extremes far less, because the models pull them towards the mean (next section). At the 90 % level, "
        "by true grade (rows counted over all repeats):",
        "",
    ]
    for d in datasets:
        shown = [m for m in _shown_models(nested[d]) if m != "linear"]
        grades = sorted(nested[d][shown[0]]["intervals"]["0.9"]["by_grade"], key=int) if shown else []
        if not grades:
            continue
        lines += [
            f"| {d}: grade | " + " | ".join(grades) + " |",
            "|---|" + "---|" * len(grades),
            "| rows | "
            + " | ".join(str(nested[d][shown[0]]["intervals"]["0.9"]["by_grade"][g]["rows"]) for g in grades)
            + " |",
        ]
        for m in shown:
            by_grade = nested[d][m]["intervals"]["0.9"]["by_grade"]
            lines.append(f"| {m} | " + " | ".join(f"{100 * by_grade[g]['coverage']:.0f} %" for g in grades) + " |")
        lines.append("")
    lines += [
        "## Plots",
        "",
        f"![predicted vs true]({plots['predicted_vs_true']})",
        "",
        "All models pull predictions towards the mean grade: the rare good (7-8) and poor (3-4) wines are "
        "under- and over-predicted. This is the largest error, and the reason the ±1.0 share is far from 100 %.",
        "",
        f"![residuals by grade]({plots['residuals_by_grade']})",
        "",
    ]
    if "learning_curve" in plots:
        lines += [f"![torch learning curve]({plots['learning_curve']})", ""]
        for d, cs in report["learning_curves"].items():
            for name, c in cs.items():
                tm = c["test_metrics"]
                lines.append(
                    f"- {d}, {name} setting ({_setting(c['config'])}, batch {c['config']['batch_size']}, "
                    f"lr {c['config']['lr']}, patience {c['config']['patience']}): "
                    f"best epoch {c['best_epoch']} of {c['epochs_run']} run; on the training scripts' "
                    f"20 % test split (seed {proto['seed']}) MAD {tm['mae']:.3f}, ±0.5 "
                    f"{100 * tm['within_0_5']:.1f} %."
                )
        lines.append("")
    lines += _protocol_differences(report)
    lines += _recommended(report)
    lines += [
        "",
        "## Versions",
        "",
        ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + "; data "
        + ", ".join(f"{v['file']} sha256 {v['sha256'][:12]}…" for v in report["data"].values()),
        "",
    ]
    return "\n".join(lines)


def _paired(rs: dict[str, dict[str, Any]], best: str) -> str:
    """The chosen model against each other one, fold by fold: the folds are the same, so the differences are paired."""
    ours = np.array([f["mae"] for f in rs[best]["per_fold"]])
    parts = []
    for m, r in sorted(rs.items(), key=lambda t: t[1]["metrics"]["mae"]["mean"]):
        if m == best:
            continue
        diff = ours - np.array([f["mae"] for f in r["per_fold"]])
        parts.append(
            f"{m} {diff.mean():+.3f} ± {diff.std(ddof=1):.3f} (lower in {int(np.sum(diff < 0))} of {len(diff)})"
        )
    return (
        f"Paired over the same outer folds, `{best}`'s MAD minus each other model's (mean ± std over folds; in how "
        "many folds it was lower): " + "; ".join(parts) + "."
    )


def _recommended(report: dict[str, Any]) -> list[str]:
    rec = report["recommended"]
    proto = report["protocol"]
    lines = ["## Recommended training defaults", ""]
    for kind, chosen in rec["settings"].items():
        params = chosen["params"]
        text = f"`{chosen['model']}` with {_setting(params)}"
        if kind == "torch":
            text = (
                f"{_setting(params)}, batch {params['batch_size']}, lr {params['lr']}, patience {params['patience']}, "
                f"at most {params['epochs']} epochs"
            )
        lines.append(f"- {kind}: {text}: the red search's most frequent choice.")
    lines += [
        "",
        f"The same settings, fixed (no search), on the same outer folds ({proto['folds']}-fold × {proto['repeats']}, "
        "deduplicated). They were chosen with all the red rows in view, so on red these figures lean slightly "
        "optimistic; the nested figures above are the honest ones. On white they show what the training scripts' "
        "defaults give there.",
        "",
        "| data | model | " + " | ".join(METRIC_LABELS[k] for k in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for d, rs in rec["figures"].items():
        for m, r in rs.items():
            lines.append(f"| {d} | {m} | " + " | ".join(_cell(k, r["metrics"][k]) for k in METRICS) + " |")
    return [*lines, ""]


def _protocol_differences(report: dict[str, Any]) -> list[str]:
    proto = report["protocol"]
    return [
        "## Where the protocols differ",
        "",
        "| | Cortez et al. (2009) | here |",
        "|---|---|---|",
        "| duplicate rows | kept (red 1599, white 4898 rows) | removed before splitting (red 1359, white 3961); a "
        "duplicate in both a training and a test fold lets a model recall the answer |",
        f"| runs | 20 × 5-fold | {proto['repeats']} × {proto['folds']}-fold (time: every run nests a search); "
        "the std shows the spread |",
        "| spread reported | 95 % confidence interval of the mean over runs | std over outer folds (table), std over "
        "runs in `evaluation.json` |",
        "| SVM search | Gaussian kernel width γ searched, C and ε from heuristics; simultaneous input selection "
        "guided by sensitivity analysis | grid over C, γ and ε on standardised inputs, all 11 inputs always |",
        "| search data | inside the training data of each run | inside each outer training fold, "
        f"{proto['inner_folds']}-fold, lowest MAD |",
        "| other models | multiple regression, neural network (one hidden layer) | linear regression, SVR, random "
        "forest, extra trees, histogram gradient boosting, a PyTorch MLP |",
        "| metrics on | continuous predictions at tolerance T (REC) | the same: ±0.5 equals rounding to the nearest "
        "grade |",
        "| grids | their own | ours were narrowed by a first, non-nested look at all the rows (red and white), "
        "and the network's batch size, learning rate and patience fixed then; this leaks a little of the test "
        "folds into the grid's design, not into any choice within it |",
        "",
    ]


if __name__ == "__main__":
    main()
