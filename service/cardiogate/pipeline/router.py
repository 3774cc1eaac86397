"""Routing rules: which complete series is analysed by which task, and why others are not.

A PACS forwards whole studies, so most series are not for us: each one that is not gets
``ignored`` with a reason an operator can read. Objects that are not images (dose reports,
other structured reports, presentation states, raw data, encapsulated documents,
segmentations) and secondary captures are recognised by their SOP Class UID (PS3.4 B.5)
before anything else, and CT localizers by ImageType (PS3.3 C.8.2.1.1.1), each with a note
("dose report (X-Ray Radiation Dose SR): not analysed"). The rules are settings
(``CARDIOGATE_ROUTING``, JSON) so a site can adapt them to its protocol names.

Contrast: calcium scoring needs a non-contrast CT. The header evidence is here
(``ContrastBolusAgent``, and series description or protocol names matching
``calcium_exclude``); the image evidence, the density of the blood pool, is checked by the
calcium analysis (:mod:`cardiogate.analyses.contrast`). Both give reasons that begin
"not scored: contrast-enhanced".

One reconstruction per study: a scanner often reconstructs one calcium acquisition several
times (3 mm and 2.5 mm, a soft and a sharp kernel) and the PACS forwards them all. The
calcium task scores one per study, chosen by :mod:`.reconstructions` in this order:

1. the SliceThickness closest to 3.0 mm (the Agatston standard);
2. a series description and protocol name that do not hint at a sharp or bone kernel;
3. more slices;
4. the lowest SeriesNumber (a missing one last), then the lowest SeriesInstanceUID.

Series complete at different times, so the choice is made each time a candidate completes,
against the study's other candidates that are routed already (queued, running, reported or
delivered). A new series that loses is ignored ("another reconstruction of this study is
scored: series 3, 3 mm"). A new series that wins is queued, and a loser still queued is
turned into ignored with that reason; a loser already running or reported is left alone
(its result stands, so that study then has two calcium results). When the chosen series
turns out not analysable (a CTA whose header said nothing, found by its pixels), the worker
routes the series passed over for it again (:func:`.reconstructions.passed_over`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, Field
from pydicom.uid import UID

from cardiogate.store.records import SeriesAttributes

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
XA_STORAGE = ("1.2.840.10008.5.1.4.1.1.12.1", "1.2.840.10008.5.1.4.1.1.12.1.1")
_STORAGE = "1.2.840.10008.5.1.4.1.1."
STRUCTURED_REPORTS = _STORAGE + "88."

# SOP classes that are not images for us, by what an operator calls them (PS3.4 B.5)
NOT_IMAGES: dict[str, str] = {
    **dict.fromkeys([_STORAGE + s for s in ("7", "7.1", "7.2", "7.3", "7.4")], "secondary capture"),
    **dict.fromkeys([_STORAGE + s for s in ("88.67", "88.68", "88.73", "88.76")], "dose report"),
    **dict.fromkeys([_STORAGE + s for s in ("88.74", "88.75")], "contrast administration report"),
    **dict.fromkeys(
        [_STORAGE + s for s in ("88.11", "88.22", "88.33", "88.34", "88.35")], "report"
    ),
    _STORAGE + "88.59": "key image note",
    **dict.fromkeys([_STORAGE + s for s in ("11.1", "11.2", "11.3", "11.4")], "presentation state"),
    _STORAGE + "66": "raw data",
    **dict.fromkeys([_STORAGE + s for s in ("66.1", "66.2", "66.3")], "registration"),
    _STORAGE + "66.4": "segmentation",
    **dict.fromkeys([_STORAGE + s for s in ("104.1", "104.2", "104.3")], "document"),
}


class RoutingRules(BaseModel):
    """Settings for routing; the defaults follow common calcium-scoring protocols."""

    calcium_slice_thickness_mm: tuple[float, float] = (2.0, 3.5)
    calcium_min_instances: int = Field(default=10, ge=1)
    # Series description / protocol name hints (case-insensitive regular expressions).
    calcium_exclude: list[str] = Field(
        default_factory=lambda: [r"\bcta\b", r"angio", r"contrast", r"\bc\+", r"arterial"]
    )
    calcium_require: list[str] = Field(default_factory=list)  # empty: no name required
    stenosis_modalities: list[str] = Field(default_factory=lambda: ["XA"])


@dataclass(frozen=True, slots=True)
class Route:
    task: str | None
    reason: str  # why: for an analysed series, the rule that matched


def _names(series: SeriesAttributes) -> str:
    return " ".join(filter(None, (series.SeriesDescription, series.ProtocolName))).lower()


def _name_matching(series: SeriesAttributes, pattern: str) -> str | None:
    """The keyword of the first name attribute that matches ``pattern``, if any."""
    for keyword in ("SeriesDescription", "ProtocolName"):
        if re.search(pattern, getattr(series, keyword) or "", re.IGNORECASE):
            return keyword
    return None


def not_image_note(SOPClassUID: str | None) -> str | None:
    """The note for a series of a SOP class that is not an image for us, else None."""
    uid = SOPClassUID or ""
    kind = NOT_IMAGES.get(uid)
    if kind is None and uid.startswith(STRUCTURED_REPORTS):
        kind = "structured report"
    if kind is None:
        return None
    name = UID(uid).name
    name = uid if name == uid else name.removesuffix(" Storage")
    return f"{kind} ({name}): not analysed"


def route(series: SeriesAttributes, rules: RoutingRules, tasks: set[str]) -> Route:
    """Decide the task for a complete series; ``task`` None means ignored for ``reason``."""
    note = not_image_note(series.SOPClassUID)
    if note is not None:
        return Route(None, note)
    modality = series.Modality or "unknown"
    if modality in rules.stenosis_modalities:
        if series.SOPClassUID not in XA_STORAGE:
            return Route(
                None, f"{modality} series of SOP class {series.SOPClassUID} is not an angiogram"
            )
        if "stenosis" not in tasks:
            return Route(None, "no stenosis model is loaded")
        return Route("stenosis", "X-ray angiography")
    if modality != "CT":
        return Route(None, f"modality {modality} is not analysed")
    return _route_ct(series, rules, tasks)


def _route_ct(series: SeriesAttributes, rules: RoutingRules, tasks: set[str]) -> Route:
    if series.SOPClassUID != CT_IMAGE_STORAGE:
        return Route(None, f"CT SOP class {series.SOPClassUID} is not CT Image Storage")
    image_type = (series.ImageType or "").upper().split("\\")
    if "LOCALIZER" in image_type:
        return Route(None, "localizer (ImageType LOCALIZER): not analysed")
    if "AXIAL" not in image_type:
        return Route(None, f"not an axial series (ImageType {series.ImageType or 'missing'})")
    agent = (series.ContrastBolusAgent or "").strip()
    if agent and agent.upper() not in ("NONE", "NO", "N/A"):
        return Route(None, "not scored: contrast-enhanced (ContrastBolusAgent is set)")
    for pattern in rules.calcium_exclude:
        keyword = _name_matching(series, pattern)
        if keyword is not None:
            return Route(
                None,
                f"not scored: contrast-enhanced or angiography ({keyword} matches '{pattern}')",
            )
    names = _names(series)
    if rules.calcium_require and not any(
        re.search(p, names, re.IGNORECASE) for p in rules.calcium_require
    ):
        return Route(
            None, "series description and protocol match none of the required calcium-scoring names"
        )
    try:
        thickness = float(series.SliceThickness) if series.SliceThickness else None
    except ValueError:
        thickness = None
    low, high = rules.calcium_slice_thickness_mm
    if thickness is None:
        return Route(None, "SliceThickness is missing")
    if not low <= thickness <= high:
        return Route(None, f"slice thickness {thickness:g} mm is outside {low:g}-{high:g} mm")
    if series.instance_count < rules.calcium_min_instances:
        return Route(
            None,
            f"{series.instance_count} slices; "
            f"a calcium scan has at least {rules.calcium_min_instances}",
        )
    if "calcium" not in tasks:
        return Route(None, "no calcium model is loaded")
    return Route("calcium", f"non-contrast axial CT, {thickness:g} mm slices")
