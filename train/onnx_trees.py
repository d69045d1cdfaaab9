"""Scikit-learn tree ensembles as ONNX `TreeEnsemble` nodes in double precision, to match scikit-learn exactly.

skl2onnx writes forests as `TreeEnsembleRegressor`, which ONNX Runtime evaluates in float32 only: thresholds and leaf
values rounded to float32 moved the served grade by up to 0.005. The `TreeEnsemble` operator of ai.onnx.ml opset 5
takes double thresholds and leaf values. scikit-learn's trees compare the float32 value of each feature with a double
threshold and average the trees' double leaf values; `tree_ensemble` returns the nodes that do the same (a cast of the
input to float32 and back, then the ensemble), so the ONNX form predicts what scikit-learn predicts.
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


def regression_values(tree: Any) -> np.ndarray:
    """A regression tree's one value per node."""
    return np.asarray(tree.value[:, 0, :1], dtype=np.float64)


def class_probabilities(tree: Any) -> np.ndarray:
    """A classification tree's probability of each class per node, normalised as its predict_proba does."""
    counts = np.asarray(tree.value[:, 0, :], dtype=np.float64)
    total = counts.sum(axis=1, keepdims=True)
    return counts / np.where(total == 0.0, 1.0, total)


def _flatten(trees: Sequence[Any], values: LeafValues) -> dict[str, list[Any]]:
    """The nodes_* and leaf_* lists of TreeEnsemble for fitted scikit-learn `tree_` objects.

    A TreeEnsemble leaf adds to one target: a tree with several targets is written once per target, each copy's
    leaves holding that target's values.
    """
    out: dict[str, list[Any]] = {
        k: []
        for k in (
            "tree_roots",
            "nodes_featureids",
            "nodes_splits",
            "nodes_truenodeids",
            "nodes_trueleafs",
            "nodes_falsenodeids",
            "nodes_falseleafs",
            "leaf_weights",
            "leaf_targetids",
        )
    }
    per_tree = [(tree, values(tree)) for tree in trees]
    for tree, node_values, target in ((tree, v, t) for tree, v in per_tree for t in range(v.shape[1])):
        left, right = tree.children_left, tree.children_right
        is_leaf = left == -1
        # where each scikit-learn node lands: interior nodes and leaves are numbered separately
        interior = np.flatnonzero(~is_leaf)
        leaves = np.flatnonzero(is_leaf)
        position = np.empty(tree.node_count, dtype=np.int64)
        position[interior] = len(out["nodes_splits"]) + np.arange(len(interior))
        position[leaves] = len(out["leaf_weights"]) + np.arange(len(leaves))
        out["leaf_weights"] += node_values[leaves, target].tolist()
        out["leaf_targetids"] += [target] * len(leaves)
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
    return out


def tree_ensemble(
    trees: Sequence[Any], x: str, y: str, prefix: str = "trees", values: LeafValues = regression_values
) -> list[NodeProto]:
    """Nodes computing the average of the trees' predictions for double input `x`, written to double `y` [N, targets].

    One target is averaged by the operator itself; several are summed (each tree is written once per target, and
    the operator's average would count the copies) and then divided by the number of trees, as scikit-learn does.
    """
    flat = _flatten(trees, values)
    n_nodes = len(flat["nodes_splits"])
    n_targets = int(values(trees[0]).shape[1])
    as_float32, back_to_double = f"{prefix}_x32", f"{prefix}_xin"
    summed = n_targets > 1
    ensemble_out = f"{prefix}_sum" if summed else y
    nodes = [
        # scikit-learn's trees see float32 features: rounding here makes every comparison the same as its own
        helper.make_node("Cast", [x], [as_float32], to=TensorProto.FLOAT, name=f"{prefix}_cast32"),
        helper.make_node("Cast", [as_float32], [back_to_double], to=TensorProto.DOUBLE, name=f"{prefix}_cast64"),
        helper.make_node(
            "TreeEnsemble",
            [back_to_double],
            [ensemble_out],
            domain=ML_DOMAIN,
            name=prefix,
            n_targets=n_targets,
            aggregate_function=SUM if summed else AVERAGE,
            tree_roots=flat["tree_roots"],
            nodes_featureids=flat["nodes_featureids"],
            nodes_splits=numpy_helper.from_array(np.array(flat["nodes_splits"], dtype=np.float64)),
            nodes_modes=numpy_helper.from_array(np.full(n_nodes, BRANCH_LEQ, dtype=np.uint8)),
            nodes_truenodeids=flat["nodes_truenodeids"],
            nodes_trueleafs=flat["nodes_trueleafs"],
            nodes_falsenodeids=flat["nodes_falsenodeids"],
            nodes_falseleafs=flat["nodes_falseleafs"],
            leaf_targetids=flat["leaf_targetids"],
            leaf_weights=numpy_helper.from_array(np.array(flat["leaf_weights"], dtype=np.float64)),
        ),
    ]
    if summed:
        count = numpy_helper.from_array(np.array(len(trees), dtype=np.float64))
        nodes += [
            helper.make_node("Constant", [], [f"{prefix}_count"], value=count, name=f"{prefix}_count"),
            helper.make_node("Div", [ensemble_out, f"{prefix}_count"], [y], name=f"{prefix}_mean"),
        ]
    return nodes
