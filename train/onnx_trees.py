"""Scikit-learn tree ensembles as ONNX `TreeEnsemble` nodes in double precision, to match scikit-learn exactly.

skl2onnx writes forests as `TreeEnsembleRegressor`, which ONNX Runtime evaluates in float32 only: thresholds and leaf
values rounded to float32 moved the served grade by up to 0.005. The `TreeEnsemble` operator of ai.onnx.ml opset 5
takes double thresholds and leaf values. scikit-learn's trees compare the float32 value of each feature with a double
threshold and average the trees' double leaf values; `tree_ensemble` returns the nodes that do the same (a cast of the
input to float32 and back, then the ensemble), so the ONNX form predicts what scikit-learn predicts.

A `TreeEnsemble` leaf adds one value to one target. For several targets (a classifier's class probabilities), writing
each tree once per target was exact but costly: 6 grades made 100 trees into 600, ~120 MB and ~0.4 s to create the
ONNX Runtime session. The operators whose leaves carry a vector (`TreeEnsembleRegressor`, `TreeEnsembleClassifier`)
output float32 in ONNX Runtime, 3e-8 away from scikit-learn. So each tree is written once, as its own target, and
each leaf's value is its row in a table of the leaves' vectors: a `Gather` of the rows the trees reach, summed over
the trees and divided by their number, is scikit-learn's average, in double.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from onnx import NodeProto, TensorProto, helper, numpy_helper

ML_DOMAIN = "ai.onnx.ml"
ML_OPSET = 5  # the first with TreeEnsemble
BRANCH_LEQ, AVERAGE, SUM = 0, 0, 1
LeafValues = Callable[[Any], np.ndarray]  # a fitted `tree_` -> its nodes' values, [node_count, targets]
STRUCTURE = (
    "tree_roots",
    "nodes_featureids",
    "nodes_splits",
    "nodes_truenodeids",
    "nodes_trueleafs",
    "nodes_falsenodeids",
    "nodes_falseleafs",
)


def regression_values(tree: Any) -> np.ndarray:
    """A regression tree's one value per node."""
    return np.asarray(tree.value[:, 0, :1], dtype=np.float64)


def class_probabilities(tree: Any) -> np.ndarray:
    """A classification tree's probability of each class per node, normalised as its predict_proba does."""
    counts = np.asarray(tree.value[:, 0, :], dtype=np.float64)
    total = counts.sum(axis=1, keepdims=True)
    return counts / np.where(total == 0.0, 1.0, total)


def _flatten(trees: Sequence[Any]) -> tuple[dict[str, list[Any]], list[np.ndarray]]:
    """The tree_roots and nodes_* lists of TreeEnsemble for fitted scikit-learn `tree_` objects, each tree once, and
    each tree's leaves (its node numbers) in the order the leaf_* lists are to hold them."""
    out: dict[str, list[Any]] = {k: [] for k in STRUCTURE}
    leaves_of: list[np.ndarray] = []
    n_leaves = 0
    for tree in trees:
        left, right = tree.children_left, tree.children_right
        is_leaf = left == -1
        # where each scikit-learn node lands: interior nodes and leaves are numbered separately
        interior = np.flatnonzero(~is_leaf)
        leaves = np.flatnonzero(is_leaf)
        position = np.empty(tree.node_count, dtype=np.int64)
        position[interior] = len(out["nodes_splits"]) + np.arange(len(interior))
        position[leaves] = n_leaves + np.arange(len(leaves))
        leaves_of.append(leaves)
        n_leaves += len(leaves)
        if not len(interior):  # a tree that is one leaf: one node whose branches both reach it
            out["tree_roots"].append(len(out["nodes_splits"]))
            out["nodes_featureids"].append(0)
            out["nodes_splits"].append(0.0)
            out["nodes_truenodeids"].append(int(position[0]))
            out["nodes_falsenodeids"].append(int(position[0]))
            out["nodes_trueleafs"].append(1)
            out["nodes_falseleafs"].append(1)
            continue
        out["tree_roots"].append(int(position[0]))
        out["nodes_featureids"] += tree.feature[interior].tolist()
        out["nodes_splits"] += tree.threshold[interior].tolist()
        # scikit-learn goes left when value <= threshold: the true branch of BRANCH_LEQ
        out["nodes_truenodeids"] += position[left[interior]].tolist()
        out["nodes_trueleafs"] += is_leaf[left[interior]].astype(int).tolist()
        out["nodes_falsenodeids"] += position[right[interior]].tolist()
        out["nodes_falseleafs"] += is_leaf[right[interior]].astype(int).tolist()
    return out, leaves_of


