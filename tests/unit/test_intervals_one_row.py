"""One wine's interval (the common request) is computed without arrays: it must be the batch computation's."""

from __future__ import annotations

import numpy as np

from wine_quality.intervals import GradeSpans

RANGES = {"3": (3.0, 5.2), "4": (3.6, 5.6), "5": (4.6, 6.1), "6": (5.1, 6.8), "7": (5.9, 7.4), "8": (6.3, 7.6)}


def test_one_wine_gets_the_interval_a_batch_would_give_it() -> None:
    """Across the scale, including values no grade's range holds (the interval is the value itself) and the edges."""
    spans = GradeSpans(RANGES)
    qualities = np.concatenate([np.linspace(0, 10, 401), [3.6, 5.2, 7.6, 7.61, 2.99]])
    low, high = spans(qualities)
    for i, q in enumerate(qualities):
        one_low, one_high = spans(np.array([q]))
        assert (one_low.tolist(), one_high.tolist()) == ([low[i]], [high[i]]), q
    no_grade_holds = spans(np.array([9.0]))
    assert (no_grade_holds[0].tolist(), no_grade_holds[1].tolist()) == ([9.0], [9.0])
