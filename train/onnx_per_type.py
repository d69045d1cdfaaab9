"""The ONNX form of a model per type (wine_quality.per_type): one graph of both types' models, on MODEL_INPUTS.

Each type's model takes the 11 features; the graph answers each row with its own type's model (white > 0.5), and runs
each model on its own type's rows only (gathered from the batch, then scattered back into their places). Two earlier
forms ran more. One ran both models on every row and kept each row's type's answer with `Where`: a red wine cost both
(the grade classifier per type: 19.6 ms a 1,000 red wines, 8.5 routed). The other, for forests, was one ensemble
whose trees first asked the type: as cheap on wines of one type (red 7.0 ms a 1,000, routed 6.9; white 31.4 and
30.8), but 39.0 on a mixed 1,000, where routed takes 26.7 (`python -m benchmarks.model_cost --wines red|white|both`,
one thread).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from train.onnx_export import N_INPUTS, OnnxGraph, Precision, sklearn_to_onnx
from wine_quality.per_type import WHITE, PerType
from wine_quality.runtimes import ONNX_INPUT
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


def routed(forms: dict[WineType, OnnxGraph], model: PerType) -> OnnxGraph:
    """One graph of each type's ONNX form (each on the 11 features) that sends each type's rows to its own model
    alone: the rows of a type are gathered, answered by that type's graph, and scattered back into their places, so a
    red wine costs what it costs the red model (a classifier's probabilities first spread to the columns of all the
    grades either type's model saw: a product with a 0/1 matrix, each column one probability times 1.0, so exact)."""
    (output,) = {form.model.graph.output[0].name for form in forms.values()}
    (elem_type,) = {form.model.graph.output[0].type.tensor_type.elem_type for form in forms.values()}
    classes = getattr(model, "classes_", None)
    flat = _constant("flat", np.array([-1], dtype=np.int64))
    nodes, initializers = [*_type_nodes(), flat], []
    nodes += [
        helper.make_node("Reshape", ["is_white_column", "flat"], ["white_is_row"]),
        helper.make_node("Not", ["white_is_row"], ["red_is_row"]),
        helper.make_node("Shape", ["features_only"], ["input_shape"], end=1),
    ]
    if classes is None:
        nodes.append(helper.make_node("Identity", ["input_shape"], ["answers_shape"]))
    else:
        nodes += [
            _constant("grade_columns", np.array([len(classes)], dtype=np.int64)),
            helper.make_node("Concat", ["input_shape", "grade_columns"], ["answers_shape"], axis=0),
        ]
    zero = helper.make_tensor("zero", elem_type, [1], [0])
    nodes.append(helper.make_node("ConstantOfShape", ["answers_shape"], ["answers_none"], value=zero))
    answers = "answers_none"
    for wine_type in ("red", "white"):
        form = forms.get(wine_type) or next(iter(forms.values()))  # a type never trained on: the other's model
        inner = onnx.compose.add_prefix(form.model, prefix=f"{wine_type}_")
        nodes += [
            helper.make_node("NonZero", [f"{wine_type}_is_row"], [f"{wine_type}_where"]),
            helper.make_node("Transpose", [f"{wine_type}_where"], [f"{wine_type}_places"], perm=[1, 0]),  # [k, 1]
            helper.make_node("Reshape", [f"{wine_type}_places", "flat"], [f"{wine_type}_rows"]),
            helper.make_node("Gather", ["features_only", f"{wine_type}_rows"], [f"{wine_type}_{ONNX_INPUT}"], axis=0),
            *inner.graph.node,
        ]
        initializers += list(inner.graph.initializer)
        answer = f"{wine_type}_{output}"
        if classes is not None:
            seen = model.model_of(wine_type).classes_
            spread = (np.asarray(seen)[:, None] == np.asarray(classes)[None, :]).astype(np.float64)
            nodes += [
                _constant(f"{wine_type}_spread", spread),
                helper.make_node("MatMul", [answer, f"{wine_type}_spread"], [f"{wine_type}_all_grades"]),
            ]
            answer = f"{wine_type}_all_grades"
        placed = output if wine_type == "white" else "answers_red"
        nodes.append(helper.make_node("ScatterND", [answers, f"{wine_type}_places", answer], [placed]))
        answers = placed
    opsets: dict[str, int] = {}
    for form in forms.values():
        for entry in form.model.opset_import:
            opsets[entry.domain] = max(opsets.get(entry.domain, 0), entry.version)
    opsets[""] = max(opsets.get("", 0), OPSET)
    shape: list[int | None] = [None] if classes is None else [None, len(classes)]
    precision: Precision = "float32" if any(f.precision == "float32" for f in forms.values()) else "double"
    return OnnxGraph(_graph(nodes, initializers, output, shape, opsets), precision)


def per_type(export: Callable[[Any], OnnxGraph]) -> Callable[[Any], OnnxGraph]:
    """An exporter that also takes a model per type: each type's model exported, and the two routed."""

    def exported(model: Any) -> OnnxGraph:
        if not isinstance(model, PerType):
            return export(model)
        return routed({t: export(m) for t, m in model.models_.items()}, model)

    return exported


sklearn_per_type = per_type(sklearn_to_onnx)
