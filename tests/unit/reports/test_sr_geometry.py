"""Outlines along pixel edges, points on a region, and patient positions back to pixels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset

from cardiogate.reports.sr_geometry import outline, pixel_position, representative_pixel


def _area(polygon: np.ndarray[Any, Any]) -> float:
    """Shoelace area of a closed polygon."""
    x, y = polygon[:-1, 0], polygon[:-1, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def _mask(rows: list[str]) -> np.ndarray[Any, Any]:
    return np.array([[c == "#" for c in row] for row in rows])


def test_a_single_pixel_is_its_four_corners() -> None:
    mask = np.zeros((4, 5), dtype=bool)
    mask[2, 3] = True
    np.testing.assert_array_equal(outline(mask), [[3, 2], [4, 2], [4, 3], [3, 3], [3, 2]])


@pytest.mark.parametrize(
    "rows",
    [
        ["##..", "##..", "..##", "..##"],  # two squares touching at a corner: one region
        [".###", ".#..", "##..", "#..."],  # an L and a diagonal step
        ["#...", ".#..", "..#.", "...#"],  # a diagonal line
        ["..#.", ".#.#", "#..."],  # corners the other way
    ],
)
def test_an_8_connected_region_is_one_closed_outline_of_its_area(rows: list[str]) -> None:
    mask = _mask(rows)
    polygon = outline(mask)
    np.testing.assert_array_equal(polygon[0], polygon[-1])
    assert _area(polygon) == pytest.approx(mask.sum())
    # no corner is visited twice except where two pixels touch diagonally
    corners = [tuple(p) for p in polygon[:-1]]
    assert len(corners) - len(set(corners)) <= mask.sum()


def test_a_hole_is_inside_the_outline() -> None:
    mask = _mask(["###", "#.#", "###"])
    assert _area(outline(mask)) == 9


def test_straight_runs_are_one_edge() -> None:
    mask = np.ones((3, 7), dtype=bool)
    assert len(outline(mask)) == 5


def test_the_representative_point_is_on_the_region() -> None:
    mask = _mask(["####", "#...", "#...", "####"])  # a C: its centroid is outside it
    x, y = representative_pixel(mask)
    assert mask[int(y), int(x)]
    assert (x % 1, y % 1) == (0.5, 0.5)  # a pixel centre


def test_a_patient_position_maps_back_to_its_pixel() -> None:
    image = Dataset()
    image.ImagePositionPatient = [-100.0, 50.0, 20.0]
    image.ImageOrientationPatient = [0.0, 1.0, 0.0, -1.0, 0.0, 0.0]  # rotated a quarter
    image.PixelSpacing = [0.5, 0.8]  # row spacing, column spacing
    row, column = 12.0, 30.0
    origin = np.array(image.ImagePositionPatient)
    position = (
        origin + column * 0.8 * np.array([0.0, 1.0, 0.0]) + row * 0.5 * np.array([-1.0, 0.0, 0.0])
    )
    assert pixel_position(image, position) == pytest.approx((row, column))
    assert pixel_position(Dataset(), position) is None
