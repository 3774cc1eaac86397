"""The calcium key images: RGB Secondary Captures with the findings burned in (PS3.3
A.8.1, :mod:`cardiogate.reports.key_images`), one per artery with calcium, on the slice
where that artery's Agatston score is largest, at W 800 / L 200. Every scored lesion on the
slice is outlined in its artery's colour (the SEG's colours) so that the calcium itself
stays visible; the artery's lesions are labelled with its score on the slice, and a legend
gives every artery's total.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import highdicom as hd
import numpy as np
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset

from cardiogate.analyses.ct_volume import CTVolume
from cardiogate.reports.capture import (
    RGB,
    font,
    image_label,
    secondary_capture,
    source_reference,
    text_box,
    windowed,
)
from cardiogate.reports.common import NOT_FOR_DIAGNOSTIC_USE, ModelIdentity, ObjectIdentity, Part
from cardiogate.reports.key_images import (
    enlarge,
    label_size,
    largest_component,
    line_height,
    orientation_letters,
    outline,
)
from cardiogate.tasks.calcium.analysis import CalciumResult
from cardiogate.tasks.calcium.scoring import ARTERIES
from cardiogate.tasks.calcium.seg import ARTERY_COLOURS

CT_WINDOW = (200.0, 800.0)  # (level, width) in HU


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
    line = line_height(picture.height)
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
