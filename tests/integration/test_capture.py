"""Payload capture end to end: a real `bentoml serve` keeps every wine it grades, by every route, in a real SQLite
file and in a real PostgreSQL server; tasters' grades come back through POST /feedback, live accuracy on /metrics."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest

from harness.traffic import samples
from tests.capture_served import (
    PROTOCOLS,
    ROUTES,
    Served,
    all_stored,
    ids_of,
    red_wines,
    request,
    serving,
    stored,
    v2_output,
)
from tests.postgres import (
    Postgres,
    postgres_server,  # noqa: F401  (fixture: postgres)
    wait_until,
)
from wine_quality.capture.batch import FEATURE_COLUMNS
from wine_quality.capture.tables import feedback, utc
from wine_quality.payloads import MAX_ROWS
from wine_quality.schema import FEATURE_NAMES

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("trained")]
ODD = {"alcohol": 15.5}  # inside the physical bounds, above every red wine the models were trained on
LIVE = ("mae", "within_half", "interval_coverage", "brier", "labelled")


@pytest.fixture(scope="module")
def sqlite_served(trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server capturing into the default SQLite file, in a folder of its own (WINE_CAPTURE_DIR)."""
    folder = tmp_path_factory.mktemp("capture-sqlite")
    with serving({"WINE_CAPTURE_DIR": str(folder)}, f"sqlite:///{folder / 'capture.db'}", folder, trained) as served:
        yield served


