"""The one-process variant: the same JSON API with both models loaded in the API process (for comparison only)."""

from __future__ import annotations

import gc
import os

import bentoml
import numpy as np

from service import ENTRY_SERVICE, SERVED, SETTINGS, JsonAPI, finish_entry
from wine_quality.registry import Predictor, load_predictor


@bentoml.service(name="wine_quality_one_process", workers=1, **ENTRY_SERVICE)
class OneProcess(JsonAPI):
    """Both models in this process: no hop between services, no adaptive batching."""

    def __init__(self) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", str(SETTINGS.torch_threads))
        import torch

        torch.set_num_threads(SETTINGS.torch_threads)
        self.predictors: dict[str, Predictor] = {
            kind: load_predictor(kind, bentoml.models.get(served.tag)) for kind, served in SERVED.items()
        }
        gc.freeze()  # as the composed services do

    async def predict_one(self, kind: str, row: tuple[float, ...]) -> float:
        return float(self.predictors[kind](np.array([row]))[0])

    async def predict_many(self, kind: str, rows: np.ndarray) -> np.ndarray:
        return self.predictors[kind](rows)


finish_entry(OneProcess)
