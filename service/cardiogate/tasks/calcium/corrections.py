"""What a calcium reviewer corrects, and the labels one review asserts.

A lesion is numbered as the review queue lists it: the coronary ``lesions`` of the result
first (0, 1, ...), then the aortic valve's, numbered on. A reviewer may give a lesion
another artery, or ``none`` (not coronary calcium: noise, bone, metal, the aortic wall),
and add a lesion the model missed by its slice and pixel position.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cardiogate.learning.labels import NONE, Label

Artery = Literal["LM", "LAD", "LCX", "RCA", "AV", "none"]


class LesionCorrection(BaseModel):
    """The artery of the result's lesion ``index``, or ``none``: not coronary calcium."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="The lesion's number: coronary first, then valve")
    artery: Artery


class AddedLesion(BaseModel):
    """A lesion the model missed: its slice (0-based, in the series' slice order) and its
    centroid in pixels of that slice."""

    model_config = ConfigDict(extra="forbid")

    slice_index: int = Field(ge=0)
    row: float = Field(ge=0)
    col: float = Field(ge=0)
    artery: Artery


class CalciumCorrections(BaseModel):
    """One calcium reviewer's corrections; a lesion not named keeps the model's artery."""

    model_config = ConfigDict(extra="forbid")

    lesions: list[LesionCorrection] = Field(default_factory=list)
    added: list[AddedLesion] = Field(default_factory=list)


def numbered_lesions(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The result's lesions in review order: coronary, then aortic valve."""
    valve = result.get("aortic_valve")
    valve_lesions = valve.get("lesions") if isinstance(valve, Mapping) else None
    return [x for x in [*(result.get("lesions") or []), *(valve_lesions or [])] if x]


def check_indices(result: Mapping[str, Any], corrections: CalciumCorrections) -> str | None:
    """Why the corrections do not fit the result (a lesion it does not have), or None."""
    count = len(numbered_lesions(result))
    for n, lesion in enumerate(corrections.lesions):
        if lesion.index >= count:
            return f"lesions[{n}].index {lesion.index}: the result has {count} lesion(s)"
    return None


def calcium_labels(result: Mapping[str, Any], corrections: BaseModel | None) -> list[Label]:
    """``lesion/<i>``: the artery (or ``none``), weighted by the lesion's area in mm2;
    ``added``: each added lesion's artery at (slice_index, row, col)."""
    artery = {
        i: str(lesion.get("artery") or NONE) for i, lesion in enumerate(numbered_lesions(result))
    }
    area = {
        i: float(lesion.get("area_mm2") or 1.0) for i, lesion in enumerate(numbered_lesions(result))
    }
    added: list[Label] = []
    if isinstance(corrections, CalciumCorrections):
        for fix in corrections.lesions:
            if fix.index in artery:
                artery[fix.index] = fix.artery
        added = [
            Label("added", "category", a.artery, 1.0, (float(a.slice_index), a.row, a.col))
            for a in corrections.added
        ]
    return [Label(f"lesion/{i}", "category", artery[i], area[i]) for i in sorted(artery)] + added
