"""One BentoML service per served model kind: adaptive batching in front of the model's runtime.

Every serving process imports this module (BentoML imports service.py whole in each), so it stays light: numpy,
BentoML and the model card. A model service loads its own model, and nothing of the entry's routes, protocols,
monitoring or capture. tests/unit/test_model_services.py checks that these classes match the registry of kinds.
"""

from __future__ import annotations

import gc
from typing import Annotated, Any, ClassVar

import bentoml
import numpy as np
from bentoml.models import BentoModel
from bentoml.validators import ContentType

from wine_quality.drain import entry_workers_alive, hold_sigterm_while
from wine_quality.pins import pinned_tag
from wine_quality.runtimes import Predictor
from wine_quality.served import ServedModel
from wine_quality.settings import get_settings
from wine_quality.store import find_stored

SETTINGS = get_settings()
# Upstream #5540: a caller recycling its client session mid-flight fails requests; never recycle.
STEADY_CONNECTION = {"max_requests": 2**62, "max_age": 1e12}
CONFIG: dict[str, Any] = {
    # one process each by default; a second costs the model's memory again and keeps it answering while one restarts
    "workers": SETTINGS.server.model_workers,
    "runner_connection": STEADY_CONNECTION,
    # Longer than the request's: the entry answers a request that outlasts its timeout with 504 and cancels its
    # call, so a model call never times out on its own first (the entry's client takes this timeout too).
    "traffic": {"timeout": SETTINGS.requests.drain_s},
    "logging": {"access": {"enabled": False}},
    "tracing": SETTINGS.server.bentoml_tracing,
}
_BATCHING = SETTINGS.batching
# The output's media type, declared: left to BentoML, it is derived from the output's JSON schema, which pydantic
# builds again for every response (a fifth of a model service's time per single-row call; docs/patches.md).
Output = Annotated[np.ndarray, ContentType("application/json")]


def stored_tag(kind: str) -> str:
    """The pinned version of a kind, exact. A pin that names its version is taken as it is: every serving process
    defines all three services, and reading a model's entry parses its YAML (about 0.1 s); the supervisor's
    `check_models` refuses a version the store lacks, in one line, before any worker starts. A pin without a version
    (`name`, `name:latest`) is resolved in the store (else a ModelStoreError naming the fix)."""
    tag = pinned_tag(kind, SETTINGS.models)
    if tag.partition(":")[2] not in ("", "latest"):
        return tag
    return str(find_stored(kind, tag).tag)


class ModelService:
    """What every model service does: load its pinned model, then answer arrays of rows with its output."""

    kind: ClassVar[str]
    predict_rows: Predictor

    def __init__(self) -> None:
        self.predict_rows = ServedModel.load(self.kind, SETTINGS).predictor(SETTINGS.models.threads)
        # on SIGTERM, keep answering until the entry service has answered what it accepted
        hold_sigterm_while(entry_workers_alive, max_wait=SETTINGS.requests.drain_s)
        gc.freeze()  # what loading made stays out of every later garbage collection

    @bentoml.api(
        batchable=_BATCHING.enabled,
        batch_dim=0,
        max_batch_size=_BATCHING.max_batch_size,
        max_latency_ms=_BATCHING.max_latency_ms,
    )
    async def predict_batched(self, rows: np.ndarray) -> Output:
        """The model's output for rows; adaptive batching joins concurrent calls into one array first.

        Run on the event loop: a batch of single wines takes tens of microseconds in ONNX Runtime, less than handing
        it to a worker thread and back.
        """
        return self.predict_rows(rows)

    @bentoml.api
    def predict_direct(self, rows: np.ndarray) -> Output:
        """The model's output for a whole batch request, predicted in one call as it came (in a worker thread: big
        batches take milliseconds, and ONNX Runtime releases the GIL, so the service keeps answering meanwhile)."""
        return self.predict_rows(rows)


# `bento_model` names the pinned version, so that `bentoml build` packs exactly the served models.
@bentoml.service(name="wine_quality_sklearn", **CONFIG)
class SklearnModel(ModelService):
    """The scikit-learn model's service."""

    kind = "sklearn"
    bento_model = BentoModel(stored_tag("sklearn"))


@bentoml.service(name="wine_quality_torch", **CONFIG)
class TorchModel(ModelService):
    """The PyTorch networks' service."""

    kind = "torch"
    bento_model = BentoModel(stored_tag("torch"))


@bentoml.service(name="wine_quality_classifier", **CONFIG)
class ClassifierModel(ModelService):
    """The grade classifier's service."""

    kind = "classifier"
    bento_model = BentoModel(stored_tag("classifier"))


MODEL_SERVICES = {"sklearn": SklearnModel, "torch": TorchModel, "classifier": ClassifierModel}
