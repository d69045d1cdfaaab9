"""Drift statistics: reference distributions made at training, and recent values compared with them (PSI, KS).

A reference is a set of quantile bins of the training values: its interior edges are training quantiles (deciles
by default), each one an actual training value, and every bin holds at least one training value, so no bin has a
training share of zero. Recent values fall into the same bins; the population stability index sums
(recent - training) * ln(recent / training) over the bins, and the Kolmogorov-Smirnov statistic is read at the bin
edges (the largest gap between the two cumulative shares there: a lower bound of the exact statistic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wine_quality.card import Distribution, DriftReference, level_key
from wine_quality.schema import FEATURE_NAMES

BINS = 10
# The quantiles a reference keeps beside its bins, and /monitoring shows for the recent values too.
QUANTILE_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
# Pseudo-count added to every bin of the recent values: an empty bin in a small window adds a bounded amount to
# the PSI instead of an infinite one, and 500 or more rows are barely moved by it.
PSEUDO_COUNT = 0.5


def distribution(values: np.ndarray, bins: int = BINS) -> Distribution:
    """Quantile bins of training values, with each bin's share of them and a few quantiles."""
    values = np.asarray(values, dtype=np.float64)
    levels = np.arange(1, bins) / bins
    edges = np.unique(np.quantile(values, levels, method="inverted_cdf"))
    edges = edges[edges > values.min()]  # an edge at the minimum would leave the bin below it empty
    counts = bin_counts(edges, values)
    return Distribution(
        edges=edges.tolist(),
        shares=(counts / counts.sum()).tolist(),
        quantiles=quantiles(values),
    )


def drift_reference(x_train: np.ndarray, predicted: np.ndarray, bins: int = BINS) -> DriftReference:
    """The reference of a model: bins of each feature's training values and of its out-of-fold predicted grades."""
    return DriftReference(
        rows=len(x_train),
        features={name: distribution(x_train[:, i], bins) for i, name in enumerate(FEATURE_NAMES)},
        predictions=len(predicted),
        prediction=distribution(predicted, bins),
    )


def bin_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How many values fall in each bin: bin i holds edges[i-1] <= value < edges[i]; the outer bins are open."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def quantiles(values: np.ndarray) -> dict[str, float]:
    """The values' quantiles at QUANTILE_LEVELS, keyed as the card writes levels ("0.05")."""
    found = np.quantile(values, QUANTILE_LEVELS)
    return {level_key(level): float(q) for level, q in zip(QUANTILE_LEVELS, found, strict=True)}


@dataclass(frozen=True)
class Comparison:
    """Recent values against a reference distribution."""

    psi: float
    ks: float
    quantiles: dict[str, float]


class Reference:
    """A card's distribution as arrays, ready to compare recent values with."""

    def __init__(self, dist: Distribution) -> None:
        self.edges = np.asarray(dist.edges, dtype=np.float64)
        self.shares = np.asarray(dist.shares, dtype=np.float64)
        self.cumulative = np.cumsum(self.shares)[:-1]  # training share below each edge
        self.quantiles = dict(dist.quantiles)

    def compare(self, values: np.ndarray) -> Comparison:
        """PSI and KS of recent values against this reference, and their quantiles; needs at least one value."""
        counts = bin_counts(self.edges, values)
        n = counts.sum()
        recent = (counts + PSEUDO_COUNT) / (n + PSEUDO_COUNT * len(counts))
        psi = float(np.sum((recent - self.shares) * np.log(recent / self.shares)))
        below = np.cumsum(counts)[:-1] / n
        ks = float(np.max(np.abs(below - self.cumulative))) if len(below) else 0.0
        return Comparison(psi=psi, ks=ks, quantiles=quantiles(values))
