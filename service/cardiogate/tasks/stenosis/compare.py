"""A candidate stenosis model's result beside the serving one's (shadow mode).

They agree when both find the same set of significant lesions (diameter stenosis of 50%
or more) by vessel; the difference is the largest %DS of each, candidate minus serving."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cardiogate.tasks.contract import Comparison

SIGNIFICANT_PERCENT = 50.0  # %DS from which a stenosis is significant


def _lesions(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [x for x in result.get("lesions") or [] if isinstance(x, Mapping)]


def significant_vessels(result: Mapping[str, Any]) -> set[str]:
    """The vessels with a lesion of at least 50% DS; a lesion whose vessel the model did
    not name counts as ``"unnamed"``."""
    return {
        str(x.get("vessel") or x.get("artery") or "unnamed")
        for x in _lesions(result)
        if float(x.get("percent_stenosis") or 0.0) >= SIGNIFICANT_PERCENT
    }


def _max_percent(result: Mapping[str, Any]) -> float:
    return max((float(x.get("percent_stenosis") or 0.0) for x in _lesions(result)), default=0.0)


def compare(serving: Mapping[str, Any], candidate: Mapping[str, Any]) -> Comparison:
    """Agreement on the significant vessels; ``max_percent_stenosis`` difference."""
    before, after = significant_vessels(serving), significant_vessels(candidate)
    delta = round(_max_percent(candidate) - _max_percent(serving), 2)

    def shown(vessels: set[str]) -> str:
        return ", ".join(sorted(vessels)) or "none"

    summary = (
        f"same significant vessels ({shown(before)}); max %DS {delta:+.1f}"
        if before == after
        else f"significant vessels {shown(before)} -> {shown(after)}; max %DS {delta:+.1f}"
    )
    return Comparison(before == after, {"max_percent_stenosis": delta}, summary)
