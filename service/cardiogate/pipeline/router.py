"""Routing rules: which complete series is analysed by which task, and why others are not.

A PACS forwards whole studies, so most series are not for us: each one that is not gets
``ignored`` with a reason an operator can read. The rules are settings
(``CARDIOGATE_ROUTING``, JSON) so a site can adapt them to its protocol names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, Field

from cardiogate.store.records import SeriesAttributes

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
XA_STORAGE = ("1.2.840.10008.5.1.4.1.1.12.1", "1.2.840.10008.5.1.4.1.1.12.1.1")


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


def route(series: SeriesAttributes, rules: RoutingRules, tasks: set[str]) -> Route:
    """Decide the task for a complete series; ``task`` None means ignored for ``reason``."""
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
        return Route(None, "localizer (scout) series")
    if "AXIAL" not in image_type:
        return Route(None, f"not an axial series (ImageType {series.ImageType or 'missing'})")
    agent = (series.ContrastBolusAgent or "").strip()
    if agent and agent.upper() not in ("NONE", "NO", "N/A"):
        return Route(
            None,
            "contrast agent given (ContrastBolusAgent is set); "
            "calcium scoring needs non-contrast CT",
        )
    names = _names(series)
    for pattern in rules.calcium_exclude:
        if re.search(pattern, names, re.IGNORECASE):
            return Route(
                None,
                f"series description or protocol matches {pattern!r} (contrast or angiography)",
            )
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
