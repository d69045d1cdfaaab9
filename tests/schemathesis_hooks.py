"""Schemathesis hooks: the one rule of a wine that JSON Schema cannot state, free SO2 <= total SO2.

It is a rule across two fields (in a row, two positions), so the document states it in words, in every wine schema's
description, and schemathesis generates wines that break it. The service rightly answers them 400 naming the rule.
Schemathesis' own positive-data check would count that as "schema-valid data rejected", so schemathesis.toml turns it
off and this module registers the same check with that one exception: a 400 that names the SO2 rule, for a body
that breaks it. Any other 400 for schema-valid data is still a failure. Load with
SCHEMATHESIS_HOOKS=tests.schemathesis_hooks.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from wine_quality.schema import FREE_ABOVE_TOTAL, FREE_INDEX, FREE_SO2, TOTAL_INDEX, TOTAL_SO2


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _free_above_total(wine: Any) -> bool:
    if isinstance(wine, dict):
        free, total = wine.get(FREE_SO2), wine.get(TOTAL_SO2)
    elif isinstance(wine, list) and len(wine) > max(FREE_INDEX, TOTAL_INDEX):
        free, total = wine[FREE_INDEX], wine[TOTAL_INDEX]
    else:
        return False
    return _numbers(free, total) and free > total


def breaks_the_so2_rule(body: Any) -> bool:
    """Whether a request body holds a wine (an object, a `samples` item or a `data` row) with free SO2 > total."""
    if not isinstance(body, dict):
        return False
    wines = [body, *(body.get("samples") or []), *(body.get("data") or [])]
    return any(_free_above_total(wine) for wine in wines)


@schemathesis.check
def positive_data_acceptance_but_the_so2_rule(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schema-valid data is accepted, except a wine that breaks the SO2 rule: that one gets a 400 naming it."""
    if response.status_code == 400 and breaks_the_so2_rule(case.body) and FREE_ABOVE_TOTAL in response.text:
        return None
    result: bool | None = positive_data_acceptance(ctx, response, case)
    return result
