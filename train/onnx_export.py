"""The ONNX form of each trained model, and the parity check that stops training when it predicts differently.

Every ONNX form has one input, `features` (double, [N, 12]: MODEL_INPUTS, the 11 features in schema order then
`white`), and one output, whatever precision it computes in, so that serving treats them all alike: a regressor's
`quality` (double, [N]), the grade classifier's `probabilities` (double, [N, grades]). A pooled model takes `white` as
one more input; a model per type is one graph of both types' models (train/onnx_per_type.py).

Tolerance of the parity check (largest absolute difference in grade over every distinct row of the training files):
- double graphs (the scaler and tree ensembles, linear models): 1e-9. They do scikit-learn's own arithmetic in the
  same precision; what remains is the order of additions, about 1e-15 on a grade of 5.
- float32 graphs (the network, which torch also runs in float32, and estimators that ONNX Runtime only runs in
  float32, such as the SVR): 1e-4. float32 carries about 7 significant digits (5e-7 on a grade of 5) and the two
  runtimes add in different orders; 1e-4 still keeps every served grade equal to the native one to 3 decimals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

from train.onnx_trees import ML_DOMAIN, ML_OPSET, class_probabilities, tree_ensemble
from wine_quality.grade_classifier import PROBABILITY_FLOOR, GradeClassifier
from wine_quality.runtimes import ONNX_INPUT, ONNX_OUTPUT, ONNX_PROBABILITIES, onnx_session
from wine_quality.schema import MODEL_INPUTS

Precision = Literal["double", "float32"]
TOLERANCE: dict[Precision, float] = {"double": 1e-9, "float32": 1e-4}
OPSET = 17
N_INPUTS = len(MODEL_INPUTS)


class ParityError(RuntimeError):
    """The ONNX form predicts differently from the native model by more than the tolerance."""


@dataclass(frozen=True)
class OnnxGraph:
    """A model's ONNX form and the precision it computes in."""

    model: onnx.ModelProto
    precision: Precision

    def serialized(self) -> bytes:
        return bytes(self.model.SerializeToString())


def _model(
    nodes: list[onnx.NodeProto],
    initializers: list[TensorProto],
    name: str,
    output: tuple[str, list[int | None]] = (ONNX_OUTPUT, [None]),
    width: int = N_INPUTS,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.DOUBLE, [None, width])],
        [helper.make_tensor_value_info(output[0], TensorProto.DOUBLE, output[1])],
        initializer=initializers,
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid(ML_DOMAIN, ML_OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="wine-quality")
    onnx.checker.check_model(model, full_check=True)
    return model


def forest_steps(pipeline: Pipeline) -> tuple[list[StandardScaler], list[Any]] | None:
    """A pipeline's scalers and its trees' `tree_`s, if it is scalers then a tree ensemble; None otherwise."""
    *pre, (_, estimator) = pipeline.steps
    if not isinstance(estimator, ExtraTreesRegressor | RandomForestRegressor | DecisionTreeRegressor):
        return None
    if any(not isinstance(step, StandardScaler) or not step.with_mean or not step.with_std for _, step in pre):
        return None
    return [step for _, step in pre], [t.tree_ for t in getattr(estimator, "estimators_", [estimator])]


def scaling(scalers: list[StandardScaler], x: str) -> tuple[list[onnx.NodeProto], list[TensorProto], str]:
    """Nodes computing (x - mean) / scale for each scaler in turn, as StandardScaler.transform does, and the output."""
    nodes, initializers, current = [], [], x
    for i, scaler in enumerate(scalers):
        mean, scale = f"mean_{i}", f"scale_{i}"
        initializers += [
            numpy_helper.from_array(np.asarray(scaler.mean_, dtype=np.float64), mean),
            numpy_helper.from_array(np.asarray(scaler.scale_, dtype=np.float64), scale),
        ]
        nodes += [
            helper.make_node("Sub", [current, mean], [f"centred_{i}"]),
            helper.make_node("Div", [f"centred_{i}", scale], [f"scaled_{i}"]),
        ]
        current = f"scaled_{i}"
    return nodes, initializers, current


def _exact_forest(pipeline: Pipeline) -> OnnxGraph | None:
    """Scaler + tree ensemble, in scikit-learn's own double arithmetic; None for any other pipeline."""
    steps = forest_steps(pipeline)
    if steps is None:
        return None
    nodes, initializers, current = scaling(steps[0], ONNX_INPUT)
    nodes += tree_ensemble(steps[1], current, "grades")
    initializers.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"))
    nodes.append(helper.make_node("Reshape", ["grades", "flat"], [ONNX_OUTPUT]))
    return OnnxGraph(_model(nodes, initializers, "wine_quality_sklearn", width=pipeline.n_features_in_), "double")


