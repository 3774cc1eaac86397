"""The stenosis key image: an RGB Secondary Capture with the findings burned in (PS3.3
A.8.1, :mod:`cardiogate.reports.key_images`) on the frame of the most severe lesion, each
lesion's vessel course drawn and labelled with its number on the summary page, % and
grade, and its segment when the model names vessels (``"1: 75% 4A mLAD"``; a lesion found
on another frame says which).
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset

from cardiogate.analyses.xa_cine import XACine
from cardiogate.reports.capture import (
    RGB,
    Colour,
    font,
    frame_label,
    secondary_capture,
    source_reference,
    text_box,
    windowed,
)
from cardiogate.reports.common import (
    NOT_FOR_DIAGNOSTIC_USE,
    ModelIdentity,
    ObjectIdentity,
    ReportError,
)
from cardiogate.reports.key_images import enlarge, header_top, label_size
from cardiogate.tasks.stenosis.analysis import StenosisResult

SIGNIFICANT_PERCENT = 50.0
SIGNIFICANT_COLOUR: Colour = (255, 64, 64)
OTHER_COLOUR: Colour = (255, 220, 0)


def stenosis_picture(
    result: StenosisResult, cine: XACine, sources: Sequence[Dataset]
) -> tuple[RGB, int]:
    """The most severe lesion's frame with every lesion drawn; returns (image, index)."""
    if result.most_severe is None:
        raise ReportError("no lesion: a stenosis key image needs one")
    index = result.most_severe.frame - 1
    frame = cine.frames[index]
    top = float(2**cine.bits_stored - 1)
    level, width = cine.window if cine.window else (top / 2.0, top + 1.0)
    image, factor = enlarge(windowed(frame, level, width))
    picture = Image.fromarray(image, mode="RGB")
    draw = ImageDraw.Draw(picture)
    face = font(label_size(picture.height))
    for number, lesion in enumerate(result.lesions, start=1):
        colour = (
            SIGNIFICANT_COLOUR if lesion.percent_stenosis >= SIGNIFICANT_PERCENT else OTHER_COLOUR
        )
        points = [
            ((x + 0.5) * factor - 0.5, (y + 0.5) * factor - 0.5) for x, y in lesion.polyline_px
        ]
        if len(points) >= 2:
            draw.line(points, fill=colour, width=max(2, factor))
        x, y = (lesion.x_px + 0.5) * factor, (lesion.y_px + 0.5) * factor
        radius = max(12, 9 * factor)
        ring = max(2, factor + 1)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=colour, width=ring)
        label = f"{number}: {lesion.percent_stenosis:.0f}% {lesion.cad_rads}"
        if lesion.segment_short is not None:
            label += f" {lesion.segment_short}"
        if lesion.frame != result.most_severe.frame:
            label += f" ({frame_label(sources, cine.frame_sources[lesion.frame - 1])})"
        text_box(draw, (x + radius + 4, y - radius), label, face)
    shown = frame_label(sources, cine.frame_sources[index])
    text_box(
        draw,
        (8, header_top(picture.height)),
        f"{shown.capitalize()} - {NOT_FOR_DIAGNOSTIC_USE}",
        face,
    )
    return np.asarray(picture, dtype=np.uint8), index


def stenosis_key_image(
    sources: Sequence[Dataset], result: StenosisResult, cine: XACine, identity: ObjectIdentity
) -> hd.sc.SCImage:
    """The stenosis key image (see the module's docstring)."""
    picture, index = stenosis_picture(result, cine, sources)
    sop, frame_number = cine.frame_sources[index]
    source = next((ds for ds in sources if str(ds.SOPInstanceUID) == sop), None)
    if source is None:
        raise ReportError("the key frame's instance is not among the sources")
    multi_frame = int(source.get("NumberOfFrames", 1) or 1) > 1
    return secondary_capture(
        picture,
        source,
        identity,
        ModelIdentity(result.model["name"], result.model["version"]),
        "Coronary stenoses found by AI, drawn on the most severe lesion's frame",
        orientation=None,
        references=[source_reference(source, frame_number if multi_frame else None)],
    )
