"""The served network: log inputs on the long-tailed columns only, the seed ensemble, and its checkpoints."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import torch

from train.network import NetConfig, fit_ensemble, fit_net
from wine_quality.nets import LOG_FEATURES, TypeSwitch, WineEnsemble, WineNet, load_net
from wine_quality.schema import FEATURE_NAMES, MODEL_INPUTS

LOGGED = [FEATURE_NAMES.index(name) for name in LOG_FEATURES]


def _rows(n: int = 20) -> np.ndarray:
    return np.random.default_rng(0).uniform(0.1, 60.0, size=(n, len(FEATURE_NAMES)))


def _saved_and_loaded(checkpoint: dict[str, object]) -> dict[str, object]:
    """Through torch.save and torch.load(weights_only=True), as the model store and serving do."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    loaded: dict[str, object] = torch.load(buffer, weights_only=True)
    return loaded


def test_the_long_tailed_columns_are_schema_features() -> None:
    assert len(set(LOG_FEATURES)) == 5 and set(LOG_FEATURES) <= set(FEATURE_NAMES)


def test_log_inputs_take_log1p_of_exactly_the_long_tailed_columns() -> None:
    """With the same weights, the network with log inputs predicts for x what the one without predicts for x with
    log1p of LOG_FEATURES' columns, and something else for x itself."""
    torch.manual_seed(0)
    logged, raw = WineNet(len(FEATURE_NAMES), (8,), log_inputs=True), WineNet(len(FEATURE_NAMES), (8,))
    raw.load_state_dict(logged.state_dict())
    x = _rows()
    by_hand = x.copy()
    by_hand[:, LOGGED] = np.log1p(by_hand[:, LOGGED])
    assert logged.predict(x) == pytest.approx(raw.predict(by_hand), abs=1e-5)
    assert np.max(np.abs(logged.predict(x) - raw.predict(x))) > 1e-3
    seen = logged.transform(torch.as_tensor(x)).numpy()
    changed = [j for j in range(len(FEATURE_NAMES)) if not np.array_equal(seen[:, j], x[:, j])]
    assert changed == sorted(LOGGED)


def test_scaling_is_fitted_on_the_transformed_inputs() -> None:
    """Standardisation statistics of the log columns are those of their log1p; the others are the raw ones."""
    x = _rows()
    logged, raw = WineNet(len(FEATURE_NAMES), log_inputs=True), WineNet(len(FEATURE_NAMES))
    logged.fit_scaling(x)
    raw.fit_scaling(x)
    expected = x.copy()
    expected[:, LOGGED] = np.log1p(expected[:, LOGGED])
    assert logged.mean.numpy() == pytest.approx(expected.mean(axis=0), rel=1e-6)
    assert logged.scale.numpy() == pytest.approx(expected.std(axis=0), rel=1e-6)
    assert raw.mean.numpy() == pytest.approx(x.mean(axis=0), rel=1e-6)


def test_log_inputs_need_the_schema_features() -> None:
    with pytest.raises(ValueError, match="log_inputs needs the 12 model inputs or the features, not 3"):
        WineNet(3, log_inputs=True)


def test_the_white_input_is_never_logged() -> None:
    """A network on MODEL_INPUTS logs the same feature columns as one on the features, and leaves `white` as it is."""
    net = WineNet(len(MODEL_INPUTS), (8,), log_inputs=True)
    x = np.column_stack([_rows(), np.tile([0.0, 1.0], 10)])
    seen = net.transform(torch.as_tensor(x)).numpy()
    assert [j for j in range(len(MODEL_INPUTS)) if not np.array_equal(seen[:, j], x[:, j])] == sorted(LOGGED)


def test_a_switch_grades_each_row_with_its_types_ensemble_and_round_trips() -> None:
    """Per type: a red row is graded by the red ensemble on its 11 features, a white row by the white one; the
    checkpoint loads back to the same grades; with one type only, every row is graded by it."""
    torch.manual_seed(3)
    red, white = (WineEnsemble([WineNet(len(FEATURE_NAMES), (8,), log_inputs=True)]) for _ in range(2))
    for ensemble in (red, white):
        ensemble.members[0].fit_scaling(_rows())  # type: ignore[operator]
    features = _rows(10)
    x = np.column_stack([features, [0.0, 1.0] * 5])
    switch = TypeSwitch({"red": red, "white": white})
    expected = np.where(x[:, -1] == 1.0, white.predict(features), red.predict(features))
    assert switch.predict(x) == pytest.approx(expected, abs=1e-6)
    loaded = load_net(_saved_and_loaded(switch.checkpoint()))
    assert isinstance(loaded, TypeSwitch) and np.array_equal(loaded.predict(x), switch.predict(x))
    assert TypeSwitch({"red": red}).predict(x) == pytest.approx(red.predict(features), abs=1e-6)


def test_an_ensemble_predicts_its_members_mean_and_round_trips() -> None:
    """The ensemble's grade is the mean of its members'; its checkpoint loads back, log inputs kept, to the same."""
    torch.manual_seed(2)
    members = [WineNet(len(FEATURE_NAMES), (8,), log_inputs=True), WineNet(len(FEATURE_NAMES), (4, 4))]
    for member in members:
        member.fit_scaling(_rows())
    ensemble = WineEnsemble(members)
    x = _rows(7)
    expected = np.mean([m.predict(x) for m in members], axis=0)
    assert ensemble.predict(x).dtype == np.float64
    assert ensemble.predict(x) == pytest.approx(expected, abs=1e-6)
    loaded = load_net(_saved_and_loaded(ensemble.checkpoint()))
    assert isinstance(loaded, WineEnsemble) and len(loaded.members) == 2
    assert [m.config["log_inputs"] for m in loaded.members] == [True, False]
    assert np.array_equal(loaded.predict(x), ensemble.predict(x))
    with pytest.raises(ValueError, match="at least one network"):
        WineEnsemble([])


def test_ensemble_member_i_is_fit_nets_network_with_seed_plus_i() -> None:
    """fit_ensemble trains member i exactly as fit_net does with seed + i; its history lists each member's record."""
    torch.set_num_threads(1)
    x = _rows(60)
    y = x[:, 10] / 10 + np.random.default_rng(1).normal(size=60)
    config = NetConfig(hidden=(4,), epochs=3, patience=2, seed=7, members=2)
    ensemble, history = fit_ensemble(x, y, config, progress=False)
    for i, member in enumerate(ensemble.members):
        alone, record = fit_net(x, y, replace(config, seed=7 + i), progress=False)
        assert np.array_equal(member.predict(x), alone.predict(x))
        assert history["best_val_loss"][i] == record["best_val_loss"]
        assert history["val_loss"][i] == record["val_loss"]
    assert len(history["best_epoch"]) == len(history["epochs_run"]) == 2
    assert not np.array_equal(ensemble.members[0].predict(x), ensemble.members[1].predict(x))
