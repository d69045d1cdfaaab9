"""Scikit-learn tree ensembles as ONNX `TreeEnsemble` nodes in double precision, to match scikit-learn exactly.

skl2onnx writes forests as `TreeEnsembleRegressor`, which ONNX Runtime evaluates in float32 only: thresholds and leaf
values rounded to float32 moved the served grade by up to 0.005. The `TreeEnsemble` operator of ai.onnx.ml opset 5
takes double thresholds and leaf values. scikit-learn's trees compare the float32 value of each feature with a double
threshold and average the trees' double leaf values; `tree_ensemble` returns the nodes that do the same (a cast of the
input to float32 and back, then the ensemble), so the ONNX form predicts what scikit-learn predicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from onnx import NodeProto, TensorProto, helper, numpy_helper

ML_DOMAIN = "ai.onnx.ml"
ML_OPSET = 5  # the first with TreeEnsemble
BRANCH_LEQ, AVERAGE = 0, 0


def _flatten(trees: Sequence[Any]) -> dict[str, list[Any]]:
    """The nodes_* and leaf_* lists of TreeEnsemble for fitted scikit-learn `tree_` objects (single output)."""
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
        )
    }
    for tree in trees:
        left, right = tree.children_left, tree.children_right
        is_leaf = left == -1
        # where each scikit-learn node lands: interior nodes and leaves are numbered separately
        interior = np.flatnonzero(~is_leaf)
        leaves = np.flatnonzero(is_leaf)
        position = np.empty(tree.node_count, dtype=np.int64)
        position[interior] = len(out["nodes_splits"]) + np.arange(len(interior))
        position[leaves] = len(out["leaf_weights"]) + np.arange(len(leaves))
        out["leaf_weights"] += tree.value[leaves, 0, 0].tolist()
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


def tree_ensemble(trees: Sequence[Any], x: str, y: str, prefix: str = "trees") -> list[NodeProto]:
    """Nodes computing the average of the trees' predictions for double input `x`, written to double `y` [N, 1]."""
    flat = _flatten(trees)
    n_nodes = len(flat["nodes_splits"])
    as_float32, back_to_double = f"{prefix}_x32", f"{prefix}_xin"
    return [
        # scikit-learn's trees see float32 features: rounding here makes every comparison the same as its own
        helper.make_node("Cast", [x], [as_float32], to=TensorProto.FLOAT, name=f"{prefix}_cast32"),
        helper.make_node("Cast", [as_float32], [back_to_double], to=TensorProto.DOUBLE, name=f"{prefix}_cast64"),
        helper.make_node(
            "TreeEnsemble",
            [back_to_double],
            [y],
            domain=ML_DOMAIN,
            name=prefix,
            n_targets=1,
            aggregate_function=AVERAGE,
            tree_roots=flat["tree_roots"],
            nodes_featureids=flat["nodes_featureids"],
            nodes_splits=numpy_helper.from_array(np.array(flat["nodes_splits"], dtype=np.float64)),
            nodes_modes=numpy_helper.from_array(np.full(n_nodes, BRANCH_LEQ, dtype=np.uint8)),
            nodes_truenodeids=flat["nodes_truenodeids"],
            nodes_trueleafs=flat["nodes_trueleafs"],
            nodes_falsenodeids=flat["nodes_falsenodeids"],
            nodes_falseleafs=flat["nodes_falseleafs"],
            leaf_targetids=[0] * len(flat["leaf_weights"]),
            leaf_weights=numpy_helper.from_array(np.array(flat["leaf_weights"], dtype=np.float64)),
        ),
    ]
