"""Schemathesis hooks: generated wines respect the rules JSON Schema cannot state.

- free SO2 <= total SO2 (a rule across fields), in every form a wine is sent;
- each feature's bounds, where columns are named in the request rather than placed (MLflow's `dataframe_split`,
  and `instances`/`inputs` given as columns): their order is the client's, so the schema cannot tie a bound to a
  position.
The OpenAPI document states these in words; without this filter, schemathesis counts the 400 the service rightly
answers for such a wine as "schema-valid data rejected". Load with SCHEMATHESIS_HOOKS=tests.schemathesis_hooks.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from wine_quality.schema import FEATURES, FREE_INDEX, FREE_SO2, TOTAL_INDEX, TOTAL_SO2

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


def _breaks_a_rule(body: Any) -> bool:
    """Whether the body holds a wine that breaks the SO2 rule, or a named column's value outside its bounds."""
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
