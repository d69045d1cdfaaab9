"""The runtimes a model service can predict with: ONNX Runtime (the default) or the model's native library."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from wine_quality.schema import TARGET_HIGH, TARGET_LOW

Runtime = Literal["onnx", "native"]
Predictor = Callable[[np.ndarray], np.ndarray]
ONNX_FILE = "model.onnx"
# every ONNX form saved by training: `features` double [N, 12], MODEL_INPUTS (the features in schema order, then
# white) -> its one output: a regressor's
# `quality` double [N], the grade classifier's `probabilities` double [N, grades]
ONNX_INPUT, ONNX_OUTPUT, ONNX_PROBABILITIES = "features", "quality", "probabilities"
ONNX_SLICE_ROWS = 1024


def onnx_session(model: bytes | Path, threads: int) -> Any:
    """An ONNX Runtime session on the CPU with this many intra-op threads and no inter-op pool."""
    # ONNX Runtime's telemetry looks mobile.events.data.microsoft.com up from a thread of its own, again and again, for
    # as long as the process lives; only this variable, set before the import, stops it (disable_telemetry_events()
    # after the import does not). A model service has nothing to tell Microsoft.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    source = str(model) if isinstance(model, Path) else model
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    _return_freed_heap()
    return session


def _return_freed_heap() -> None:
    """Give the heap that creating a session used and freed back to the system.

    Parsing a tree ensemble's attributes and converting them to ONNX Runtime's trees frees far more than the trees
    keep (the extra-trees regressor: 53 MB of RSS after creating its session, 16 MB once trimmed), and glibc keeps
    freed heap in the process unless asked. Elsewhere than glibc (no malloc_trim), nothing to do.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return
    trim(0)


def load_onnx(folder: Path, threads: int) -> Predictor:
    """A model's ONNX form, run by ONNX Runtime: its one output, computed ONNX_SLICE_ROWS rows at a time.

    ONNX Runtime's arena keeps, for the process's life, the most working memory any run has needed: the grade
    classifier looks up every tree's leaf for each row (7 kB a row), and one 10,000-row batch left it 73 MB larger.
    """
    session = onnx_session(folder / ONNX_FILE, threads)
    run, outputs = session.run, [session.get_outputs()[0].name]

    def predict(rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        parts = [
            run(outputs, {ONNX_INPUT: rows[i : i + ONNX_SLICE_ROWS]})[0]
            for i in range(0, max(len(rows), 1), ONNX_SLICE_ROWS)
        ]
        out: np.ndarray = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return out

    return predict


def load_sklearn(path: Path, threads: int) -> Predictor:
    """A scikit-learn Pipeline saved with joblib."""
    import joblib

    pipeline = joblib.load(path)
    predict: Predictor = pipeline.predict
    return predict


def load_sklearn_probabilities(path: Path, threads: int) -> Predictor:
    """A scikit-learn classifier saved with joblib: its probability of each class."""
    import joblib

    predict: Predictor = joblib.load(path).predict_proba
    return predict


def load_torch(path: Path, threads: int) -> Predictor:
    """The network (or ensemble of networks) saved by train.torch_model; torch is imported here, in the one process
    that needs it."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # read when torch loads: else idle threads spin
    import torch

    from wine_quality.nets import load_net

    torch.set_num_threads(threads)
    net = load_net(torch.load(path, weights_only=True))
    predict: Predictor = net.predict
    return predict


def clipped(predict: Predictor) -> Predictor:
    """Grades on the 0-10 scale, as float64, whatever a model extrapolates to for a far-off wine."""

    def on_scale(rows: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(predict(rows), dtype=np.float64).ravel(), TARGET_LOW, TARGET_HIGH)

    return on_scale


def as_double(predict: Predictor) -> Predictor:
    """The output as float64, whatever the runtime gave."""

    def double(rows: np.ndarray) -> np.ndarray:
        return np.asarray(predict(rows), dtype=np.float64)

    return double
