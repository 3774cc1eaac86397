"""Which calcium results a reviewer should see, and what to show of them (the review queue).

The analysis decides: a result says ``needs_review`` with a ``review_reason`` from
:func:`calcium_lesion_flags` on each lesion. Rules read the stored result JSON tolerantly (a
dict), so a result written before calcium results carried ``needs_review`` is still judged
by its lesions' peak HU."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

LOW_PEAK_HU = 150.0  # the Agatston threshold is 130 HU; a lesion peaking below 150 is borderline
MIN_ARTERY_PROBABILITY = 0.6  # below it, the model is unsure which artery a lesion belongs to
LOW_PEAK, ARTERY_IN_DOUBT = "low_peak_hu", "artery_in_doubt"


def calcium_lesion_flags(
    peak_hu: float,
    artery_probability: float | None,
    *,
    low_peak_hu: float = LOW_PEAK_HU,
    min_artery_probability: float = MIN_ARTERY_PROBABILITY,
) -> list[str]:
    """Why a calcium lesion needs a reviewer: :data:`LOW_PEAK` when it peaks below
    ``low_peak_hu`` (it barely clears the 130 HU Agatston threshold, so noise, partial volume
    or calibration decides whether it counts); :data:`ARTERY_IN_DOUBT` when the model's mean
    probability of its artery is below ``min_artery_probability``."""
    flags = []
    if peak_hu < low_peak_hu:
        flags.append(LOW_PEAK)
    if artery_probability is not None and artery_probability < min_artery_probability:
        flags.append(ARTERY_IN_DOUBT)
    return flags


def calcium_reason(
    lesion_flags: Sequence[Sequence[str]], low_peak_hu: float, min_artery_probability: float
) -> str | None:
    """The review reason of a calcium result from its lesions' flags; None when none is
    flagged."""
    low = sum(LOW_PEAK in f for f in lesion_flags)
    doubt = sum(ARTERY_IN_DOUBT in f for f in lesion_flags)
    parts = []
    if low:
        parts.append(f"{low} lesion(s) with a peak below {low_peak_hu:.0f} HU (threshold 130 HU)")
    if doubt:
        parts.append(
            f"{doubt} lesion(s) whose artery is in doubt (model probability below "
            f"{min_artery_probability:.2f})"
        )
    return "; ".join(parts) or None


def low_hu_lesions(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The calcium lesions whose peak HU is below :data:`LOW_PEAK_HU` (results stored
    before lesions carried ``review_flags``)."""
    lesions = result.get("lesions") or []
    return [lesion for lesion in lesions if float(lesion.get("peak_hu", LOW_PEAK_HU)) < LOW_PEAK_HU]


def flagged_lesions(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The calcium lesions a reviewer should look at: coronary, then aortic valve."""
    if "needs_review" not in result:
        return low_hu_lesions(result)
    valve = result.get("aortic_valve") or {}
    lesions = [*(result.get("lesions") or []), *(valve.get("lesions") or [])]
    return [lesion for lesion in lesions if lesion.get("review_flags")]


def review_reason(result: Mapping[str, Any]) -> str | None:
    """Why the result needs a reviewer, or None when it does not: the analysis's own
    ``needs_review`` and ``review_reason``; for an older result without them, any lesion
    peaking below :data:`LOW_PEAK_HU`."""
    if "needs_review" not in result:
        low = low_hu_lesions(result)
        return calcium_reason([[LOW_PEAK]] * len(low), LOW_PEAK_HU, MIN_ARTERY_PROBABILITY)
    if not result.get("needs_review"):
        return None
    return str(result.get("review_reason") or "flagged for review by the analysis")


def summary(result: Mapping[str, Any]) -> dict[str, Any]:
    """A short summary for the reviewer: the total Agatston score and the flagged lesions.
    No identifiers."""
    return {
        "agatston_total": (result.get("agatston") or {}).get("total"),
        "flagged_lesions": [
            {
                "artery": lesion.get("artery"),
                "artery_probability": lesion.get("artery_probability"),
                "peak_hu": lesion.get("peak_hu"),
                "agatston": lesion.get("agatston"),
                "area_mm2": lesion.get("area_mm2"),
                "review_flags": lesion.get("review_flags", [LOW_PEAK]),
            }
            for lesion in flagged_lesions(result)
        ],
    }
