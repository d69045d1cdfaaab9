"""Schemathesis hooks: generated wines respect the one rule JSON Schema cannot state (free SO2 <= total SO2).

The OpenAPI document states the rule in words; without this filter, schemathesis counts the 400 the service rightly
answers for such a wine as "schema-valid data rejected". Load with SCHEMATHESIS_HOOKS=tests.schemathesis_hooks.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from wine_quality.schema import FREE_INDEX, FREE_SO2, TOTAL_INDEX, TOTAL_SO2


def _breaks_the_so2_rule(body: Any) -> bool:
    wines = [body] if isinstance(body, dict) else []
    if isinstance(body, dict) and isinstance(body.get("samples"), list):
        wines += body["samples"]
    for wine in wines:
        if isinstance(wine, dict):
            free, total = wine.get(FREE_SO2), wine.get(TOTAL_SO2)
            if isinstance(free, int | float) and isinstance(total, int | float) and free > total:
                return True
    rows = body.get("data") if isinstance(body, dict) else None
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, list) and len(row) > max(FREE_INDEX, TOTAL_INDEX):
            free, total = row[FREE_INDEX], row[TOTAL_INDEX]
            if isinstance(free, int | float) and isinstance(total, int | float) and free > total:
                return True
    return False


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Keep only test cases whose body does not break the cross-field SO2 rule (in every phase)."""
    return not _breaks_the_so2_rule(case.body)
