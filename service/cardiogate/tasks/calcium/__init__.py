"""The coronary artery calcium task: Agatston, volume and mass per artery on non-contrast
cardiac CT, reported as a TID 1500 SR with a SEG, key images and a summary page; aortic
valve calcium apart from the coronary score, when the model labels it.

Routing (the ``calcium_`` keys of ``CARDIOGATE_ROUTING``): an axial CT Image Storage series
that is not contrast-enhanced by its header (``ContrastBolusAgent``, or a series description
or protocol name matching ``exclude``), with slices of ``slice_thickness_mm`` and at least
``min_instances`` of them; one reconstruction per study (:meth:`CalciumTask.preference`).
Settings (``CARDIOGATE_CALCIUM_*``): the Agatston threshold, the smallest lesion, the mass
calibration and the review thresholds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cardiogate.learning.labels import Label
from cardiogate.store.records import SeriesAttributes, StudySeries
from cardiogate.tasks.calcium import demo, review
from cardiogate.tasks.calcium.analysis import analyze_ct_with_labels
from cardiogate.tasks.calcium.corrections import (
    CalciumCorrections,
    calcium_labels,
    check_indices,
)
from cardiogate.tasks.calcium.objects import build_calcium_objects
from cardiogate.tasks.calcium.result import CalciumResult
from cardiogate.tasks.calcium.scoring import ARTERIES
from cardiogate.tasks.calcium.series import OUTPUT_SERIES
from cardiogate.tasks.contract import Analysed, DemoCase, OutputSeries, Route, Task

if TYPE_CHECKING:
    from cardiogate.inference import LoadedModel
    from cardiogate.tasks.contract import Comparison

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
AGATSTON_SLICE_MM = 3.0
VALVE_LESION = "AV (aortic valve, not coronary)"  # how a valve lesion is listed
# Series description / protocol name hints of a sharp or bone kernel (Siemens B/Br/I/Qr
# kernels of sharpness 50 and up, and the words vendors use).
SHARP_KERNEL = re.compile(
    r"sharp|bone|lung|\bdetail\b|\bedge\b|\b(?:b|br|bv|i|qr|hr)[5-9]\d[a-z]?\b", re.IGNORECASE
)


class CalciumSettings(BaseSettings):
    """``CARDIOGATE_CALCIUM_*``."""

    model_config = SettingsConfigDict(env_prefix="CARDIOGATE_CALCIUM_", extra="forbid")

    threshold_hu: float = Field(
        default=130.0, ge=0, description="Calcium candidates: pixels at or above this HU"
    )
    min_area_mm2: float = Field(
        default=1.0, ge=0, description="The smallest lesion counted, in mm2 on its slice"
    )
    mass_factor: float | None = Field(
        default=None,
        gt=0,
        description="The calcium mass calibration factor, mg/cm3 per HU, used when the header "
        "has no Calcium Scoring Mass Factor (0018,9351); unset: no mass",
    )
    review_peak_hu: float = Field(
        default=150.0,
        ge=0,
        description="A lesion peaking below this HU flags the result needs_review",
    )
    review_artery_probability: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="A lesion whose artery the model gives a mean probability below this "
        "flags the result needs_review",
    )


class CalciumRouting(BaseModel):
    """The ``calcium_`` keys of ``CARDIOGATE_ROUTING``; the defaults follow common
    calcium-scoring protocols."""

    model_config = ConfigDict(extra="forbid")

    slice_thickness_mm: tuple[float, float] = Field(
        default=(2.0, 3.5), description="The SliceThickness window, in mm, of a scored CT"
    )
    min_instances: int = Field(default=10, ge=1, description="The fewest slices of a scored CT")
    exclude: list[str] = Field(
        default_factory=lambda: [r"\bcta\b", r"angio", r"contrast", r"\bc\+", r"arterial"],
        description="A series whose SeriesDescription or ProtocolName matches one of these "
        "(case-insensitive regular expressions) is not scored",
    )
    require: list[str] = Field(
        default_factory=list,
        description="When set, a scored series' SeriesDescription or ProtocolName must match "
        "one of these (case-insensitive regular expressions)",
    )


def _name_matching(series: SeriesAttributes, pattern: str) -> str | None:
    """The keyword of the first name attribute that matches ``pattern``, if any."""
    for keyword in ("SeriesDescription", "ProtocolName"):
        if re.search(pattern, getattr(series, keyword) or "", re.IGNORECASE):
            return keyword
    return None


def _thickness(value: str | None) -> float | None:
    try:
        return float(value or "")
    except ValueError:
        return None


def sharp_kernel(series: StudySeries) -> bool:
    """Whether the series' names hint at a sharp or bone reconstruction kernel."""
    names = (series.attributes.SeriesDescription, series.attributes.ProtocolName)
    return any(SHARP_KERNEL.search(name) for name in names if name)


