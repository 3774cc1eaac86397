"""The stenosis results summary (:mod:`cardiogate.reports.summary_page`): each lesion's %
diameter stenosis, grade and frame as the viewer numbers it.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset

from cardiogate.analyses.xa_cine import XACine
from cardiogate.reports.capture import frame_label, secondary_capture, source_reference
from cardiogate.reports.common import ModelIdentity, ObjectIdentity, ReportError
from cardiogate.reports.summary_page import (
    BODY,
    HEADING,
    MARGIN,
    MUTED,
    SMALL,
    TEXT,
    WARNING,
    Summary,
    also_in_study,
    number_ranges,
    series_label,
    titled_page,
)
from cardiogate.tasks.stenosis.analysis import StenosisLesion, StenosisResult
from cardiogate.tasks.stenosis.segments import site_label
from cardiogate.tasks.stenosis.series import OUTPUT_SERIES

MAX_LESION_ROWS = 8
SHOWN = {"sr": "structured report", "key": "key image"}


def stenosis_page(sources: Sequence[Dataset], result: StenosisResult, cine: XACine) -> Summary:
    """The stenosis summary page and the frames it names."""
    projection = f"; projection {result.projection}" if result.projection else ""
    model = result.model
    others = ["sr", "key"] if result.most_severe is not None else ["sr"]
    page = titled_page(
        "Coronary stenosis - angiography",
        f"XA{series_label(sources[0])}, {cine.n_frames} frames{projection}; "
        f"frames read by the model: {number_ranges(result.frames_used)}",
        result.review_reason if result.needs_review else None,
        f"Model {model.get('name', '?')} {model.get('version', '?')} "
        f"({model.get('provider', '?')})",
        result.notice,
        also_in_study([(SHOWN[kind], OUTPUT_SERIES[kind].number) for kind in others]),
    )
    page.line(
        f"Significant stenosis (50% or more): {'yes' if result.significant else 'no'}"
        f"      model probability {result.probability:.2f}",
        HEADING,
    )
    page.gap()
    references: list[Dataset] = []
    if not result.lesions:
        page.line("No stenosis found.", HEADING)
        return page.finish(references)
    stops = [MARGIN, 100, 200, 455, 605, 755]  # the widest grade, "50-69% (moderate)", is 239 px
    headings = ("#", "% DS", "Grade", "CAD-RADS", "Frame", "Segment (SCCT)")
    page.cells([(h, MUTED) for h in headings], stops, BODY)
    for number, lesion in enumerate(result.lesions[:MAX_LESION_ROWS], start=1):
        sop, frame = cine.frame_sources[lesion.frame - 1]
        cells = [
            str(number),
            f"{lesion.percent_stenosis:.0f}%" + ("" if lesion.percent_method == "qca" else " *"),
            lesion.grade,
            lesion.cad_rads,
            frame_label(sources, (sop, frame)),
            segment_cell(lesion),
        ]
        colour = WARNING if lesion == result.most_severe else TEXT
        page.cells([(cell, colour) for cell in cells], stops, BODY)
        source = next((ds for ds in sources if str(ds.SOPInstanceUID) == sop), None)
        if source is None:
            raise ReportError(f"the instance of lesion {number} is not among the sources")
        reference = source_reference(
            source, frame if int(source.get("NumberOfFrames", 1) or 1) > 1 else None
        )
        if reference not in references:
            references.append(reference)
    hidden = len(result.lesions) - MAX_LESION_ROWS
    if hidden > 0:
        page.line(f"and {hidden} more lesion(s): see the structured report", BODY, MUTED)
    page.gap(SMALL)
    if any(lesion.segment is not None for lesion in result.lesions):
        page.wrapped(
            "Vessel and segment as the model identifies them on this projection, SCCT "
            "segment numbers with boundaries at typical branch positions: confirm on the image."
        )
    page.wrapped(
        "% DS (diameter stenosis) measured QCA-style: the minimal lumen against the "
        "reference diameter interpolated through the healthy vessel either side"
        + (
            "; * the model's estimate, where the lumen could not be measured."
            if any(lesion.percent_method != "qca" for lesion in result.lesions)
            else "."
        )
    )
    page.wrapped(f"Grades: {result.grading_convention}.")
    return page.finish(references)


def segment_cell(lesion: StenosisLesion) -> str:
    """``"mid LAD (7)"``, the branch's name alone when the SCCT model does not number it,
    or that the model does not name vessels."""
    return site_label(lesion.segment, lesion.scct_segment, brief=True)


def stenosis_summary_page(
    sources: Sequence[Dataset], result: StenosisResult, cine: XACine, identity: ObjectIdentity
) -> hd.sc.SCImage:
    """The stenosis summary page as an SC in the sources' study (``sources`` cleaned)."""
    summary = stenosis_page(sources, result, cine)
    return secondary_capture(
        summary.picture,
        sources[0],
        identity,
        ModelIdentity(result.model["name"], result.model["version"]),
        "Coronary stenoses found by AI: results summary",
        orientation=None,
        references=summary.references,
    )
