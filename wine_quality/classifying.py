"""The entry service's classification answers: a probability per grade, and of a good wine, from the classifier."""

from __future__ import annotations

import numpy as np

from wine_quality.card import good_probability
from wine_quality.grading import Grader
from wine_quality.payloads import BatchClassification, Classification, RowClassification
from wine_quality.served import ServedModel
from wine_quality.store import ModelStoreError


class Classifier:
    """Classifies wines with the served classifier, through its model service and the Grader's batching."""

    def __init__(self, grader: Grader, served: ServedModel) -> None:
        found = served.card.classification
        if found is None:
            raise ModelStoreError(f"model {served.tag} has no classification section: it cannot classify")
        self.grader, self.served = grader, served
        self.grades = [str(c) for c in found.classes]
        self.classes, self.good_threshold = np.array(found.classes), found.good_threshold

    async def _rows(self, rows: np.ndarray) -> list[RowClassification]:
        probabilities = np.asarray(await self.grader.predict(self.served.kind, rows), dtype=np.float64)
        probabilities = probabilities.reshape(len(rows), len(self.grades))
        good = good_probability(probabilities, self.classes, self.good_threshold)
        flagged = self.served.outside_training_range(rows)
        return [
            {"probabilities": dict(zip(self.grades, p, strict=True)), "good": g, "outside_training_range": o}
            for p, g, o in zip(probabilities.tolist(), good.tolist(), flagged, strict=True)
        ]

    async def one(self, row: tuple[float, ...]) -> Classification:
        """One wine's probabilities; concurrent single rows share a call to the model service."""
        (answer,) = await self._rows(np.array([row], dtype=np.float64))
        served = self.served
        return Classification(**answer, good_threshold=self.good_threshold, model=served.tag, runtime=served.runtime)

    async def many(self, rows: np.ndarray) -> BatchClassification:
        """A batch's probabilities, in order, from one call to the model service."""
        answers = await self._rows(rows)
        # built from checked values: model_construct skips validating them a second time
        return BatchClassification.model_construct(
            model=self.served.tag, runtime=self.served.runtime, good_threshold=self.good_threshold, predictions=answers
        )
