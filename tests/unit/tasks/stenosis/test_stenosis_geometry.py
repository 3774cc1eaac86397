"""Grading bands, heatmap peaks and vessel tracing of the stenosis analysis."""

from __future__ import annotations

import numpy as np
import pytest

from cardiogate.tasks.stenosis.geometry import grade, heatmap_peaks, vessel_course


@pytest.mark.parametrize(
    ("percent", "category"),
    [
        (0.0, "0"),
        (0.5, "0"),
        (1.0, "1"),
        (24.9, "1"),
        (25.0, "2"),
        (49.9, "2"),
        (50.0, "3"),
        (69.9, "3"),
        (70.0, "4A"),
        (99.9, "4A"),
        (100.0, "5"),
        (130.0, "5"),
        (-4.0, "0"),
    ],
)
def test_cad_rads_band_edges(percent: float, category: str) -> None:
    assert grade(percent)[0] == category


def test_peaks_are_local_maxima_above_threshold_best_first() -> None:
    p = np.zeros((32, 32))
    p[10, 20], p[10, 21] = 0.9, 0.9  # a peak centred between two cells
    p[25, 5] = 0.7
    p[25, 7] = 0.4  # below the threshold
    peaks = heatmap_peaks(p, stride=4.0, threshold=0.5)
    assert [round(x.probability, 2) for x in peaks] == [0.9, 0.7]
    # cell (10, 20.5) covers frame pixels 40-43 x 82-85: its centre is (41.5, 83.5)
    assert (peaks[0].row, peaks[0].column) == pytest.approx((41.5, 83.5))
    assert (peaks[1].row, peaks[1].column) == pytest.approx((101.5, 21.5))
    assert heatmap_peaks(p, stride=4.0, threshold=0.95) == []


def test_vessel_course_follows_a_dark_oblique_vessel() -> None:
    rows, cols = np.mgrid[:128, :128].astype(float)
    centre = cols * 0.5 + 30  # the vessel: row = column / 2 + 30
    frame = 200.0 - 80.0 * np.exp(-(((rows - centre) / 2.0) ** 2))
    points = vessel_course(frame, 60.0, 60.0, half_length_px=12.0)
    assert len(points) == 13
    for r, c in points:
        assert abs(r - (c * 0.5 + 30)) < 1.0
    # it runs along the vessel: about 24 px end to end
    (r0, c0), (r1, c1) = points[0], points[-1]
    assert np.hypot(r1 - r0, c1 - c0) == pytest.approx(24.0, abs=2.0)


def test_the_vessel_is_traced_across_a_faint_narrowing() -> None:
    from cardiogate.tasks.stenosis.geometry import trace_vessel, vessel_axes

    rows, cols = np.mgrid[:160, :160].astype(float)
    centre = 80 + 0.004 * (cols - 80) ** 2  # a gently curved vessel, row of each column
    depth = 80.0 * (1 - 0.9 * np.exp(-(((cols - 80) / 6.0) ** 2)))  # nearly gone at x = 80
    frame = 200.0 - depth * np.exp(-(((rows - centre) / 3.0) ** 2))
    start = np.array([81.5, 80.0])  # in the narrowing, a little off its centre
    axes = vessel_axes(frame, start, [15.0, 22.0, 30.0])
    assert axes is not None
    assert sorted(round(float(a[1])) for a in axes) == [-1, 1]  # along the columns, both ways
    for axis in axes:
        points = trace_vessel(frame, start, axis, 45.0)
        assert len(points) == 45
        r, c = points[:, 0], points[:, 1]
        assert np.abs(r - (80 + 0.004 * (c - 80) ** 2)).max() < 1.6
        assert np.abs(c[-1] - 80) == pytest.approx(45.0, abs=3.0)
