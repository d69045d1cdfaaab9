"""Training with feedback and the gate, by their command lines, on the session's model store and a real capture
database whose tasted wines were captured and graded through the capture module's own write path."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import pytest

from tests.conftest import run_cli
from tests.tasted import split_red, taste
from wine_quality.capture.store import Capture
from wine_quality.pins import read_pins
from wine_quality.served import ServedModel
from wine_quality.settings import SQLITE_FILE, CaptureSettings, ModelSettings, Settings
from wine_quality.store import read_card

pytestmark = pytest.mark.slow

FAST = ["--cv-folds", "2", "--cv-repeats", "1"]  # the figures are not what is tested: a few seconds a model
NEW_WINES = 400  # graded by the service and tasted later; half train a challenger, the most recent half gate it
GATE_SHARE = ["--gate-share", "0.5"]


@dataclass(frozen=True)
class World:
    """A training file, a capture database of tasted wines that file lacks, and extra trees served from that file."""

    folder: Path
    base: Path
    capture: Path
    trees: str  # extra trees trained on the file alone, pinned in trees_pins
    trees_pins: Path

    def env(self, pins: Path) -> dict[str, str]:
        return {"WINE_CAPTURE_DIR": str(self.capture), "WINE_CAPTURE_URL": "", "WINE_MODEL_PINS": str(pins)}

    def train(self, pins: Path, *options: str) -> dict[str, Any]:
        done = run_cli("-m", "train.sklearn_model", "--data", str(self.base), *FAST, *options, env=self.env(pins))
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def promote(self, pins: Path, challenger: str, *options: str) -> subprocess.CompletedProcess[str]:
        args = ["-m", "train.promote", "--kind", "sklearn", "--challenger", challenger, "--data", str(self.base)]
        return run_cli(*args, *options, env=self.env(pins), check=False)

    def pins(self, name: str) -> Path:
        """A pin file of its own for one test, serving the extra trees."""
        path = self.folder / name
        path.write_text(self.trees_pins.read_text())
        return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    folder = tmp_path_factory.mktemp("promotion")
    base, new = split_red(folder, NEW_WINES)
    capture, trees_pins = folder / "capture", folder / "trees-pins.json"
    found = World(folder, base, capture, "", trees_pins)
    trees = found.train(trees_pins)["tag"]
    served = ServedModel.load("sklearn", Settings(models=ModelSettings(tags={"sklearn": trees})))
    assert taste(CaptureSettings(url=None, directory=capture), new, served) == NEW_WINES
    return World(folder, base, capture, trees, trees_pins)


@pytest.fixture(scope="module")
def trees_with_feedback(world: World) -> dict[str, Any]:
    return world.train(world.trees_pins, "--with-feedback", *GATE_SHARE)


def card(tag: str) -> Any:
    return read_card("sklearn", bentoml.models.get(tag))


def store_files(tag: str) -> dict[str, bytes]:
    folder = Path(bentoml.models.get(tag).path)
    return {name: (folder / name).read_bytes() for name in ("model.onnx", "model.joblib")}


def test_training_with_feedback_records_the_tasted_wines_and_pins_nothing(
    world: World, trees_with_feedback: dict[str, Any]
) -> None:
    """--with-feedback adds the tasted wines graded before the cutoff (the older half) to the file's rows, records
    how many, when they were graded and the database in the card, and leaves the pin file as it was."""
    assert trees_with_feedback["pinned"] is False
    assert read_pins(world.trees_pins) == {"sklearn": world.trees}
    tasted = card(trees_with_feedback["tag"]).feedback
    assert tasted is not None
    assert tasted.database == f"sqlite:///{(world.capture / SQLITE_FILE).resolve()}"
    assert (tasted.rows, tasted.added, tasted.held_out, tasted.replaced) == (200, 200, 200, 0)
    assert tasted.types == {"red": 200}
    assert tasted.first is not None and tasted.last is not None
    assert tasted.first < tasted.last < tasted.cutoff
    assert trees_with_feedback["feedback"]["added"] == 200
    file_only, with_feedback = card(world.trees).types["red"].rows, card(trees_with_feedback["tag"]).types["red"].rows
    assert with_feedback.rows == file_only.rows + 200 and with_feedback.rows_unique == file_only.rows_unique + 200


def test_the_same_seed_and_rows_make_the_same_model(world: World, trees_with_feedback: dict[str, Any]) -> None:
    """Trained again with the same seed on the same file and database, the model's files are the same bytes."""
    again = world.train(world.trees_pins, "--with-feedback", *GATE_SHARE)
    assert again["tag"] != trees_with_feedback["tag"]
    assert store_files(again["tag"]) == store_files(trees_with_feedback["tag"])
    assert card(again["tag"]).feedback == card(trees_with_feedback["tag"]).feedback


