"""Which results a reviewer should see, and what to show of them (the review queue).

Rules read the stored result JSON tolerantly (a dict), so a result written by an older
version still shows up in the queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LOW_PEAK_HU = 150.0  # the Agatston threshold is 130 HU; a lesion peaking below 150 is borderline


def low_hu_lesions(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The calcium lesions whose peak HU is below :data:`LOW_PEAK_HU`.

    Such a lesion barely clears the 130 HU Agatston threshold, so noise, partial volume or a
    small shift in calibration decides whether it counts; a reviewer should confirm it."""
    lesions = result.get("lesions") or []
    return [lesion for lesion in lesions if float(lesion.get("peak_hu", LOW_PEAK_HU)) < LOW_PEAK_HU]


def review_reason(task: str | None, result: Mapping[str, Any]) -> str | None:
    """Why the result needs a reviewer, or None when it does not.

    Stenosis: the analysis's own ``needs_review`` and ``review_reason``. Calcium: any lesion
    with a peak HU below :data:`LOW_PEAK_HU` (:func:`low_hu_lesions`)."""
    if task == "stenosis":
        if not result.get("needs_review"):
            return None
        return str(result.get("review_reason") or "flagged for review by the analysis")
    if task == "calcium":
        low = low_hu_lesions(result)
        if not low:
            return None
        return f"{len(low)} lesion(s) with a peak below {LOW_PEAK_HU:.0f} HU (threshold 130 HU)"
    return None


def summary(task: str | None, result: Mapping[str, Any]) -> dict[str, Any]:
    """A short summary for the reviewer: stenosis probability and each lesion's percent and
    grade; calcium total Agatston and the low-HU lesions. No identifiers."""
    if task == "stenosis":
        return {
            "probability": result.get("probability"),
            "lesions": [
                {"percent_stenosis": lesion.get("percent_stenosis"), "grade": lesion.get("grade")}
                for lesion in result.get("lesions") or []
            ],
        }
    if task == "calcium":
        return {
            "agatston_total": (result.get("agatston") or {}).get("total"),
            "low_hu_lesions": [
                {
                    "artery": lesion.get("artery"),
                    "peak_hu": lesion.get("peak_hu"),
                    "agatston": lesion.get("agatston"),
                    "area_mm2": lesion.get("area_mm2"),
                }
                for lesion in low_hu_lesions(result)
            ],
        }
    return {}
