"""Pooled or one model per type: each pooled candidate against the per-type models on the same outer folds."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from train.evaluation.classification import ClassifierResult
from train.evaluation.results import Json, ModelResult
from wine_quality.card import Layout
from wine_quality.settings import PROJECT_ROOT

# What each kind's layouts cost to serve, measured by `python -m benchmarks.layout_cost`: kind -> layout -> wine type ->
# ms a 1,000 wines, one thread.
SERVING_COST = PROJECT_ROOT / "reports" / "pooling" / "serving_cost.json"
COST_SLACK = 1.1  # pooled may cost a type's wines this much more than one model per type: measurement noise, not cost


@dataclass(frozen=True)
class Paired:
    """A figure of the pooled model minus the per-type model's, fold by fold on the same wines: its mean, its
    standard error (std / √folds; the repeats share wines, so the true uncertainty is somewhat larger), and in how
    many folds it was below zero."""

    mean: float
    se: float
    below: int
    folds: int

    @classmethod
    def of(cls, pooled: list[float], per_type: list[float]) -> Paired:
        diff = np.asarray(pooled) - np.asarray(per_type)
        se = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
        return cls(float(np.mean(diff)), se, int(np.sum(diff < 0)), len(diff))

    @property
    def not_worse(self) -> bool:
        """Lower is better: within one standard error above zero, or below."""
        return self.mean <= self.se

    @property
    def lower(self) -> bool:
        """Lower by more than one standard error."""
        return self.mean < -self.se


def _layout(pooled_minus_per_type: Iterable[Paired]) -> Layout:
    """Pooled when it is not worse than one model per type on any type (within one standard error)."""
    return "pooled" if all(p.not_worse for p in pooled_minus_per_type) else "per_type"


def serving_cost(path: Path = SERVING_COST) -> dict[str, dict[str, dict[str, float]]]:
    """The committed serving cost of every kind's layouts (empty when it was never measured)."""
    if not path.exists():
        return {}
    cost: dict[str, dict[str, dict[str, float]]] = json.loads(path.read_text())["ms_per_1000_wines_one_thread"]
    return cost


def served_layout(accurate: Layout, cost: Mapping[str, Mapping[str, float]] | None) -> Layout:
    """The layout a kind's training script trains by default. Pooled where the evaluation found it not worse in
    accuracy (`accurate`) and it costs no type's wines more to serve than one model per type (within COST_SLACK): a
    second type of wine must cost the first neither accuracy nor speed. A per-type form answers each type's wines with
    that type's model alone, so it costs what a model of one type costs."""
    if accurate == "per_type" or not cost:
        return accurate
    slower = [t for t in cost["per_type"] if cost["pooled"][t] > COST_SLACK * cost["per_type"][t]]
    return "per_type" if slower else "pooled"


class Compared:
    """A pooled model against one model per type: the layout chosen, then each type's figures."""

    pooled: Mapping[str, object]

    @property
    def choice(self) -> Layout:
        raise NotImplementedError

    def figures(self, wine_type: str) -> Json:
        raise NotImplementedError

    def as_json(self) -> Json:
        return {"choice": self.choice, **{t: self.figures(t) for t in self.pooled}}


@dataclass(frozen=True)
class Pooling(Compared):
    """A regressor pooled against its per-type models: MAD and ±0.5 per type, paired, and the layout chosen."""

    model: str
    per_type: dict[str, ModelResult]
    pooled: dict[str, ModelResult]

    def mae(self, wine_type: str) -> Paired:
        return Paired.of(*(self._folds(wine_type, "mae")))

    def within_0_5(self, wine_type: str) -> Paired:
        return Paired.of(*(self._folds(wine_type, "within_0_5")))

    def _folds(self, wine_type: str, metric: str) -> tuple[list[float], list[float]]:
        return [f[metric] for f in self.pooled[wine_type].per_fold], [
            f[metric] for f in self.per_type[wine_type].per_fold
        ]

    @property
    def choice(self) -> Layout:
        """Pooled when its MAD is not worse than the per-type model's on any type (within one standard error)."""
        return _layout(self.mae(t) for t in self.pooled)

    def figures(self, wine_type: str) -> Json:
        t = wine_type
        return {
            "per_type": {m: self.per_type[t].metrics[m].mean for m in ("mae", "within_0_5")},
            "pooled": {m: self.pooled[t].metrics[m].mean for m in ("mae", "within_0_5")},
            "pooled_minus_per_type": {"mae": asdict(self.mae(t)), "within_0_5": asdict(self.within_0_5(t))},
        }


@dataclass(frozen=True)
class ClassifierPooling(Compared):
    """The grade classifier pooled against one per type: multi-class Brier score per type, paired."""

    per_type: dict[str, ClassifierResult]
    pooled: dict[str, ClassifierResult]

    def brier(self, wine_type: str) -> Paired:
        pooled, own = (r[wine_type].per_fold["classifier"] for r in (self.pooled, self.per_type))
        return Paired.of([f["brier"] for f in pooled], [f["brier"] for f in own])

    @property
    def choice(self) -> Layout:
        return _layout(self.brier(t) for t in self.pooled)

    def figures(self, wine_type: str) -> Json:
        t = wine_type
        pooled, own = (r[t].scores["classifier"]["brier"].mean for r in (self.pooled, self.per_type))
        return {"per_type": own, "pooled": pooled, "pooled_minus_per_type": asdict(self.brier(t))}
