"""The stenosis task's demo: a phantom LCA angiogram with a 75% LAD stenosis, and what the
model found beside the truth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cardiogate.phantoms import phantoms_missing
from cardiogate.tasks.contract import DemoCase

XA_SEED = 2  # a phantom on which the shipped model finds what the truth holds
STENOSIS = {"vessel": "LAD", "position": 0.35, "percent": 75}
SHOWN = (
    "frame",
    "percent_stenosis",
    "grade",
    "cad_rads",
    "vessel",
    "position_along_vessel",
    "segment",
)


def case() -> DemoCase:
    """The phantom cine (``cardiogate_phantoms``, a separate distribution) with its truth."""
    try:
        from cardiogate_phantoms import make_xa_cine
    except ModuleNotFoundError as e:
        phantoms_missing(e)

    series = make_xa_cine(XA_SEED, stenoses=[STENOSIS], artery="LCA")
    return DemoCase("angiogram", list(series.datasets), dict(series.truth))


def summary(result: Mapping[str, Any], truth: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "significant": result["significant"],
        "lesions": [{k: lesion.get(k) for k in SHOWN} for lesion in result["lesions"]],
        "truth": [
            {k: lesion[k] for k in ("vessel", "position", "percent_stenosis")}
            for lesion in truth["lesions"]
        ],
    }


def lines(shown: Mapping[str, Any]) -> list[str]:
    out = ["Stenoses (angiogram)"]
    none = {"frame": "-", "percent_stenosis": 0, "grade": "none found"}
    for lesion in shown["lesions"] or [none]:
        where = ""
        if lesion.get("vessel"):
            where = (
                f"  {lesion['vessel']} at {lesion['position_along_vessel'] or 0:.2f} "
                f"({lesion['segment']})"
            )
        out.append(
            f"  frame {lesion['frame']:>3}: {lesion['percent_stenosis']:.0f}%  "
            f"{lesion['grade']}  CAD-RADS {lesion.get('cad_rads', '-')}{where}"
        )
    for truth in shown["truth"]:
        out.append(
            f"  truth: {truth['vessel']} at {truth['position']:.2f} of its length, "
            f"{truth['percent_stenosis']:.0f}%"
        )
    return out