class CalciumTask(Task):
    name = "calcium"
    title = "coronary artery calcium score"
    result_model = CalciumResult
    settings_model = CalciumSettings
    routing_model = CalciumRouting
    output_series: ClassVar[Mapping[str, OutputSeries]] = OUTPUT_SERIES
    one_per_study = True
    correction_model = CalciumCorrections
    settings: CalciumSettings
    routing: CalciumRouting

    # -- routing ---------------------------------------------------------------------

    def route(self, series: SeriesAttributes) -> Route | None:
        if series.Modality != "CT":
            return None
        rules = self.routing
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
        for pattern in rules.exclude:
            keyword = _name_matching(series, pattern)
            if keyword is not None:
                return Route(
                    None,
                    f"not scored: contrast-enhanced or angiography ({keyword} matches '{pattern}')",
                )
        if rules.require and not any(_name_matching(series, p) for p in rules.require):
            return Route(
                None,
                "series description and protocol match none of the required calcium-scoring names",
            )
        thickness = _thickness(series.SliceThickness)
        low, high = rules.slice_thickness_mm
        if thickness is None:
            return Route(None, "SliceThickness is missing")
        if not low <= thickness <= high:
            return Route(None, f"slice thickness {thickness:g} mm is outside {low:g}-{high:g} mm")
        if series.instance_count < rules.min_instances:
            return Route(
                None,
                f"{series.instance_count} slice{'s' if series.instance_count != 1 else ''}; "
                f"a calcium scan has at least {rules.min_instances}",
            )
        return Route(self.name, f"non-contrast axial CT, {thickness:g} mm slices")

    def preference(self, series: StudySeries) -> tuple[Any, ...]:
        """1. the SliceThickness closest to 3.0 mm (the Agatston standard); 2. names that do
        not hint at a sharp or bone kernel; 3. more slices; 4. the lowest SeriesNumber (a
        missing one last), then the lowest SeriesInstanceUID."""
        thickness = _thickness(series.attributes.SliceThickness)
        return (
            abs(thickness - AGATSTON_SLICE_MM) if thickness is not None else float("inf"),
            sharp_kernel(series),
            -series.attributes.instance_count,
            series.SeriesNumber is None,
            series.SeriesNumber or 0,
            series.attributes.SeriesInstanceUID,
        )

    def chosen_reason(self, chosen: StudySeries) -> str:
        name = (
            f"series {chosen.SeriesNumber}"
            if chosen.SeriesNumber is not None
            else f"series {chosen.attributes.SeriesInstanceUID}"
        )
        thickness = _thickness(chosen.attributes.SliceThickness)
        if thickness is not None:
            name += f", {thickness:g} mm"
        return f"another reconstruction of this study is scored: {name}"

    # -- analysis --------------------------------------------------------------------

    def analyse(
        self, paths: Sequence[Path], model: LoadedModel, needed: Mapping[str, BaseModel]
    ) -> Analysed:
        options = self.settings
        result, volume, labels = analyze_ct_with_labels(
            paths,
            model,
            threshold_hu=options.threshold_hu,
            min_area_mm2=options.min_area_mm2,
            mass_factor=options.mass_factor,
            review_peak_hu=options.review_peak_hu,
            min_artery_probability=options.review_artery_probability,
        )

        def objects(**version: Any) -> list[Any]:
            return build_calcium_objects(paths, result, volume, labels, **version)

        return Analysed(result, objects)

    # -- what people see ---------------------------------------------------------------

    def summary(self, result: Mapping[str, Any]) -> str:
        total = (result.get("agatston") or {}).get("total")
        category = result.get("category") or {}
        if total is None:
            return "no score"
        valve = result.get("aortic_valve")
        return (
            f"Agatston {float(total):.1f} (classic {category.get('classic', '?')}, "
            f"CAC-DRS {category.get('cac_drs', '?')})"
        ) + (
            f"; aortic valve Agatston {float(valve.get('agatston') or 0.0):.1f}, not coronary"
            if isinstance(valve, Mapping)
            else ""
        )

    def lesion_lines(self, result: Mapping[str, Any]) -> list[str]:
        """Coronary lesions by score, then the aortic valve's (labelled as not coronary)."""
        valve = result.get("aortic_valve")
        lines = []
        for lesions, name in (
            (result.get("lesions"), None),
            (valve.get("lesions") if isinstance(valve, Mapping) else None, VALVE_LESION),
        ):
            shown = [x for x in lesions or [] if isinstance(x, Mapping)]
            shown.sort(key=lambda x: -float(x.get("agatston") or 0.0))
            lines += [
                f"{name or x.get('artery', '?')}: Agatston {float(x.get('agatston') or 0.0):.1f}, "
                f"peak {float(x.get('peak_hu') or 0.0):.0f} HU"
                for x in shown
            ]
        return lines

    def review_reason(self, result: Mapping[str, Any]) -> str | None:
        return review.review_reason(result)

    def compare(self, serving: Mapping[str, Any], candidate: Mapping[str, Any]) -> Comparison:
        from cardiogate.tasks.calcium.compare import compare

        return compare(serving, candidate)

    def review_summary(self, result: Mapping[str, Any]) -> dict[str, Any]:
        return review.summary(result)

    def report_lines(self, result: Mapping[str, Any]) -> list[str]:
        a, v = result["agatston"], result["volume_mm3"]
        lines = [f"{'artery':<7}{'Agatston':>10}{'volume mm3':>12}"]
        lines += [f"{key:<7}{a[key]:>10.1f}{v[key]:>12.1f}" for key in (*ARTERIES, "total")]
        count = len(result["lesions"])
        lines.append(
            f"category: {result['category']['classic']} (classic), "
            f"{result['category']['cac_drs']} (CAC-DRS); {count} lesion{'s' if count != 1 else ''}"
        )
        valve = result.get("aortic_valve")
        if valve is None:
            lines.append("aortic valve: not measured by this model")
        else:
            lines.append(
                f"aortic valve: Agatston {valve['agatston']:.1f}, volume "
                f"{valve['volume_mm3']:.1f} mm3, {valve['lesion_count']} lesion"
                f"{'s' if valve['lesion_count'] != 1 else ''} (not part of the coronary score)"
            )
        if result.get("needs_review"):
            lines.append(f"needs review ({result['review_reason']})")
        return lines

    def review_labels(
        self, result: Mapping[str, Any], corrections: BaseModel | None
    ) -> list[Label]:
        return calcium_labels(result, corrections)

    def correction_problem(self, result: Mapping[str, Any], corrections: BaseModel) -> str | None:
        return (
            check_indices(result, corrections)
            if isinstance(corrections, CalciumCorrections)
            else None
        )

    # -- the demo ------------------------------------------------------------------------

    def demo_case(self) -> DemoCase | None:
        return demo.case()

    def demo_summary(self, result: Mapping[str, Any], truth: Mapping[str, Any]) -> dict[str, Any]:
        return demo.summary(result, truth)

    def demo_lines(self, summary: Mapping[str, Any]) -> list[str]:
        return demo.lines(summary)