@pytest.fixture(scope="module")
def postgresql_served(
    postgres: Postgres, trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A server capturing into a database of a real PostgreSQL 15 server (WINE_CAPTURE_URL=postgresql://...)."""
    url = postgres.database("served")
    with serving({"WINE_CAPTURE_URL": url}, url, tmp_path_factory.mktemp("capture-postgresql"), trained) as served:
        yield served


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest) -> Served:
    served: Served = request.getfixturevalue(f"{request.param}_served")
    return served


def _regression(item: dict[str, Any]) -> dict[str, Any]:
    interval = item["interval"]
    return {
        "grade": item["quality"],
        "probabilities": None,
        "interval_low": interval["low"],
        "interval_high": interval["high"],
        "interval_coverage": interval["coverage"],
        "outside_training_range": item["outside_training_range"],
    }


def answered(form: str, kind: str, answer: dict[str, Any], reference: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each wine's row must hold of the answer: its grade or probabilities, interval and range flags.

    MLflow's answer has grades alone: the interval and flags are those /predict_batch answers for the same rows.
    """
    if form == "v2":
        grades, flags = v2_output(answer, "quality"), v2_output(answer, "outside_training_range")
        low, high = v2_output(answer, "quality_low"), v2_output(answer, "quality_high")
        (coverage,) = {o["parameters"]["coverage"] for o in answer["outputs"] if o["name"].startswith("quality_")}
        width = len(FEATURE_NAMES)
        return [
            _regression(
                {
                    "quality": grades[i],
                    "interval": {"low": low[i], "high": high[i], "coverage": coverage},
                    "outside_training_range": [f for f, v in zip(FEATURE_NAMES, flags[i * width :], strict=False) if v],
                }
            )
            for i in range(len(grades))
        ]
    if form in PROTOCOLS:
        assert answer["predictions"] == [r["quality"] for r in reference]
        return [_regression(r) for r in reference]
    items = [answer] if form == "object" else answer["predictions"]
    if kind != "classifier":
        return [_regression(item) for item in items]
    return [
        {
            "grade": None,
            "probabilities": item["probabilities"],
            "interval_low": None,
            "interval_high": None,
            "interval_coverage": None,
            "outside_training_range": item["outside_training_range"],
        }
        for item in items
    ]


def columns(row: Any) -> dict[str, Any]:
    """A stored row, as the expectations are written."""
    found = dict(row._mapping)
    found["features"] = [found.pop(column) for column in FEATURE_COLUMNS]
    del found["id"], found["time"]
    return found


def live_figures(labelled: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The live figures per model tag, computed here from the predictions answered and the grades sent."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for wine in labelled:
        groups[wine["model_tag"]].append(wine)
    figures = {}
    for tag, wines in groups.items():
        truth = np.array([w["truth"] for w in wines], dtype=np.float64)
        found: dict[str, float] = {"labelled": len(wines)}
        if wines[0]["grade"] is not None:
            error = np.abs(np.array([w["grade"] for w in wines]) - truth)
            found["mae"], found["within_half"] = error.mean(), (error <= 0.5).mean()
            inside = [w["interval_low"] <= t <= w["interval_high"] for w, t in zip(wines, truth, strict=True)]
            found["interval_coverage"] = float(np.mean(inside))
        else:
            brier = [
                sum((p - (grade == str(w["truth"]))) ** 2 for grade, p in w["probabilities"].items()) for w in wines
            ]
            found["brier"] = float(np.mean(brier))
        figures[tag] = found
    return figures


def assert_live_figures_are(served: Served, client: httpx.Client) -> None:
    """/metrics' wine_live_* (per model, type red) and /monitoring's `live` equal the figures computed here."""
    expected = live_figures(served.labelled)

    def read() -> dict[str, dict[str, float]]:
        text = client.get("/metrics").text
        found: dict[str, dict[str, float]] = defaultdict(dict)
        for figure in LIVE:
            for (model, wine_type), value in samples(text, f"wine_live_{figure}").items():
                assert wine_type == "red"
                found[model][figure] = value
        return found

    # the figures are cached a few seconds: wait for a reading that has counted every grade sent
    wait_until(
        lambda: {m: f.get("labelled") for m, f in read().items()} == {m: f["labelled"] for m, f in expected.items()}
    )
    found = read()
    assert found.keys() == expected.keys()
    for tag, figures in expected.items():
        assert found[tag] == pytest.approx(figures, rel=1e-9, abs=1e-12), tag
    live = {m["model"]: m for m in client.get("/monitoring").json()["live"]["models"]}
    for tag, figures in expected.items():
        assert {k: live[tag][k] for k in figures} == pytest.approx(figures, rel=1e-9, abs=1e-12), tag


def test_every_route_keeps_every_column_and_live_mae_is_the_tests_own(served: Served) -> None:
    """Wines graded and classified by every route and form (/predict, /predict_net, /predict_batch as samples and as
    columns, /classify, /classify_batch both forms, V2 infer on both regressors, /invocations as JSON and CSV), each
    request with its X-Request-ID, are read back from the database: route, protocol, model tag, runtime, kind, type,
    the 11 measurements, the grade or probabilities, the interval, the flags and the request id, one row per wine.
    The tasters' grades sent to /feedback are stored, and /metrics' wine_live_mae (and the other figures) is what the
    test computes itself from the answers and those grades."""
    rows, truths = red_wines(3 * len(ROUTES), seed=7)
    odd = rows[0].copy()  # the last wine of every batch: flagged outside the training range
    odd[FEATURE_NAMES.index("alcohol")] = ODD["alcohol"]
    expected: dict[str, dict[str, Any]] = {}
    truth: dict[str, int] = {}
    began = datetime.now(UTC)
    with served.server.client() as client:
        for number, (route, form, kind) in enumerate(ROUTES):
            picked = [1 + 2 * number] if form == "object" else [1 + 2 * number, 2 + 2 * number, 0]
            sent, tasted = rows[picked], truths[picked]
            if form != "object":
                sent[-1] = odd
            request_id = f"capture-test-{number}"
            answer = client.post(route, **request(route, form, kind, sent, {"X-Request-ID": request_id}))
            assert answer.status_code == 200, (route, form, answer.text)
            assert answer.headers["x-request-id"] == request_id
            reference: list[dict[str, Any]] = []
            if form in PROTOCOLS:
                batch = client.post("/predict_batch", **request("/predict_batch", "columns", kind, sent))
                reference = batch.json()["predictions"]
            ids = ids_of(form, answer.json())
            assert len(ids) == len(sent)
            for wine, row, grade, got in zip(
                ids, sent, tasted, answered(form, kind, answer.json(), reference), strict=True
            ):
                expected[wine] = {
                    "route": route,
                    "protocol": PROTOCOLS.get(form, "json"),
                    "request_id": request_id,
                    "model_tag": served.tags[kind],
                    "runtime": "onnx",
                    "model_kind": kind,
                    "wine_type": "red",  # every wine is red until requests carry a type
                    "features": row.tolist(),
                    **got,
                }
                truth[wine] = int(grade)
        ended = datetime.now(UTC)

        found = all_stored(served.engine, list(expected))
        for wine, want in expected.items():
            assert columns(found[wine]) == want, wine
            assert began <= utc(found[wine].time) <= ended
        assert sum(w["outside_training_range"] == ["alcohol"] for w in expected.values()) == len(ROUTES) - 3

        # the tasters' grades: one alone, then the rest as a list; sent again whole, each is accepted as it was
        first, *rest = list(truth)
        one = client.post("/feedback", json={"id": first, "quality": truth[first]})
        assert one.status_code == 200 and one.json()["stored"][0]["new"] is True, one.text
        listed = [{"id": wine, "quality": truth[wine]} for wine in rest]
        many = client.post("/feedback", json=listed)
        assert many.status_code == 200, many.text
        assert [(s["id"], s["quality"], s["new"]) for s in many.json()["stored"]] == [
            (g["id"], g["quality"], True) for g in listed
        ]
        again = client.post("/feedback", json=[{"id": first, "quality": truth[first]}, *listed])
        assert again.status_code == 200 and not any(s["new"] for s in again.json()["stored"])
        assert _grades(served, list(truth)) == truth
        served.labelled += [{**expected[wine], "truth": truth[wine]} for wine in truth]
        assert_live_figures_are(served, client)
    mae = {
        tag.split(":")[0]: round(float(f["mae"]), 3) for tag, f in live_figures(served.labelled).items() if "mae" in f
    }
    print(
        f"\n{served.engine.dialect.name}: {len(expected)} wines by {len(ROUTES)} routes and forms, all stored; {mae=}"
    )


def test_bad_feedback_gets_a_clear_4xx_and_stores_nothing(served: Served) -> None:
    """An unknown id is a 404 naming it, a grade out of 0-10 or not an integer a 400 naming `quality`, a malformed
    body a 400 (one wine given two grades in a list too), a list over the row limit a 400 naming it, another grade for
    a graded wine a 409 naming both; a list with one bad item stores none of its items. A grade written 8.0 is the
    integer 8 (as JSON Schema reads it)."""
    with served.server.client() as client:
        answer = client.post("/predict_batch", **request("/predict_batch", "columns", "sklearn", red_wines(2, 3)[0]))
        known, other = [p["id"] for p in answer.json()["predictions"]]
        all_stored(served.engine, [known, other])
        old = "0190f0a0-0000-7000-8000-000000000000"  # a well-formed id of a wine graded in 2024: none here
        for body, unknown in (
            ({"id": "no-such-wine", "quality": 5}, ["no-such-wine"]),
            ([{"id": known, "quality": 5}, {"id": old, "quality": 6}], [old]),
        ):
            refused = client.post("/feedback", json=body)
            assert refused.status_code == 404 and refused.json()["unknown"] == unknown, refused.text
            assert all(wine in refused.json()["error"] for wine in unknown)
        for quality in (11, -1, 7.5, "6", True, None):
            refused = client.post("/feedback", json={"id": known, "quality": quality})
            assert refused.status_code == 400 and "quality" in refused.json()["error"], (quality, refused.text)
        malformed: list[dict[str, Any]] = [
            {"content": b'{"id": ', "headers": {"Content-Type": "application/json"}},
            {"content": b"\xff", "headers": {"Content-Type": "application/json"}},  # not UTF-8
            {"json": {"id": known}},
            {"json": {"quality": 5}},
            {"json": {"id": known, "quality": 5, "note": "extra"}},
            {"json": {"id": "", "quality": 5}},
            {"json": [{"id": known, "quality": 5}, {"id": known, "quality": 6}]},  # one wine, two grades
            {"json": []},
            {"json": "6"},
        ]
        for body in malformed:
            refused = client.post("/feedback", **body)
            assert refused.status_code == 400 and refused.json()["error"], (body, refused.text)
        oversize = client.post("/feedback", json=[{"id": known, "quality": 5}] * (MAX_ROWS + 1))
        assert oversize.status_code == 400 and f"at most {MAX_ROWS}" in oversize.json()["error"], oversize.text[:500]
        assert _grades(served, [known, other]) == {}  # nothing of all that was stored

        stored_now = client.post("/feedback", json=[{"id": known, "quality": 8.0}])
        assert stored_now.status_code == 200 and stored_now.json()["stored"][0]["quality"] == 8, stored_now.text
        conflict = client.post("/feedback", json=[{"id": other, "quality": 5}, {"id": known, "quality": 6}])
        assert conflict.status_code == 409, conflict.text
        assert conflict.json()["conflicts"] == {known: {"stored": 8, "sent": 6}}
        assert _grades(served, [known, other]) == {known: 8}  # the list with a conflict stored nothing
        row = stored(served.engine, [known])[known]
        served.labelled.append({**columns(row), "truth": 8})
        assert_live_figures_are(served, client)


def _grades(served: Served, ids: list[str]) -> dict[str, int]:
    with served.engine.connect() as connection:
        query = feedback.select().with_only_columns(feedback.c.id, feedback.c.grade).where(feedback.c.id.in_(ids))
        return dict(connection.execute(query).all())