def _skl2onnx(pipeline: Pipeline, precision: Precision) -> OnnxGraph:
    """Any other pipeline through skl2onnx, wrapped to the common input and output."""
    from skl2onnx import to_onnx

    dtype = np.float64 if precision == "double" else np.float32
    width = pipeline.n_features_in_
    inner = to_onnx(pipeline, np.zeros((1, width), dtype=dtype), target_opset={"": OPSET, ML_DOMAIN: 3})
    (inner_in,), (inner_out,) = inner.graph.input, inner.graph.output
    inner_type = TensorProto.DOUBLE if precision == "double" else TensorProto.FLOAT
    nodes = [helper.make_node("Cast", [ONNX_INPUT], [inner_in.name], to=inner_type)]
    nodes += list(inner.graph.node)
    nodes.append(helper.make_node("Cast", [inner_out.name], ["grades"], to=TensorProto.DOUBLE))
    flat = numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat")
    nodes.append(helper.make_node("Reshape", ["grades", "flat"], [ONNX_OUTPUT]))
    graph = helper.make_graph(
        nodes,
        "wine_quality_sklearn",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.DOUBLE, [None, width])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.DOUBLE, [None])],
        initializer=[*inner.graph.initializer, flat],
    )
    model = helper.make_model(graph, opset_imports=list(inner.opset_import), producer_name="wine-quality")
    onnx.checker.check_model(model, full_check=True)
    return OnnxGraph(model, precision)


def sklearn_to_onnx(pipeline: Pipeline) -> OnnxGraph:
    """The pipeline's ONNX form: exact double for scaler + trees, else skl2onnx in double, else in float32."""
    exact = _exact_forest(pipeline)
    if exact is not None:
        return exact
    form = _skl2onnx(pipeline, "double")
    try:  # some ai.onnx.ml operators (the SVR's, for one) exist in ONNX Runtime for float32 only
        onnx_session(form.serialized(), threads=1)
    except Exception:  # noqa: BLE001 - ONNX Runtime raises its own types when it cannot place an operator
        form = _skl2onnx(pipeline, "float32")
    return form


def classifier_to_onnx(model: GradeClassifier) -> OnnxGraph:
    """The grade classifier in double precision: the forest's class frequencies, then the calibration's softmax of a
    linear map of their logarithms, as scikit-learn computes them."""
    trees = [t.tree_ for t in model.forest_.estimators_]
    calibrator = model.calibrator_
    initializers = [
        numpy_helper.from_array(np.array(PROBABILITY_FLOOR, dtype=np.float64), "floor"),
        numpy_helper.from_array(np.asarray(calibrator.coef_.T, dtype=np.float64), "coef"),
        numpy_helper.from_array(np.asarray(calibrator.intercept_, dtype=np.float64), "intercept"),
    ]
    nodes = tree_ensemble(trees, ONNX_INPUT, "forest", values=class_probabilities)
    nodes += [
        helper.make_node("Add", ["forest", "floor"], ["floored"]),
        helper.make_node("Log", ["floored"], ["log_forest"]),
        helper.make_node("MatMul", ["log_forest", "coef"], ["linear"]),
        helper.make_node("Add", ["linear", "intercept"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [ONNX_PROBABILITIES], axis=-1),
    ]
    output = (ONNX_PROBABILITIES, [None, len(model.classes_)])
    return OnnxGraph(_model(nodes, initializers, "wine_quality_classifier", output, model.n_features_in_), "double")


def torch_to_onnx(net: Any) -> OnnxGraph:
    """The network's ONNX form: float32 inside, as torch computes it, double at the edges."""
    import io

    import torch

    class DoubleEdges(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.inner(x.float()).double()
            return out

    buffer = io.BytesIO()
    net.eval()
    torch.onnx.export(
        DoubleEdges(net),
        (torch.zeros(2, net.n_features, dtype=torch.float64),),
        buffer,  # type: ignore[arg-type]  # a file object works as well as a path
        input_names=[ONNX_INPUT],
        output_names=[ONNX_OUTPUT],
        dynamic_axes={ONNX_INPUT: {0: "rows"}, ONNX_OUTPUT: {0: "rows"}},
        opset_version=OPSET,
        dynamo=False,
    )
    model = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(model, full_check=True)
    return OnnxGraph(model, "float32")


def check_parity(native: Callable[[np.ndarray], np.ndarray], form: OnnxGraph, rows: np.ndarray) -> float:
    """The largest absolute difference between the two forms' outputs (grades or probabilities) on these rows;
    ParityError above tolerance."""
    session = onnx_session(form.serialized(), threads=1)
    got = np.asarray(session.run(None, {ONNX_INPUT: np.ascontiguousarray(rows, dtype=np.float64)})[0], np.float64)
    expected = np.asarray(native(rows), dtype=np.float64).reshape(got.shape)
    diff = float(np.max(np.abs(got - expected)))
    tolerance = TOLERANCE[form.precision]
    if not diff <= tolerance:
        raise ParityError(
            f"the ONNX form ({form.precision}) predicts up to {diff:.3g} away from the native model on {len(rows)} "
            f"distinct rows of the training files (tolerance {tolerance:g}): not saved"
        )
    return diff
