"""Schemathesis hooks: generated wines respect the rules JSON Schema cannot state, and feedback reaches real wines.

- free SO2 <= total SO2 (a rule across fields), in every form a wine is sent;
- each feature's bounds, where columns are named in the request rather than placed (MLflow's `dataframe_split`,
  and `instances`/`inputs` given as columns): their order is the client's, so the schema cannot tie a bound to a
  position;
- POST /feedback: one id twice in a list only with the same grade (a rule across items).
The OpenAPI document states these in words; without this filter, schemathesis counts the 400 the service rightly
answers for such a request as "schema-valid data rejected". Load with SCHEMATHESIS_HOOKS=tests.schemathesis_hooks.

A generated id is of no graded wine, so POST /feedback would only ever answer 404 (declared, and right for such an
id): `before_call` gives half the cases ids of wines the server has just graded, so that its 200 answer is reached
and checked too.
"""

from __future__ import annotations

import zlib
from typing import Any

import httpx
import schemathesis

from wine_quality.schema import EXAMPLE, FEATURES, FREE_INDEX, FREE_SO2, TOTAL_INDEX, TOTAL_SO2

BOUNDS = {f.name: (f.low, f.high) for f in FEATURES}


def _named_columns(body: Any) -> list[dict[str, Any]]:
    """Rows of the forms that name their columns (MLflow's split and column forms), as dicts."""
    if not isinstance(body, dict):
        return []
    rows: list[dict[str, Any]] = []
    split = body.get("dataframe_split")
    columns = split.get("columns") if isinstance(split, dict) else None
    if isinstance(columns, list) and all(isinstance(c, str) for c in columns) and isinstance(split.get("data"), list):
        rows += [dict(zip(split["columns"], r, strict=False)) for r in split["data"] if isinstance(r, list)]
    for key in ("instances", "inputs"):
        table = body.get(key)
        if isinstance(table, dict) and all(isinstance(v, list) for v in table.values()):  # keys are strings in JSON
            rows += [dict(zip(table, values, strict=False)) for values in zip(*table.values(), strict=False)]
    return rows


def _out_of_bounds(row: dict[str, Any]) -> bool:
    return any(
        isinstance(v, int | float) and k in BOUNDS and not BOUNDS[k][0] <= v <= BOUNDS[k][1] for k, v in row.items()
    )


def _free_above_total(wine: dict[str, Any]) -> bool:
    free, total = wine.get(FREE_SO2), wine.get(TOTAL_SO2)
    return isinstance(free, int | float) and isinstance(total, int | float) and free > total


def _two_grades_for_one_id(body: list[Any]) -> bool:
    """Whether a feedback list gives one id two different grades."""
    grades: dict[str, Any] = {}
    for item in body:
        wine, grade = (item.get("id"), item.get("quality")) if isinstance(item, dict) else (None, None)
        is_grade = isinstance(grade, int | float) and not isinstance(grade, bool)
        if isinstance(wine, str) and is_grade and grades.setdefault(wine, grade) != grade:
            return True
    return False


def _breaks_a_rule(body: Any) -> bool:
    """Whether the body holds a wine that breaks the SO2 rule, a named column's value outside its bounds, or one
    id with two grades."""
    if isinstance(body, list):
        return _two_grades_for_one_id(body)
    if not isinstance(body, dict):
        return False
    named = _named_columns(body)
    listed = [body.get(key) for key in ("samples", "dataframe_records", "instances", "inputs")]
    records = [w for rows in listed if isinstance(rows, list) for w in rows if isinstance(w, dict)]
    objects = [body, *records, *named]
    if any(_out_of_bounds(row) for row in named) or any(_free_above_total(w) for w in objects):
        return True
    rows = body.get("data")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, list) and len(row) > max(FREE_INDEX, TOTAL_INDEX):
            free, total = row[FREE_INDEX], row[TOTAL_INDEX]
            if isinstance(free, int | float) and isinstance(total, int | float) and free > total:
                return True
    return False


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Keep only test cases whose body breaks none of those rules (in every phase)."""
    return not _breaks_a_rule(case.body)


def _graded(base_url: str, n: int) -> list[str]:
    """The ids of n wines the server grades now."""
    answer = httpx.post(f"{base_url}/predict_batch", json={"model": "sklearn", "samples": [EXAMPLE] * n}, timeout=30)
    answer.raise_for_status()
    return [p["id"] for p in answer.json()["predictions"]]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    """POST /feedback: in half the cases (chosen by the first id, so a seed repeats them), each well-formed id becomes
    the id of a wine graded just now (the same generated id, the same wine): the item's validity is unchanged."""
    if (case.method.upper(), case.operation.path) != ("POST", "/feedback"):
        return
    items = [i for i in (case.body if isinstance(case.body, list) else [case.body]) if isinstance(i, dict)]
    ids = sorted({i["id"] for i in items if isinstance(i.get("id"), str) and 1 <= len(i["id"]) <= 64})
    if not ids or zlib.crc32(ids[0].encode("utf-8", "surrogatepass")) % 2:
        return
    real = dict(zip(ids, _graded(case.operation.schema.get_base_url(), len(ids)), strict=True))
    for item in items:
        if isinstance(item.get("id"), str) and item["id"] in real:
            item["id"] = real[item["id"]]
