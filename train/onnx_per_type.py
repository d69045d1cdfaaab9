"""The ONNX form of a model per type (wine_quality.per_type): one graph of both types' models, on MODEL_INPUTS.

Each type's model takes the 11 features; the graph answers each row with its own type's model (white > 0.5). In
general both types' graphs run on every row and `Where` keeps the row's type's answer. A forest per type (scalers then
trees, as many trees for each type) is cheaper as one ensemble: each row is scaled by its type's scaler, and each tree
first asks the row's type, then walks that type's tree, so a row costs what it costs one type's forest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.pipeline import Pipeline

from train.onnx_export import N_INPUTS, OnnxGraph, Precision, forest_steps, scaling, sklearn_to_onnx
from train.onnx_trees import ML_DOMAIN, ML_OPSET, switched_regression
from wine_quality.per_type import WHITE, PerType
from wine_quality.runtimes import ONNX_INPUT, ONNX_OUTPUT
from wine_quality.schema import WineType

OPSET = 17


def _constant(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value), name=name)


def _type_nodes() -> list[onnx.NodeProto]:
    """`features_only` [N, 11], `white_column` [N, 1] and `is_white_column` (white > 0.5) [N, 1] from the input."""
    return [
        _constant("features_from", np.array([0], dtype=np.int64)),
        _constant("features_to", np.array([WHITE], dtype=np.int64)),
        _constant("white_to", np.array([WHITE + 1], dtype=np.int64)),
        _constant("columns", np.array([1], dtype=np.int64)),
        helper.make_node("Slice", [ONNX_INPUT, "features_from", "features_to", "columns"], ["features_only"]),
        helper.make_node("Slice", [ONNX_INPUT, "features_to", "white_to", "columns"], ["white_column"]),
        _constant("half", np.array(0.5, dtype=np.float64)),
        helper.make_node("Greater", ["white_column", "half"], ["is_white_column"]),
    ]


def _graph(
    nodes: list[onnx.NodeProto],
    initializers: list[TensorProto],
    output: str,
    shape: list[int | None],
    opsets: dict[str, int],
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "wine_quality_per_type",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.DOUBLE, [None, N_INPUTS])],
        [helper.make_tensor_value_info(output, TensorProto.DOUBLE, shape)],
        initializer=initializers,
    )
    imports = [helper.make_opsetid(domain, version) for domain, version in opsets.items()]
    model = helper.make_model(graph, opset_imports=imports, producer_name="wine-quality")
    onnx.checker.check_model(model, full_check=True)
    return model


def joined(forms: dict[WineType, OnnxGraph], model: PerType) -> OnnxGraph:
    """One graph of each type's ONNX form (each on the 11 features): every type's answer is computed, and each row
    keeps its own type's (`Where`); a classifier's probabilities first spread to the columns of all the grades either
    type's model saw (a product with a 0/1 matrix: each column is one probability times 1.0, plus zeros, so exact)."""
    (output,) = {form.model.graph.output[0].name for form in forms.values()}
    classes = getattr(model, "classes_", None)
    nodes, initializers, answers = _type_nodes(), [], {}
    for wine_type, form in forms.items():
        inner = onnx.compose.add_prefix(form.model, prefix=f"{wine_type}_")
        nodes.append(helper.make_node("Identity", ["features_only"], [f"{wine_type}_{ONNX_INPUT}"]))
        nodes += list(inner.graph.node)
        initializers += list(inner.graph.initializer)
        answers[wine_type] = f"{wine_type}_{output}"
        if classes is not None:
            seen = model.model_of(wine_type).classes_
            spread = (np.asarray(seen)[:, None] == np.asarray(classes)[None, :]).astype(np.float64)
            nodes += [
                _constant(f"{wine_type}_spread", spread),
                helper.make_node("MatMul", [answers[wine_type], f"{wine_type}_spread"], [f"{wine_type}_all_grades"]),
            ]
            answers[wine_type] = f"{wine_type}_all_grades"
    red, white = (answers.get(t, next(iter(answers.values()))) for t in ("red", "white"))
    if classes is None:  # a grade per row: the condition as [N]
        nodes += [
            _constant("flat", np.array([-1], dtype=np.int64)),
            helper.make_node("Reshape", ["is_white_column", "flat"], ["is_white"]),
        ]
    else:  # [N, 1] against [N, grades]: broadcast
        nodes.append(helper.make_node("Identity", ["is_white_column"], ["is_white"]))
    nodes.append(helper.make_node("Where", ["is_white", white, red], [output]))
    opsets: dict[str, int] = {}
    for form in forms.values():
        for entry in form.model.opset_import:
            opsets[entry.domain] = max(opsets.get(entry.domain, 0), entry.version)
    shape: list[int | None] = [None] if classes is None else [None, len(classes)]
    precision: Precision = "float32" if any(f.precision == "float32" for f in forms.values()) else "double"
    return OnnxGraph(_graph(nodes, initializers, output, shape, opsets), precision)


def switched_forest(model: PerType) -> OnnxGraph | None:
    """A forest per type as one ensemble whose trees first ask the row's type (exact, in double); None unless both
    types' models are scalers and a forest of as many trees."""
    pipelines = [model.models_.get(t) for t in ("red", "white")]
    steps = [forest_steps(p) if isinstance(p, Pipeline) else None for p in pipelines]
    if steps[0] is None or steps[1] is None or len(steps[0][1]) != len(steps[1][1]):
        return None
    (red_scalers, red_trees), (white_scalers, white_trees) = steps[0], steps[1]
    nodes, initializers = _type_nodes(), []
    scaled = []
    for prefix, scalers in (("red_", red_scalers), ("white_", white_scalers)):
        more, constants, current = scaling(scalers, "features_only", prefix)
        nodes += more
        initializers += constants
        scaled.append(current)
    nodes += [
        helper.make_node("Where", ["is_white_column", scaled[1], scaled[0]], ["scaled"]),
        helper.make_node("Concat", ["scaled", "white_column"], ["typed"], axis=1),
        *switched_regression(red_trees, white_trees, WHITE, "typed", "grades"),
        _constant("flat", np.array([-1], dtype=np.int64)),
        helper.make_node("Reshape", ["grades", "flat"], [ONNX_OUTPUT]),
    ]
    return OnnxGraph(_graph(nodes, initializers, ONNX_OUTPUT, [None], {"": OPSET, ML_DOMAIN: ML_OPSET}), "double")


def per_type(
    export: Callable[[Any], OnnxGraph], special: Callable[[PerType], OnnxGraph | None] | None = None
) -> Callable[[Any], OnnxGraph]:
    """An exporter that also takes a model per type: the `special` form where it has one, else each type's model
    exported and the two joined."""

    def exported(model: Any) -> OnnxGraph:
        if not isinstance(model, PerType):
            return export(model)
        found = special(model) if special is not None else None
        return found or joined({t: export(m) for t, m in model.models_.items()}, model)

    return exported


sklearn_per_type = per_type(sklearn_to_onnx, switched_forest)
