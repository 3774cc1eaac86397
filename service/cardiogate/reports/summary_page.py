"""The results summary: one page, an RGB Secondary Capture (PS3.3 A.8.1) that every viewer
shows, in a result series of its own, for the reader whose viewer shows no SR.

Calcium: the Agatston score, volume and (when calibrated) mass of each artery and in total,
the classic category and CAC-DRS, and the images with calcium as the viewer numbers them.
Stenosis: each lesion's % diameter stenosis, grade and frame as the viewer numbers it.
Both: the model, what it was trained on, whether a reviewer is needed, where the SR, SEG
and key images are, and the AI notice; no patient name, ID or date is burned in. The page
is 1280 x 1024 (the shape of a viewport) with text of 24 to 44 pixels: 14 or more on screen
when the viewer fits the page into a viewport 600 pixels high.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset

from cardiogate import __version__
from cardiogate.analyses.calcium import ARTERIES
from cardiogate.analyses.calcium_ct import CalciumResult
from cardiogate.analyses.stenosis import StenosisLesion, StenosisResult
from cardiogate.analyses.xa_cine import XACine
from cardiogate.reports.calcium_seg import ARTERY_COLOURS
from cardiogate.reports.capture import (
    RGB,
    Colour,
    ascii_text,
    font,
    frame_label,
    image_label,
    secondary_capture,
    source_reference,
)
from cardiogate.reports.common import SERIES, ModelIdentity, ObjectIdentity, ReportError

WIDTH, HEIGHT = 1280, 1024
MARGIN = 48
TITLE, HEADING, BODY, SMALL = 44, 32, 28, 24
BACKGROUND: Colour = (12, 14, 22)
TEXT: Colour = (255, 255, 255)
MUTED: Colour = (185, 190, 200)
WARNING: Colour = (255, 190, 0)
BANNER: Colour = (150, 20, 30)
AI_NOTICE = "AI result, not for diagnostic use"
VESSEL_NOT_NAMED = "vessel not named"
TOP_CLEARANCE = 56  # below the top banner: a viewer's corner overlays cover this band
MAX_LESION_ROWS = 8
LEADING = 1.35  # line height / text size
LEFT_OUT = "More than fits here: see the structured report."


def number_ranges(numbers: Iterable[int]) -> str:
    """``"3-5, 9"`` for 3, 4, 5, 9."""
    values = sorted(set(numbers))
    spans: list[list[int]] = []
    for value in values:
        if spans and value == spans[-1][1] + 1:
            spans[-1][1] = value
        else:
            spans.append([value, value])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


@dataclass(frozen=True)
class Line:
    """One text drawn on the page: where, how large, in which colour, on which ground."""

    text: str
    xy: tuple[float, float]
    size: int
    colour: Colour
    ground: Colour


@dataclass
class Summary:
    """A drawn page, the texts on it and the source images it names."""

    picture: RGB
    lines: list[Line]
    references: list[Dataset]


class Page:
    """A page of text lines: the notice banners, the model and where the other results are
    anchored at the bottom, the findings flowing from the top. A finding that does not fit
    is left out, and the page says so. Every text drawn is kept in :attr:`lines`."""

    def __init__(self) -> None:
        self.image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
        self.draw = ImageDraw.Draw(self.image)
        self.lines: list[Line] = []
        self.left_out = False
        self.y = self.banner(AI_NOTICE, 0, HEADING) + MARGIN / 2 + TOP_CLEARANCE
        footer = HEIGHT - SMALL * 1.6
        self.banner(f"{AI_NOTICE}  -  cardiogate {__version__}", footer, SMALL)
        self.bottom = footer - MARGIN / 2

    def text(
        self, text: str, xy: tuple[float, float], size: int, colour: Colour, ground: Colour
    ) -> None:
        line = Line(ascii_text(text), xy, size, colour, ground)
        self.draw.text(xy, line.text, fill=colour, font=font(size))
        self.lines.append(line)

    def banner(self, text: str, y: float, size: int) -> float:
        """A full-width band with ``text``; returns the y below it."""
        height = size * 1.6
        self.draw.rectangle((0, y, WIDTH, y + height), fill=BANNER)
        self.text(text, (MARGIN, y + size * 0.3), size, TEXT, BANNER)
        return y + height

    def anchor(self, texts: Sequence[tuple[str, int, Colour]]) -> None:
        """``texts`` (wrapped) just above the bottom block; the flow ends above them."""
        lines = [
            (part, size, colour) for text, size, colour in texts for part in self.wrap(text, size)
        ]
        self.bottom -= sum(size * LEADING for _, size, _ in lines)
        y = self.bottom
        for text, size, colour in lines:
            self.text(text, (MARGIN, y), size, colour, BACKGROUND)
            y += size * LEADING
        self.bottom -= SMALL * 0.6

    def line(self, text: str, size: int = BODY, colour: Colour = TEXT) -> None:
        self.cells([(text, colour)], [MARGIN], size)

    def cells(self, cells: Sequence[tuple[str, Colour]], stops: Sequence[float], size: int) -> None:
        """One line of cells, each starting at its stop; when it would leave no room for
        the note that something was left out, that note instead."""
        if self.left_out:
            return
        if self.y + size * LEADING + SMALL * LEADING > self.bottom:
            self.text(LEFT_OUT, (MARGIN, self.y), SMALL, WARNING, BACKGROUND)
            self.left_out = True
            return
        for (text, colour), x in zip(cells, stops, strict=True):
            self.text(text, (x, self.y), size, colour, BACKGROUND)
        self.y += size * LEADING

    def wrap(self, text: str, size: int) -> list[str]:
        """``text`` in as many lines as the width needs."""
        face = font(size)
        lines, line = [], ""
        for word in ascii_text(text).split():
            candidate = f"{line} {word}".strip()
            if line and self.draw.textlength(candidate, font=face) > WIDTH - 2 * MARGIN:
                lines.append(line)
                candidate = word
            line = candidate
        return [*lines, line] if line else lines

    def wrapped(self, text: str, size: int = SMALL, colour: Colour = MUTED) -> None:
        for line in self.wrap(text, size):
            self.line(line, size, colour)

    def gap(self, size: int = BODY) -> None:
        self.y += size * 0.6

    def finish(self, references: list[Dataset]) -> Summary:
        return Summary(np.asarray(self.image, dtype=np.uint8), self.lines, references)


def _page(
    title: str, source: str, review: str | None, model: str, notice: str, others: str
) -> Page:
    """A page with its title, source and review flag at the top, and the model, what it
    was trained on and where the other results are at the bottom."""
    page = Page()
    page.line(title, TITLE)
    page.line(source, SMALL, MUTED)
    if review:
        page.wrapped(f"Needs review: {review}", BODY, WARNING)
    page.gap()
    page.anchor([(model, SMALL, MUTED), (notice, SMALL, MUTED), (others, SMALL, MUTED)])
    return page


def _series_note(task: str, kinds: Sequence[str]) -> str:
    key = "key images" if task == "calcium" else "key image"
    names = {"sr": "structured report", "seg": "segmentation", "key": key}
    return "Also in this study: " + ", ".join(
        f"{names[kind]} (series {SERIES[(task, kind)][0]})" for kind in kinds
    )


def calcium_page(slices: Sequence[Dataset], result: CalciumResult) -> Summary:
    """The calcium summary page and the slices it names; ``slices`` in volume order."""
    geometry, parameters, model = result.geometry, result.parameters, result.model
    thickness = geometry.get("slice_thickness_mm")
    page = _page(
        "Coronary artery calcium score",
        f"CT{_series_number(slices[0])}, {geometry.get('slices', len(slices))} images"
        + (f" of {float(thickness):g} mm" if thickness else "")
        + f"; calcium >= {parameters.get('threshold_hu', 130):g} HU, "
        f"lesions >= {parameters.get('min_area_mm2', 1):g} mm2",
        result.review_reason if result.needs_review else None,
        f"Model {model.name} {model.version} ({model.provider})",
        result.notice,
        _series_note("calcium", ["sr", "seg", "key"] if result.lesions else ["sr"]),
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
    page.gap()
    named: list[int] = []
    if not result.lesions:
        page.line("No coronary calcium found: Agatston 0.", HEADING)
    else:
        page.line("Images with calcium, numbered as the viewer numbers them:", BODY, MUTED)
        for artery in ARTERIES:
            indices = sorted({les.slice_index for les in result.lesions if les.artery == artery})
            if indices:
                named += indices
                where = _images([slices[i] for i in indices])
                page.cells([(artery, ARTERY_COLOURS[artery]), (where, TEXT)], [MARGIN, 160], BODY)
    return page.finish([source_reference(slices[i]) for i in sorted(set(named))])


def _series_number(source: Dataset) -> str:
    number = source.get("SeriesNumber")
    return "" if number in (None, "") else f" series {number}"


def _images(slices: Sequence[Dataset]) -> str:
    """``images 3, 5-6`` by Instance Number, else each slice as :func:`image_label` says."""
    numbers = [ds.get("InstanceNumber") for ds in slices]
    if all(number not in (None, "") for number in numbers):
        return "images " + number_ranges(int(number) for number in numbers)
    return "; ".join(image_label(ds) for ds in slices)


def stenosis_page(sources: Sequence[Dataset], result: StenosisResult, cine: XACine) -> Summary:
    """The stenosis summary page and the frames it names."""
    projection = f"; projection {result.projection}" if result.projection else ""
    model = result.model
    page = _page(
        "Coronary stenosis - angiography",
        f"XA{_series_number(sources[0])}, {cine.n_frames} frames{projection}; "
        f"frames read by the model: {number_ranges(result.frames_used)}",
        result.review_reason if result.needs_review else None,
        f"Model {model.get('name', '?')} {model.get('version', '?')} "
        f"({model.get('provider', '?')})",
        result.notice,
        _series_note("stenosis", ["sr", "key"] if result.most_severe is not None else ["sr"]),
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
    stops = [MARGIN, 100, 210, 440, 590, 730]
    headings = ("#", "% DS", "Grade", "CAD-RADS", "Frame", "Segment (SCCT)")
    page.cells([(h, MUTED) for h in headings], stops, BODY)
    for number, lesion in enumerate(result.lesions[:MAX_LESION_ROWS], start=1):
        sop, frame = cine.frame_sources[lesion.frame - 1]
        cells = [
            str(number),
            f"{lesion.percent_stenosis:.0f}%",
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
    page.wrapped(f"% DS (diameter stenosis): {result.percent_method}.")
    page.wrapped(f"Grades: {result.grading_convention}.")
    return page.finish(references)


def segment_cell(lesion: StenosisLesion) -> str:
    """``"mid LAD (7)"``, the branch's name alone when the SCCT model does not number it,
    or that the model does not name vessels."""
    if lesion.segment is None:
        return VESSEL_NOT_NAMED
    return (
        lesion.segment
        if lesion.scct_segment is None
        else (f"{lesion.segment} ({lesion.scct_segment})")
    )


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
