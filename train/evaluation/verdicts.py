"""The paper's figures, issue 5's targets, and which models this run finds best and recommends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from train.evaluation.candidates import BY_KEY, SERVED_NETWORK, Kind
from train.evaluation.results import ByModel, Json, ModelResult, Recommendation
from wine_quality.card import INTERVAL_LEVELS

# Cortez et al. (2009), Decision Support Systems 47(4):547-553: regression, 20 runs of 5-fold CV, duplicates kept.
PAPER: dict[str, dict[str, dict[str, float]]] = {
    "red": {
        "SVM": {"mae": 0.46, "within_0_5": 0.624, "within_1_0": 0.890},
        "multiple regression": {"mae": 0.50, "within_0_5": 0.591},
    },
    "white": {"SVM": {"mae": 0.45, "within_0_5": 0.646, "within_1_0": 0.868}},
}
# Issue 5's targets under repeated 5-fold CV of deduplicated rows: the paper's SVM figures for each colour (for red
# the MAD <= 0.46 and ±0.5 >= 62.4 %), the served network within 0.03 MAD of the scikit-learn model, and
# interval coverage within 3 points of the nominal level.
TARGET_TORCH_GAP, TARGET_COVERAGE_GAP = 0.03, 0.03


def servable(model: str) -> bool:
    """Whether the training scripts can train this candidate (issue 14's accuracy push is measured, not served)."""
    return model not in BY_KEY or BY_KEY[model].servable


def best_sklearn(results: Mapping[str, ModelResult], linear: bool = False) -> str | None:
    """The servable scikit-learn model with the lowest mean MAD (the first among equals), linear regression only if
    asked."""
    names = [m for m, r in results.items() if r.kind == "sklearn" and servable(m) and (linear or m != "linear")]
    return min(names, key=lambda m: results[m].mae) if names else None


def shown_models(results: Mapping[str, ModelResult]) -> list[str]:
    """Linear regression, the best other scikit-learn model and the network: the models the plots show."""
    best = best_sklearn(results)
    return [m for m in ("linear", best, "torch") if m is not None and m in results]


@dataclass(frozen=True)
class PaperComparison:
    """The best scikit-learn model's figures against the paper's SVM."""

    model: str
    ours: dict[str, float]
    paper_svm: dict[str, float]

    @property
    def reached(self) -> dict[str, bool]:
        return {k: self.ours[k] <= v if k == "mae" else self.ours[k] >= v for k, v in self.paper_svm.items()}


@dataclass(frozen=True)
class TorchGap:
    """The served network's MAD and how far it is above the best scikit-learn model's."""

    model: str
    mae: float
    gap: float

    @property
    def reached(self) -> bool:
        return self.gap <= TARGET_TORCH_GAP


@dataclass(frozen=True)
class Targets:
    """Issue 5's targets on one data set, reached or not."""

    sklearn: PaperComparison | None
    torch: TorchGap | None
    coverage_within_3_points: dict[str, bool]

    def as_json(self) -> Json:
        found: Json = {
            name: {**asdict(gap), "reached": gap.reached}
            for name, gap in (("sklearn", self.sklearn), ("torch", self.torch))
            if gap is not None
        }
        return {**found, "coverage_within_3_points": self.coverage_within_3_points}


def _covers(result: ModelResult) -> bool:
    return all(abs(result.intervals[f"{lv:g}"].coverage_pooled - lv) <= TARGET_COVERAGE_GAP for lv in INTERVAL_LEVELS)


def targets(dataset: str, results: Mapping[str, ModelResult]) -> Targets:
    """Issue 5's targets on one data set's nested results."""
    best = best_sklearn(results)
    sklearn = torch = None
    if best is not None:
        paper = PAPER[dataset]["SVM"]
        sklearn = PaperComparison(best, {k: results[best].metrics[k].mean for k in paper}, paper)
        if SERVED_NETWORK in results:
            net = results[SERVED_NETWORK].mae
            torch = TorchGap(SERVED_NETWORK, net, net - sklearn.ours["mae"])
    return Targets(sklearn, torch, {m: _covers(r) for m, r in results.items() if r.intervals})


def recommended(nested: ByModel) -> dict[Kind, Recommendation]:
    """The training defaults this run suggests: on red (else the one data set run), the scikit-learn model with the
    lowest nested MAD and the setting its search chose most often, and the network's most chosen setting."""
    source = nested.get("red") or next(iter(nested.values()))
    found: dict[Kind, Recommendation] = {}
    best = best_sklearn(source)
    if best is not None:
        found["sklearn"] = Recommendation(best, source[best].search.modal)
    if "torch" in source:
        found["torch"] = Recommendation("torch", source["torch"].search.modal)
    return found