def test_a_worse_challenger_is_refused(world: World) -> None:
    """A linear model trained with feedback is refused against the served extra trees: exit 1, the table shows its
    higher MAE beside the served model's, and neither the pins nor its card change."""
    pins = world.pins("refused.json")
    linear = world.train(pins, "--with-feedback", *GATE_SHARE, "--estimator", "linear")["tag"]
    done = world.promote(pins, linear)
    assert done.returncode == 1, done.stderr
    assert "decision: REFUSED" in done.stdout and "fails" in done.stdout
    assert f"{world.trees} stays served" in done.stderr
    assert "200 tasted wines graded since" in done.stdout
    mae = next(line for line in done.stdout.splitlines() if " MAE " in line).split()
    challenger, served, difference, se = (float(v) for v in mae[-4:])
    assert challenger > served and difference > se
    assert read_pins(pins) == {"sklearn": world.trees}
    assert card(linear).promotion is None


def test_a_better_challenger_is_promoted_and_models_says_why(world: World, trees_with_feedback: dict[str, Any]) -> None:
    """Against a served linear model, the extra trees trained with feedback pass: exit 0, pinned, and the card that
    /models shows records the decision, the model it replaced and the table."""
    pins = world.folder / "promoted.json"
    linear = world.train(pins, "--estimator", "linear")["tag"]
    challenger = trees_with_feedback["tag"]
    done = world.promote(pins, challenger)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "decision: PROMOTED" in done.stdout and f"pinned {challenger}" in done.stdout
    assert read_pins(pins) == {"sklearn": challenger}
    shown = ServedModel.load("sklearn", Settings(models=ModelSettings(pins=pins))).info()
    assert shown.promotion is not None and shown.feedback is not None
    assert (shown.promotion.decision, shown.promotion.served_before) == ("promoted", linear)
    assert shown.promotion.evaluated_on == "feedback" and shown.promotion.types["red"].passed
    assert "decision: PROMOTED" in shown.promotion.table


def test_an_equal_challenger_is_promoted_and_seen_rows_are_not_scored(world: World) -> None:
    """The served recipe trained again is an equal challenger: on tasted wines it passes with a zero difference.
    Gated on the file, where both models were fitted on every row, the gate refuses to judge (exit 2)."""
    pins = world.pins("equal.json")
    twin = world.train(pins, "--no-pin")["tag"]
    on_file = world.promote(pins, twin, "--on", "file")
    assert on_file.returncode == 2 and "retrain it with --holdout-fit" in on_file.stdout
    assert read_pins(pins) == {"sklearn": world.trees}
    done = world.promote(pins, twin, "--on", "feedback")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{NEW_WINES} tasted wines" in done.stdout and "+0.000" in done.stdout
    assert read_pins(pins) == {"sklearn": twin}


def test_without_feedback_the_gate_scores_the_files_held_out_rows(world: World) -> None:
    """Two models fitted on the training rows of one split (--holdout-fit) are compared on its held-out rows: the
    linear challenger is refused there too."""
    pins = world.folder / "file.json"
    world.train(pins, "--holdout-fit")
    linear = world.train(pins, "--holdout-fit", "--no-pin", "--estimator", "linear")["tag"]
    done = world.promote(pins, linear)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "held-out rows of the data files" in done.stdout and "decision: REFUSED" in done.stdout


def test_what_cannot_be_judged_ends_with_exit_2_and_its_reason(world: World) -> None:
    """An unknown tag, no capture database and a database without labelled wines: a one-line reason, exit 2."""
    unknown = world.promote(world.trees_pins, "wine_quality_sklearn:nosuchversion")
    assert unknown.returncode == 2 and "is not in the model store" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    empty = world.folder / "empty"
    args = ["-m", "train.sklearn_model", "--data", str(world.base), "--with-feedback"]
    env = {"WINE_CAPTURE_DIR": str(empty), "WINE_CAPTURE_URL": "", "WINE_MODEL_PINS": str(world.trees_pins)}
    missing = run_cli(*args, env=env, check=False)
    assert missing.returncode == 2 and "no capture database" in missing.stderr
    Capture(CaptureSettings(url=None, directory=empty)).close()  # migrated, with no wine in it
    unlabelled = run_cli(*args, env=env, check=False)
    assert unlabelled.returncode == 2 and "no labelled wines" in unlabelled.stderr
    assert read_pins(world.trees_pins) == {"sklearn": world.trees}