def _ensemble(
    structure: dict[str, list[Any]], x: str, y: str, name: str, aggregate: int, targets: np.ndarray, weights: np.ndarray
) -> NodeProto:
    """The TreeEnsemble node: these trees, each leaf adding its weight to its target."""
    splits = np.asarray(structure["nodes_splits"], dtype=np.float64)
    return helper.make_node(
        "TreeEnsemble",
        [x],
        [y],
        domain=ML_DOMAIN,
        name=name,
        n_targets=int(targets.max()) + 1,
        aggregate_function=aggregate,
        tree_roots=structure["tree_roots"],
        nodes_featureids=structure["nodes_featureids"],
        nodes_splits=numpy_helper.from_array(splits),
        nodes_modes=numpy_helper.from_array(np.full(len(splits), BRANCH_LEQ, dtype=np.uint8)),
        nodes_truenodeids=structure["nodes_truenodeids"],
        nodes_trueleafs=structure["nodes_trueleafs"],
        nodes_falsenodeids=structure["nodes_falsenodeids"],
        nodes_falseleafs=structure["nodes_falseleafs"],
        leaf_targetids=targets.tolist(),
        leaf_weights=numpy_helper.from_array(np.asarray(weights, dtype=np.float64)),
    )


def _constant(name: str, value: np.ndarray) -> NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value), name=name)


def _cast_nodes(x: str, prefix: str) -> tuple[list[NodeProto], str]:
    """The input rounded to float32 and back: scikit-learn's trees see float32 features, so every comparison is then
    the same as its own."""
    as_float32, back_to_double = f"{prefix}_x32", f"{prefix}_xin"
    nodes = [
        helper.make_node("Cast", [x], [as_float32], to=TensorProto.FLOAT, name=f"{prefix}_cast32"),
        helper.make_node("Cast", [as_float32], [back_to_double], to=TensorProto.DOUBLE, name=f"{prefix}_cast64"),
    ]
    return nodes, back_to_double


def tree_ensemble(
    trees: Sequence[Any], x: str, y: str, prefix: str = "trees", values: LeafValues = regression_values
) -> list[NodeProto]:
    """Nodes computing the average of the trees' predictions for double input `x`, written to double `y` [N, targets].

    One target is averaged by the operator itself. Several are looked up: the operator answers, for each tree, the row
    of the leaf it reaches in a table of every leaf's values; those rows are summed and divided by the number of
    trees, as scikit-learn does.
    """
    structure, leaves = _flatten(trees)
    table = np.concatenate([values(tree)[ids] for tree, ids in zip(trees, leaves, strict=True)])
    nodes, back_to_double = _cast_nodes(x, prefix)
    if table.shape[1] == 1:
        single = np.zeros(len(table), dtype=np.int64)
        return [*nodes, _ensemble(structure, back_to_double, y, prefix, AVERAGE, single, table[:, 0])]
    tree_of_leaf = np.repeat(np.arange(len(trees)), [len(ids) for ids in leaves])
    rows = np.arange(len(table), dtype=np.float64)  # integers, exact in double: each tree's sum is its one leaf's row
    nodes += [
        _ensemble(structure, back_to_double, f"{prefix}_rows", prefix, SUM, tree_of_leaf, rows),
        helper.make_node("Cast", [f"{prefix}_rows"], [f"{prefix}_index"], to=TensorProto.INT64, name=f"{prefix}_index"),
        _constant(f"{prefix}_table", table),
        helper.make_node(
            "Gather", [f"{prefix}_table", f"{prefix}_index"], [f"{prefix}_leaves"], name=f"{prefix}_gather"
        ),
        _constant(f"{prefix}_tree_axis", np.array([1], dtype=np.int64)),
        helper.make_node(
            "ReduceSum",
            [f"{prefix}_leaves", f"{prefix}_tree_axis"],
            [f"{prefix}_sum"],
            keepdims=0,
            name=f"{prefix}_sum",
        ),
        _constant(f"{prefix}_count", np.array(len(trees), dtype=np.float64)),
        helper.make_node("Div", [f"{prefix}_sum", f"{prefix}_count"], [y], name=f"{prefix}_mean"),
    ]
    return nodes
