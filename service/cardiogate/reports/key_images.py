"""Key images: RGB Secondary Captures with the findings burned in (PS3.3 A.8.1), for
viewers that show no SR or SEG, pointing where the viewer points (image and frame numbers
as the viewer shows them, :mod:`cardiogate.reports.capture`). Here the drawing a task's key
images share; each task draws its own.

Each carries the AI notice in the image and in Image Comments, BurnedInAnnotation YES, and
references the source image (Source Image Sequence). Small images are enlarged by pixel
repetition so that outlines and text stay legible at the viewer's zoom.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from cardiogate.reports.capture import RGB

MIN_SIDE_PX = 512
# Text lines a viewer writes in each corner (OHIF: study date and series description at the
# top left, window and level at the bottom left): burned-in text keeps clear of them.
OVERLAY_LINES = 2


def line_height(height: int) -> int:
    """The height of a line of burned-in text on a key image ``height`` pixels high."""
    return height // 20


def header_top(height: int) -> int:
    """Where a key image's header starts: below the lines a viewer writes in its top
    corners (:data:`OVERLAY_LINES`)."""
    return 8 + OVERLAY_LINES * line_height(height)


OUTLINE_GAP_PX = 1  # between a region and its outline, in source pixels' worth at least


def enlarge(image: RGB) -> tuple[RGB, int]:
    """``image`` enlarged by the smallest whole factor that gives :data:`MIN_SIDE_PX`."""
    factor = max(1, -(-MIN_SIDE_PX // min(image.shape[:2])))
    big: RGB = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
    return big, factor


def label_size(height: int) -> int:
    """The text size of labels on a key image ``height`` pixels high."""
    return max(14, height // 28)


def outline(mask: np.ndarray[Any, Any], factor: int) -> np.ndarray[Any, Any]:
    """A ring just outside ``mask`` (enlarged by ``factor``): what it rings stays visible."""
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


def orientation_letters(orientation: np.ndarray[Any, Any]) -> tuple[str, str]:
    """Patient Orientation (PS3.3 C.7.6.1.1.1) of the row and column directions of an
    Image Orientation (Patient), by each direction's dominant axis."""
    letters = (("R", "L"), ("A", "P"), ("F", "H"))  # negative, positive along x, y, z

    def letter(direction: np.ndarray[Any, Any]) -> str:
        axis = int(np.argmax(np.abs(direction)))
        return letters[axis][int(direction[axis] > 0)]

    return letter(orientation[:3]), letter(orientation[3:])
