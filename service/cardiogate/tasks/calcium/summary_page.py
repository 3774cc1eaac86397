"""The calcium results summary (:mod:`cardiogate.reports.summary_page`): the Agatston
score, volume and (when calibrated) mass of each artery and in total, the classic category
and CAC-DRS, the aortic valve's Agatston score apart (or that the model does not measure
it), and the images with calcium as the viewer numbers them.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset

from cardiogate.reports.capture import secondary_capture, source_reference
from cardiogate.reports.common import ModelIdentity, ObjectIdentity
from cardiogate.reports.summary_page import (
    BODY,
    HEADING,
    MARGIN,
    MUTED,
    SMALL,
    TEXT,
    Summary,
    also_in_study,
    image_numbers,
    series_label,
    titled_page,
)
from cardiogate.tasks.calcium.result import CalciumResult
from cardiogate.tasks.calcium.scoring import AORTIC_VALVE, ARTERIES
from cardiogate.tasks.calcium.seg import AORTIC_VALVE_COLOUR, ARTERY_COLOURS
from cardiogate.tasks.calcium.series import OUTPUT_SERIES

SHOWN = {"sr": "structured report", "seg": "segmentation", "key": "key images"}
VALVE_NOT_MEASURED = "Aortic valve calcium: not measured by this model"


def valve_line(result: CalciumResult) -> str:
    """What the page says of the aortic valve calcium."""
    valve = result.aortic_valve
    if valve is None:
        return VALVE_NOT_MEASURED
    return f"Aortic valve calcium (not part of the coronary score): Agatston {valve.agatston:.1f}"


def calcium_page(slices: Sequence[Dataset], result: CalciumResult) -> Summary:
    """The calcium summary page and the slices it names; ``slices`` in volume order."""
    geometry, parameters, model = result.geometry, result.parameters, result.model
    thickness = geometry.get("slice_thickness_mm")
    valve = [] if result.aortic_valve is None else result.aortic_valve.lesions
    others = ["sr"]
    if result.lesions or valve:
        others.append("seg")
    if result.lesions:
        others.append("key")
    page = titled_page(
        "Coronary artery calcium score",
        f"CT{series_label(slices[0])}, {geometry.get('slices', len(slices))} images"
        + (f" of {float(thickness):g} mm" if thickness else "")
        + f"; calcium >= {parameters.get('threshold_hu', 130):g} HU, "
        f"lesions >= {parameters.get('min_area_mm2', 1):g} mm2",
        result.review_reason if result.needs_review else None,
        f"Model {model.name} {model.version} ({model.provider})",
        result.notice,
        also_in_study([(SHOWN[kind], OUTPUT_SERIES[kind].number) for kind in others]),
    )
    mass = result.mass_mg
    stops = [MARGIN, 260, 520, 800]
    headings = ["Artery", "Agatston", "Volume (mm3)"] + (["Mass (mg)"] if mass else [])
    page.cells([(h, MUTED) for h in headings], stops[: len(headings)], BODY)
    for name in (*ARTERIES, "total"):
        values = [result.agatston.get(name, 0.0), result.volume_mm3.get(name, 0.0)]
        values += [mass.get(name, 0.0)] if mass else []
        label = "Total" if name == "total" else name
        page.cells(
            [(label, ARTERY_COLOURS.get(name, TEXT)), *((f"{v:.1f}", TEXT) for v in values)],
            stops[: len(values) + 1],
            HEADING if name == "total" else BODY,
        )
    if mass is None:
        page.line("Mass: no calibration factor, not computed", SMALL, MUTED)
    page.gap()
    category = result.category
    page.line(
        f"Category (Agatston): {category.get('classic', '?')}      "
        f"CAC-DRS: {category.get('cac_drs', '?')}",
        HEADING,
    )
    page.wrapped(valve_line(result), BODY, MUTED if result.aortic_valve is None else TEXT)
    page.gap()
    named: list[int] = []
    if not result.lesions:
        page.line("No coronary calcium found: Agatston 0.", HEADING)
    if result.lesions or valve:
        page.line("Images with calcium, numbered as the viewer numbers them:", BODY, MUTED)
    colours = {**ARTERY_COLOURS, AORTIC_VALVE: AORTIC_VALVE_COLOUR}
    for artery in (*ARTERIES, AORTIC_VALVE):
        indices = sorted({x.slice_index for x in (*result.lesions, *valve) if x.artery == artery})
        if indices:
            named += indices
            where = image_numbers([slices[i] for i in indices])
            page.cells([(artery, colours[artery]), (where, TEXT)], [MARGIN, 160], BODY)
    return page.finish([source_reference(slices[i]) for i in sorted(set(named))])


def calcium_summary_page(
    slices: Sequence[Dataset], result: CalciumResult, identity: ObjectIdentity
) -> hd.sc.SCImage:
    """The calcium summary page as an SC in the slices' study (``slices`` cleaned, in
    volume order)."""
    summary = calcium_page(slices, result)
    return secondary_capture(
        summary.picture,
        slices[0],
        identity,
        ModelIdentity(result.model.name, result.model.version),
        "Coronary calcium scored by AI: results summary",
        orientation=None,
        references=summary.references,
    )
