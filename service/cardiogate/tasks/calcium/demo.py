"""The calcium task's demo: a phantom calcium-scoring CT and its scores beside the truth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cardiogate.phantoms import phantoms_missing
from cardiogate.tasks.contract import DemoCase

CT_SEED = 5  # a phantom on which the shipped model (0.3.0) finds what the truth holds
SLICES = 48
ROWS = ("LM", "LAD", "LCX", "RCA", "total")


def case() -> DemoCase:
    """The phantom CT (``cardiogate_phantoms``, a separate distribution) with its truth."""
    try:
        from cardiogate_phantoms import make_ct_series
    except ModuleNotFoundError as e:
        phantoms_missing(e)

    series = make_ct_series(CT_SEED, n_slices=SLICES)
    return DemoCase("calcium CT", list(series.datasets), dict(series.truth))


def summary(result: Mapping[str, Any], truth: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "agatston": result["agatston"],
        "category": result["category"],
        "truth": {
            "agatston": truth["agatston"],
            "category": {"classic": truth["category"], "cac_drs": truth["cac_drs"]},
        },
    }


def lines(shown: Mapping[str, Any]) -> list[str]:
    out = ["Calcium (Agatston)      found     truth"]
    for artery in ROWS:
        found, truth = shown["agatston"][artery], shown["truth"]["agatston"][artery]
        out.append(f"  {artery:<20}{found:>7.1f}  {truth:>8.1f}")
    for name in ("classic", "cac_drs"):
        label = "category" if name == "classic" else "CAC-DRS"
        found, truth = shown["category"][name], shown["truth"]["category"][name]
        out.append(f"  {label:<20}{found:>7}  {truth:>8}")
    return out
