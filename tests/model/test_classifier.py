"""The grade classifier's training: its card, its probabilities, its ONNX form's parity, its baselines."""

from __future__ import annotations

from pathlib import Path

import bentoml
import joblib
import numpy as np
import onnx
import pytest

from train import classifier_model
from train.data import DATA_FILES, is_type, load_files, split_wines
from train.metrics import probability_metrics
from wine_quality.card import ModelCard
from wine_quality.kinds import KINDS
from wine_quality.served import ServedModel
from wine_quality.settings import ModelSettings, Settings
from wine_quality.store import read_card

SEED = 3
SMALL = ["--no-pin", "--n-estimators", "20", "--seed", str(SEED)]  # both files, the default


def served(tag: str, runtime: str) -> ServedModel:
    return ServedModel.load("classifier", Settings(models=ModelSettings(tags={"classifier": tag}, runtime=runtime)))


@pytest.fixture(scope="module")
def trained() -> tuple[str, ModelCard]:
    tag = classifier_model.main([*SMALL, "--holdout-fit"])["tag"]
    return tag, read_card("classifier", bentoml.models.get(tag))


def test_the_classifier_is_a_registered_kind_trained_by_python_m_train() -> None:
    """One registry entry names its store entry and training script, as for the regressors."""
    kind = KINDS["classifier"]
    assert (kind.task, kind.store_name, kind.train_command) == (
        "classification",
        "wine_quality_classifier",
        "python -m train.classifier_model",
    )


def test_its_card_holds_the_grades_the_threshold_and_brier_scores_beside_baselines(
    trained: tuple[str, ModelCard],
) -> None:
    """The card lists the grades seen in training (red's and white's) and the good-wine threshold; per type, its
    held-out Brier scores, recomputed here from the saved model, beat both baselines of that type (the most common
    grade, and the grade frequencies)."""
    tag, card = trained
    found = card.classification
    assert found is not None and card.kind == "classifier" and card.estimator == "calibrated_extra_trees"
    assert (found.classes, found.good_threshold) == ([3, 4, 5, 6, 7, 8, 9], 7)
    assert card.hyperparameters["good_threshold"] == 7 and card.hyperparameters["n_estimators"] == 20
    split = split_wines(load_files(DATA_FILES), 0.2, SEED)
    model = joblib.load(Path(bentoml.models.get(tag).path_of("model.joblib")))
    for wine_type, section in card.types.items():
        figures, test = section.probabilities, is_type(split.x_test, wine_type)
        assert figures is not None
        probabilities = model.predict_proba(split.x_test[test])
        again = probability_metrics(split.y_test[test], probabilities, np.array(found.classes), 7)
        assert figures.held_out.model_dump() == pytest.approx(again)
        for baseline in (figures.majority_baseline, figures.prior_baseline):
            assert figures.held_out.brier < baseline.brier and figures.held_out.brier_good < baseline.brier_good
        assert figures.majority_baseline.brier > figures.prior_baseline.brier  # one grade's certainty: the worse guess
        # the expected grade is graded like any model's prediction
        assert section.metrics.mae < 0.65 and set(section.metrics.coverage) == {"0.8", "0.9", "0.95"}


def test_its_probabilities_are_calibrated_well_enough_to_trust(trained: tuple[str, ModelCard]) -> None:
    """On the held-out rows, the wines given P(good) above one half are mostly good, those below a tenth rarely,
    and the mean P(good) is near the share of good wines."""
    tag, card = trained
    split = split_wines(load_files(DATA_FILES), 0.2, SEED)
    p = served(tag, "native").predictor(1)(split.x_test)
    good = p[:, np.array(card.classification.classes) >= 7].sum(axis=1)  # type: ignore[union-attr]
    is_good = split.y_test >= 7
    assert np.mean(is_good[good > 0.5]) > 0.5 and np.mean(is_good[good < 0.1]) < 0.1
    assert abs(np.mean(good) - np.mean(is_good)) < 0.05


def test_the_onnx_form_gives_the_same_probabilities(trained: tuple[str, ModelCard]) -> None:
    """Parity recorded at training in double precision; the saved files agree on every distinct wine of the red and
    white files, each as its own type and as the other, every row's probabilities summing to 1."""
    tag, card = trained
    assert card.onnx.precision == "double" and card.onnx.rows_checked == 5320
    assert card.onnx.max_abs_diff <= card.onnx.tolerance == 1e-9
    typed = split_wines(load_files(DATA_FILES), 0.2, SEED).x_all
    swapped = typed.copy()
    swapped[:, -1] = 1.0 - typed[:, -1]
    rows = np.concatenate([typed, swapped])
    served_onnx, native = served(tag, "onnx").predictor(1)(rows), served(tag, "native").predictor(1)(rows)
    assert served_onnx.shape == (len(rows), 7) and len(rows) == 2 * 5320
    np.testing.assert_allclose(served_onnx, native, rtol=0, atol=1e-9)
    np.testing.assert_allclose(served_onnx.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_the_onnx_form_holds_each_tree_once(trained: tuple[str, ModelCard]) -> None:
    """The saved graph has one TreeEnsemble of 20 trees for 20 estimators (one per type, per type), not one copy per
    grade, each tree answering its own target: the row of the leaf it reaches in the table of leaf probabilities."""
    tag, card = trained
    graph = onnx.load(bentoml.models.get(tag).path_of(card.onnx.file)).graph
    ensembles = [node for node in graph.node if node.op_type.startswith("TreeEnsemble")]
    assert len(ensembles) == (1 if card.layout == "pooled" else 2)
    for ensemble in ensembles:
        attributes = {a.name: a for a in ensemble.attribute}
        assert ensemble.op_type == "TreeEnsemble" and len(attributes["tree_roots"].ints) == 20
        assert attributes["n_targets"].i == 20 and set(attributes["leaf_targetids"].ints) == set(range(20))


def test_the_good_threshold_is_a_training_option() -> None:
    """--good-threshold 6 is recorded in the card and moves the good-wine Brier score's definition with it."""
    tag = classifier_model.main([*SMALL, "--good-threshold", "6", "--n-estimators", "10"])["tag"]
    card = read_card("classifier", bentoml.models.get(tag))
    assert card.classification is not None and card.classification.good_threshold == 6
    assert card.data.fitted_on == "all"
