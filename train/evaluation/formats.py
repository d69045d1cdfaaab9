"""How the report writes figures and settings: shares as percentages, means with their spread, settings as text."""

from __future__ import annotations

from train.evaluation.candidates import Params
from train.evaluation.results import METRICS, Stat

METRIC_LABELS = dict(zip(METRICS, ("R²", "MAD", "RMSE", "±0.25", "±0.5", "±1.0"), strict=True))
SHARES = ("within_0_25", "within_0_5", "within_1_0")


def pct(stat: Stat) -> str:
    return f"{100 * stat.mean:.1f} ± {100 * stat.std:.1f} %"


def num(stat: Stat) -> str:
    return f"{stat.mean:.3f} ± {stat.std:.3f}"


def cell(name: str, stat: Stat) -> str:
    """A metric's mean ± std: shares as percentages, the rest with three decimals."""
    return pct(stat) if name in SHARES else num(stat)


def our_cell(name: str, value: float) -> str:
    # one digit more than the paper gives, so that "reached" can be read off the figures
    return f"{100 * value:.2f} %" if name in SHARES else f"{value:.3f}"


def paper_cell(name: str, value: float | None) -> str:
    """A figure as precise as the paper gives it; a dash where it gives none."""
    if value is None:
        return "–"
    return f"{100 * value:.1f} %" if name in SHARES else f"{value:.2f}"


def setting(params: Params) -> str:
    """A setting as `key=value, ...` in key order; a network by its shape and regularisation only (its training
    regime is stated apart)."""
    if not params:
        return "(none)"
    shown: Params
    if "hidden" in params:
        shown = {k: params[k] for k in ("hidden", "dropout", "weight_decay") if k in params}
    else:
        shown = dict(sorted(params.items()))
    return ", ".join(f"{k}={v}" for k, v in shown.items())
