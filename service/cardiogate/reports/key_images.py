"""Key images: RGB Secondary Captures with the findings burned in (PS3.3 A.8.1), for
viewers that show no SR or SEG, pointing where the viewer points (image and frame numbers
as the viewer shows them, :mod:`cardiogate.reports.capture`).

- Stenosis: the frame of the most severe lesion, each lesion's vessel course drawn and
  labelled with its number on the summary page, % and grade, and its segment when the
  model names vessels (``"1: 75% 4A mLAD"``; a lesion found on another frame says which).
- Calcium: one image per artery with calcium, on the slice where that artery's Agatston
  score is largest, at W 800 / L 200. Every scored lesion on the slice is outlined in its
  artery's colour (the SEG's colours) so that the calcium itself stays visible; the artery's
  lesions are labelled with its score on the slice, and a legend gives every artery's total.

Each carries the AI notice in the image and in Image Comments, BurnedInAnnotation YES, and
references the source image (Source Image Sequence). Small images are enlarged by pixel
repetition so that outlines and text stay legible at the viewer's zoom.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import highdicom as hd
import numpy as np
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset
from scipy import ndimage

from cardiogate.analyses.calcium import ARTERIES
from cardiogate.analyses.calcium_ct import CalciumResult
from cardiogate.analyses.ct_volume import CTVolume
from cardiogate.analyses.stenosis import StenosisResult
from cardiogate.analyses.xa_cine import XACine
from cardiogate.reports.calcium_seg import ARTERY_COLOURS
from cardiogate.reports.capture import (
    RGB,
    Colour,
    font,
    frame_label,
    image_label,
    secondary_capture,
    source_reference,
    text_box,
    windowed,
)
from cardiogate.reports.common import (
    NOT_FOR_DIAGNOSTIC_USE,
    ModelIdentity,
    ObjectIdentity,
    Part,
    ReportError,
)

CT_WINDOW = (200.0, 800.0)  # (level, width) in HU
MIN_SIDE_PX = 512
SIGNIFICANT_PERCENT = 50.0
SIGNIFICANT_COLOUR: Colour = (255, 64, 64)
OTHER_COLOUR: Colour = (255, 220, 0)
OUTLINE_GAP_PX = 1  # between the calcium and its outline, in source pixels' worth at least


def enlarge(image: RGB) -> tuple[RGB, int]:
    """``image`` enlarged by the smallest whole factor that gives :data:`MIN_SIDE_PX`."""
    factor = max(1, -(-MIN_SIDE_PX // min(image.shape[:2])))
    big: RGB = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
    return big, factor


def label_size(height: int) -> int:
    """The text size of labels on a key image ``height`` pixels high."""
    return max(14, height // 28)


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
    text_box(draw, (8, 8), f"{shown.capitalize()} - {NOT_FOR_DIAGNOSTIC_USE}", face)
    return np.asarray(picture, dtype=np.uint8), index


def key_slices(result: CalciumResult) -> dict[str, int]:
    """For each artery with calcium, the slice (volume index) where its Agatston score is
    largest (the lowest index on a tie), in the order of :data:`ARTERIES`."""
    scores: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for lesion in result.lesions:
        scores[lesion.artery][lesion.slice_index] += lesion.agatston
    return {
        artery: min(scores[artery], key=lambda index: (-scores[artery][index], index))
        for artery in ARTERIES
        if scores.get(artery)
    }


def outline(mask: np.ndarray[Any, Any], factor: int) -> np.ndarray[Any, Any]:
    """A ring just outside ``mask`` (enlarged by ``factor``): the calcium stays visible."""
    big = np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)
    gap = max(1, OUTLINE_GAP_PX * factor // 2)
    width = max(2, factor // 2)
    inner = ndimage.binary_dilation(big, iterations=gap)
    ring: np.ndarray[Any, Any] = ndimage.binary_dilation(inner, iterations=width) & ~inner
    return ring


def largest_component(mask: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], ...]:
    """The (rows, columns) of the largest 8-connected region of ``mask`` (empty if none)."""
    regions, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return np.nonzero(mask)
    sizes = np.bincount(regions.ravel())[1:]
    return np.nonzero(regions == int(np.argmax(sizes)) + 1)


def calcium_picture(
    volume: CTVolume,
    labels: np.ndarray[Any, Any],
    result: CalciumResult,
    artery: str,
    index: int,
    shown: str,
) -> RGB:
    """Slice ``index`` with each scored lesion outlined by artery, ``artery``'s labelled
    with its score on this slice, and a legend of every artery's total. ``shown`` names the
    slice as the viewer does."""
    image, factor = enlarge(windowed(volume.hu[index], *CT_WINDOW))
    for name in sorted(ARTERIES, key=lambda name: name == artery):  # ``artery``'s on top
        image[outline(labels[index] == ARTERIES.index(name) + 1, factor)] = ARTERY_COLOURS[name]
    picture = Image.fromarray(image, mode="RGB")
    draw = ImageDraw.Draw(picture)
    face = font(label_size(picture.height))
    line = picture.height // 20
    on_slice = sum(
        lesion.agatston
        for lesion in result.lesions
        if lesion.artery == artery and lesion.slice_index == index
    )
    rows, columns = largest_component(labels[index] == ARTERIES.index(artery) + 1)
    if rows.size:  # the label beside the artery's largest lesion on this slice
        x = (float(columns.max()) + 1.5) * factor + 6
        y = (float(rows.min()) - 0.5) * factor - line
        text_box(draw, (x, y), f"{artery} {on_slice:.0f}", face, ARTERY_COLOURS[artery])
    text_box(draw, (8, 8), f"{artery}: {shown} - {NOT_FOR_DIAGNOSTIC_USE}", face)
    text_box(
        draw,
        (8, 8 + line),
        f"Agatston {artery} {on_slice:.0f} on this image, "
        f"{result.agatston.get(artery, 0.0):.0f} in all",
        face,
    )
    x, y = 8.0, float(picture.height - line - 8)
    for name in (*ARTERIES, "total"):
        colour = ARTERY_COLOURS.get(name, (255, 255, 255))
        text = f"{name.capitalize() if name == 'total' else name} {result.agatston[name]:.0f}"
        box = text_box(draw, (x, y), text, face, colour)
        x = box[2] + 8
    return np.asarray(picture, dtype=np.uint8)


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


def calcium_key_images(
    slices: Sequence[Dataset],
    volume: CTVolume,
    labels: np.ndarray[Any, Any],
    result: CalciumResult,
    identity: Callable[[Part], ObjectIdentity],
) -> list[hd.sc.SCImage]:
    """One key image per artery with calcium (see the module's docstring), in the order of
    :data:`ARTERIES`; ``slices`` in volume order, ``identity`` gives each artery's."""
    model = ModelIdentity(result.model.name, result.model.version)
    images = []
    for artery, index in key_slices(result).items():
        shown = image_label(slices[index])
        images.append(
            secondary_capture(
                calcium_picture(volume, labels, result, artery, index, shown),
                slices[index],
                identity(Part(artery, ARTERIES.index(artery) + 1, len(ARTERIES))),
                model,
                f"Coronary calcium scored by AI: {artery} on {shown}, outlined by artery, "
                "W 800 L 200",
                orientation=orientation_letters(volume.orientation),
                references=[source_reference(slices[index])],
            )
        )
    return images


def orientation_letters(orientation: np.ndarray[Any, Any]) -> tuple[str, str]:
    """Patient Orientation (PS3.3 C.7.6.1.1.1) of the row and column directions of an
    Image Orientation (Patient), by each direction's dominant axis."""
    letters = (("R", "L"), ("A", "P"), ("F", "H"))  # negative, positive along x, y, z

    def letter(direction: np.ndarray[Any, Any]) -> str:
        axis = int(np.argmax(np.abs(direction)))
        return letters[axis][int(direction[axis] > 0)]

    return letter(orientation[:3]), letter(orientation[3:])
