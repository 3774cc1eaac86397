"""What a stenosis reviewer corrects, and the labels one review asserts.

A lesion is numbered by its place in the result's ``lesions`` (0, 1, ...). A reviewer says
whether it is real (``real: false``: a false lesion), and may correct its vessel, segment
and % diameter stenosis; a stenosis the model missed is added by its 1-based cine frame
and pixel position.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cardiogate.learning.labels import NONE, Label

LESION = "lesion"


class LesionCorrection(BaseModel):
    """The verdict on the result's lesion ``index``; a field left out keeps the model's."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    real: bool = True
    vessel: str | None = Field(default=None, min_length=1, max_length=16)
    segment: str | None = Field(default=None, min_length=1, max_length=64)
    percent: float | None = Field(default=None, ge=0, le=100)


class AddedStenosis(BaseModel):
    """A stenosis the model missed: its 1-based frame of the cine and pixel position."""

    model_config = ConfigDict(extra="forbid")

    frame: int = Field(ge=1)
    row: float = Field(ge=0)
    col: float = Field(ge=0)
    vessel: str = Field(min_length=1, max_length=16)
    segment: str | None = Field(default=None, min_length=1, max_length=64)
    percent: float = Field(ge=0, le=100)


class StenosisCorrections(BaseModel):
    """One stenosis reviewer's corrections; a lesion not named stays as the model says."""

    model_config = ConfigDict(extra="forbid")

    lesions: list[LesionCorrection] = Field(default_factory=list)
    added: list[AddedStenosis] = Field(default_factory=list)


def check_indices(result: Mapping[str, Any], corrections: StenosisCorrections) -> str | None:
    """Why the corrections do not fit the result (a lesion it does not have), or None."""
    count = len(result.get("lesions") or [])
    for n, lesion in enumerate(corrections.lesions):
        if lesion.index >= count:
            return f"lesions[{n}].index {lesion.index}: the result has {count} lesion(s)"
    return None


def stenosis_labels(result: Mapping[str, Any], corrections: BaseModel | None) -> list[Label]:
    """Per lesion ``i``: ``lesion/<i>`` (``lesion`` or ``none``) and, when real,
    ``lesion/<i>/vessel``, ``lesion/<i>/segment`` (categories) and ``lesion/<i>/percent``
    (value). An added stenosis is an ``added`` item whose category is its vessel at
    (frame, row, col); its segment and %DS stay in the stored corrections."""
    fixes = {}
    added: list[Label] = []
    if isinstance(corrections, StenosisCorrections):
        fixes = {fix.index: fix for fix in corrections.lesions}
        added = [
            Label("added", "category", a.vessel, 1.0, (float(a.frame), a.row, a.col))
            for a in corrections.added
        ]
    labels = []
    for i, lesion in enumerate(x for x in result.get("lesions") or [] if x):
        fix = fixes.get(i)
        if fix is not None and not fix.real:
            labels.append(Label(f"lesion/{i}", "category", NONE))
            continue
        labels.append(Label(f"lesion/{i}", "category", LESION))
        vessel = (fix.vessel if fix else None) or lesion.get("vessel")
        segment = (fix.segment if fix else None) or lesion.get("segment")
        percent = fix.percent if fix and fix.percent is not None else lesion.get("percent_stenosis")
        if vessel:
            labels.append(Label(f"lesion/{i}/vessel", "category", str(vessel)))
        if segment:
            labels.append(Label(f"lesion/{i}/segment", "category", str(segment)))
        if percent is not None:
            labels.append(Label(f"lesion/{i}/percent", "value", float(percent)))
    return labels + added
