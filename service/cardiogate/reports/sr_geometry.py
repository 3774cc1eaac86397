"""Image regions for the SRs' measurement groups: lesion outlines on the pixel grid and
representative points, as 2D SCOORDs selected from one image (and frame).

SCOORD image coordinates (PS3.3 C.18.6.1.2) are (column, row) with (0, 0) at the top left
corner of the top left pixel, so pixel (row r, column c) covers [c, c + 1] x [r, r + 1] and
its centre is (c + 0.5, r + 0.5). An outline here runs along pixel edges, so the area it
encloses is exactly the lesion's pixel count; a closed POLYLINE repeats its first point as
its last (PS3.3 C.18.6.1.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import highdicom as hd
import numpy as np
from numpy.typing import ArrayLike
from pydicom.dataset import Dataset

# the four pixel edges of a foreground pixel whose neighbour on that side is background,
# as (neighbour row, neighbour column, start corner, end corner) with corners (x, y) relative
# to the pixel's top left corner; the edges run clockwise on screen (y down), interior on
# the right
_EDGES = (
    (-1, 0, (0, 0), (1, 0)),  # top
    (0, 1, (1, 0), (1, 1)),  # right
    (1, 0, (1, 1), (0, 1)),  # bottom
    (0, -1, (0, 1), (0, 0)),  # left
)


def outline(mask: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The outer boundary of the 8-connected foreground of ``mask`` that holds its first
    pixel in raster order, as a closed polygon of (column, row) pixel corners.

    Where two pixels touch only at a corner the trace turns left, into the other pixel, so
    diagonal neighbours share one outline (8-connectivity); holes are not traced. Corners
    on a straight run are left out.
    """
    padded = np.pad(np.asarray(mask, dtype=bool), 1)
    if not padded.any():
        raise ValueError("an outline needs at least one foreground pixel")
    outgoing: dict[tuple[int, int], list[tuple[int, int]]] = {}
    rows, columns = np.nonzero(padded)
    for dr, dc, start, end in _EDGES:
        open_side = ~padded[rows + dr, columns + dc]
        for r, c in zip(rows[open_side], columns[open_side], strict=True):
            a = (int(c) + start[0], int(r) + start[1])
            b = (int(c) + end[0], int(r) + end[1])
            outgoing.setdefault(a, []).append(b)
    first = (int(columns[0]), int(rows[0]))  # top left corner of the first pixel: a top edge
    points = [first]
    previous, current = first, outgoing[first][0]
    edges = sum(len(ends) for ends in outgoing.values())
    while current != first:
        if len(points) > edges:  # cannot happen on a pixel grid; never loop forever
            raise ValueError("the outline does not close")
        points.append(current)
        options = outgoing[current]
        following = options[0] if len(options) == 1 else _left_turn(previous, current, options)
        previous, current = current, following
    points.append(first)
    corners = np.asarray(points, dtype=np.float64) - 1.0  # undo the padding
    return _without_straight_runs(corners)


def _left_turn(
    previous: tuple[int, int], current: tuple[int, int], options: list[tuple[int, int]]
) -> tuple[int, int]:
    """Of two edges leaving a corner, the one that turns left (cross product < 0 on screen,
    where y points down)."""
    heading = (current[0] - previous[0], current[1] - previous[1])
    for option in options:
        turn = (option[0] - current[0], option[1] - current[1])
        if heading[0] * turn[1] - heading[1] * turn[0] < 0:
            return option
    return options[0]


def _without_straight_runs(
    points: np.ndarray[Any, np.dtype[np.float64]],
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """``points`` (closed, first == last) without the corners between collinear edges."""
    ring = points[:-1]
    before = ring - np.roll(ring, 1, axis=0)
    after = np.roll(ring, -1, axis=0) - ring
    turns = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0] != 0
    kept = ring[turns]
    return np.vstack([kept, kept[:1]])


def representative_pixel(mask: np.ndarray[Any, Any]) -> tuple[float, float]:
    """The SCOORD (column, row) of the centre of the foreground pixel nearest the
    foreground's centroid: a point on the lesion even where the lesion is not convex."""
    rows, columns = np.nonzero(mask)
    if not len(rows):
        raise ValueError("a representative point needs at least one foreground pixel")
    nearest = int(np.argmin((rows - rows.mean()) ** 2 + (columns - columns.mean()) ** 2))
    return float(columns[nearest]) + 0.5, float(rows[nearest]) + 0.5


def pixel_position(image: Dataset, position_mm: Sequence[float]) -> tuple[float, float] | None:
    """(row, column) pixel indices of a patient position on a single-frame image (PS3.3
    C.7.6.2.1.1); None when the image lacks the plane attributes."""
    try:
        origin = np.asarray(image.ImagePositionPatient, dtype=np.float64)
        orientation = np.asarray(image.ImageOrientationPatient, dtype=np.float64)
        row_spacing, column_spacing = (float(v) for v in image.PixelSpacing)
    except (AttributeError, TypeError, ValueError):
        return None
    offset = np.asarray(position_mm, dtype=np.float64) - origin
    column = float(offset @ orientation[:3]) / column_spacing
    row = float(offset @ orientation[3:]) / row_spacing
    return row, column


def image_region(
    graphic_type: hd.sr.GraphicTypeValues,
    graphic_data: ArrayLike,
    image: Dataset,
    frame_number: int | None = None,
) -> hd.sr.ImageRegion:
    """A SCOORD on ``image`` (on frame ``frame_number`` of a multi-frame image) with its
    SELECTED FROM image reference, as OHIF matches it: SOP Instance UID and frame."""
    return hd.sr.ImageRegion(
        graphic_type=graphic_type,
        graphic_data=np.asarray(graphic_data, dtype=np.float64).reshape(-1, 2),
        source_image=hd.sr.SourceImageForRegion(
            referenced_sop_class_uid=str(image.SOPClassUID),
            referenced_sop_instance_uid=str(image.SOPInstanceUID),
            referenced_frame_numbers=None if frame_number is None else [frame_number],
        ),
    )
