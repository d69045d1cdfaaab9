"""Drift statistics: reference bins made from the training rows, and recent values compared with them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from train.data import RED, WHITE, load_wines, split_wines
from wine_quality.card import DriftReference
from wine_quality.drift import Reference, distribution, drift_reference
from wine_quality.schema import FEATURE_NAMES


@pytest.fixture(scope="module")
def red_train() -> np.ndarray:
    return split_wines(load_wines(RED), 0.2, 42).x_train


def test_every_training_bin_holds_training_values(red_train: np.ndarray) -> None:
    """No bin has a training share of zero, even for citric acid, whose smallest values are many zeros."""
    for i, name in enumerate(FEATURE_NAMES):
        dist = distribution(red_train[:, i])
        assert len(dist.shares) == len(dist.edges) + 1, name
        assert min(dist.shares) > 0, name
        assert sum(dist.shares) == pytest.approx(1.0), name
        assert dist.edges == sorted(set(dist.edges)), name
    citric = distribution(red_train[:, FEATURE_NAMES.index("citric acid")])
    assert citric.edges[0] > 0  # an edge at the minimum would leave the bin below it empty


def test_rows_like_the_training_rows_barely_drift_and_white_wines_do(red_train: np.ndarray) -> None:
    """Red rows the model never saw keep every PSI below 0.1; white wines push sulfur dioxide's far above 0.25."""
    reference = drift_reference(red_train, np.full(100, 5.5))
    red = load_wines(RED)[list(FEATURE_NAMES)].sample(500, random_state=7).to_numpy()
    white = load_wines(WHITE)[list(FEATURE_NAMES)].sample(500, random_state=7).to_numpy()
    for i, name in enumerate(FEATURE_NAMES):
        ref = Reference(reference.features[name])
        assert ref.compare(red[:, i]).psi < 0.1, name
    total_so2 = Reference(reference.features["total sulfur dioxide"])
    assert total_so2.compare(white[:, FEATURE_NAMES.index("total sulfur dioxide")]).psi > 0.25


def test_a_few_values_give_a_finite_psi_and_ks_measures_the_largest_gap(red_train: np.ndarray) -> None:
    """Three values in one bin: a finite PSI, above the alert level; values below every training value: KS near 1."""
    ref = Reference(distribution(red_train[:, 0]))
    few = ref.compare(np.array([100.0, 100.0, 100.0]))
    assert math.isfinite(few.psi) and few.psi > 0.25
    below = ref.compare(np.zeros(50))
    assert below.ks == pytest.approx(1 - ref.shares[0])
    same = ref.compare(red_train[:, 0])
    assert same.psi < 1e-3 and same.ks < 1e-9
    assert same.quantiles == ref.quantiles


def test_the_reference_round_trips_through_the_card(red_train: np.ndarray) -> None:
    """What training writes in the card's metadata (JSON) reads back equal."""
    reference = drift_reference(red_train, np.linspace(4, 7, 300))
    assert reference.rows == len(red_train) and reference.predictions == 300
    assert DriftReference.model_validate_json(reference.model_dump_json()) == reference
    assert 4 <= reference.prediction.edges[0] < reference.prediction.edges[-1] <= 7
