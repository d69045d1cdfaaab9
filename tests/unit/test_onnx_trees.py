"""The ONNX form of tree ensembles: exact in double on real wines, one tree per estimator, served in slices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

from train.data import RED, WHITE, load_wines
from train.onnx_trees import ML_DOMAIN, ML_OPSET, LeafValues, class_probabilities, regression_values, tree_ensemble
from wine_quality.runtimes import ONNX_FILE, ONNX_INPUT, ONNX_SLICE_ROWS, load_onnx, onnx_session
from wine_quality.schema import FEATURE_NAMES, TARGET

EXACT = 1e-9  # the parity check's tolerance for double graphs (train/onnx_export.py)


@pytest.fixture(scope="module")
def wines() -> np.ndarray:
    """Every distinct row of features in the red and white training files."""
    frames = [load_wines(path)[list(FEATURE_NAMES)].to_numpy() for path in (RED, WHITE)]
    return np.unique(np.concatenate(frames), axis=0)


def _graph(trees: list[Any], targets: int, values: LeafValues) -> onnx.ModelProto:
    nodes = tree_ensemble(trees, ONNX_INPUT, "out", values=values)
    graph = helper.make_graph(
        nodes,
        "forest",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.DOUBLE, [None, len(FEATURE_NAMES)])],
        [helper.make_tensor_value_info("out", TensorProto.DOUBLE, [None, targets])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(ML_DOMAIN, ML_OPSET)]
    model = helper.make_model(graph, opset_imports=opsets)
    onnx.checker.check_model(model, full_check=True)
    return model


def _run(model: onnx.ModelProto, rows: np.ndarray) -> np.ndarray:
    out: np.ndarray = onnx_session(model.SerializeToString(), threads=1).run(None, {ONNX_INPUT: rows})[0]
    return out


def _ensembles(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [node for node in model.graph.node if node.op_type.startswith("TreeEnsemble")]


def _attribute(node: onnx.NodeProto, name: str) -> list[int]:
    return list(next(a.ints for a in node.attribute if a.name == name))


def _classifier(**settings: int) -> ExtraTreesClassifier:
    red = load_wines(RED)
    forest = ExtraTreesClassifier(n_estimators=12, min_samples_leaf=3, random_state=0, n_jobs=1, **settings)
    return forest.fit(red[list(FEATURE_NAMES)].to_numpy(), red[TARGET].to_numpy())


def test_a_classification_forest_is_one_tree_per_estimator(wines: np.ndarray) -> None:
    """12 trees over 6 grades are 12 trees in the graph, each its own target of one TreeEnsemble; ONNX Runtime's
    probabilities are scikit-learn's on every distinct wine of both files."""
    forest = _classifier()
    model = _graph([t.tree_ for t in forest.estimators_], len(forest.classes_), class_probabilities)
    (ensemble,) = _ensembles(model)
    assert ensemble.op_type == "TreeEnsemble" and len(_attribute(ensemble, "tree_roots")) == 12
    assert sorted(set(_attribute(ensemble, "leaf_targetids"))) == list(range(12))
    got = _run(model, wines)
    assert got.shape == (len(wines), 6) and got.dtype == np.float64
    np.testing.assert_allclose(got, forest.predict_proba(wines), rtol=0, atol=EXACT)


def test_trees_that_are_one_leaf_give_the_class_frequencies(wines: np.ndarray) -> None:
    """Trees that cannot split (a leaf needs more wines than half the file) answer the grades' frequencies."""
    forest = _classifier(min_samples_split=10_000)
    assert all(t.tree_.node_count == 1 for t in forest.estimators_)
    got = _run(_graph([t.tree_ for t in forest.estimators_], 6, class_probabilities), wines)
    np.testing.assert_allclose(got, forest.predict_proba(wines), rtol=0, atol=EXACT)


def test_a_regression_forest_is_averaged_by_the_operator_itself(wines: np.ndarray) -> None:
    """One target needs no table: the leaves hold the grades, and the operator's average is scikit-learn's."""
    red = load_wines(RED)
    forest = ExtraTreesRegressor(n_estimators=8, random_state=0, n_jobs=1)
    forest.fit(red[list(FEATURE_NAMES)].to_numpy(), red[TARGET].to_numpy())
    model = _graph([t.tree_ for t in forest.estimators_], 1, regression_values)
    assert [n.op_type for n in model.graph.node] == ["Cast", "Cast", "TreeEnsemble"]
    np.testing.assert_allclose(_run(model, wines)[:, 0], forest.predict(wines), rtol=0, atol=EXACT)


def test_a_served_batch_larger_than_a_slice_is_answered_whole(tmp_path: Path, wines: np.ndarray) -> None:
    """load_onnx runs a batch of several slices and answers every row as one run would; an empty batch gets none."""
    assert len(wines) > 3 * ONNX_SLICE_ROWS
    forest = _classifier()
    model = _graph([t.tree_ for t in forest.estimators_], 6, class_probabilities)
    (tmp_path / ONNX_FILE).write_bytes(model.SerializeToString())
    predict = load_onnx(tmp_path, threads=1)
    np.testing.assert_allclose(predict(wines), _run(model, wines), rtol=0, atol=1e-15)
    assert predict(wines[:0]).shape == (0, 6)
