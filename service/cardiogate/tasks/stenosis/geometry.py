"""Pure pieces of the stenosis analysis: grading, heatmap peaks, and the vessel's course.

Grades follow the CAD-RADS stenosis bands. CAD-RADS is defined for coronary CT
angiography; using its bands on invasive angiograms is a convention of this service, and
every result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

GRADING_CONVENTION = (
    "CAD-RADS stenosis bands applied to invasive angiography (a convention of this "
    "service; CAD-RADS is defined for coronary CT angiography)"
)

# (lowest percent, CAD-RADS category, label)
_BANDS: tuple[tuple[float, str, str], ...] = (
    (100.0, "5", "100% (occluded)"),
    (70.0, "4A", "70-99% (severe)"),
    (50.0, "3", "50-69% (moderate)"),
    (25.0, "2", "25-49% (mild)"),
    (1.0, "1", "1-24% (minimal)"),
    (0.0, "0", "0% (none)"),
)


def grade(percent: float) -> tuple[str, str]:
    """The CAD-RADS category and its band label for a % diameter stenosis.

    Examples
    --------
    >>> grade(75.0)
    ('4A', '70-99% (severe)')
    >>> grade(49.9)
    ('2', '25-49% (mild)')
    """
    value = float(np.clip(percent, 0.0, 100.0))
    for lowest, category, label in _BANDS:
        if value >= lowest:
            return category, label
    return _BANDS[-1][1], _BANDS[-1][2]  # pragma: no cover - 0.0 always matches


@dataclass(frozen=True)
class Peak:
    row: float  # sub-pixel, in the frame's pixel grid
    column: float
    probability: float


def heatmap_peaks(
    probability: np.ndarray[Any, Any],
    stride: float,
    threshold: float,
    *,
    min_distance: int = 3,
    max_peaks: int = 5,
) -> list[Peak]:
    """Local maxima of a (rows, columns) probability map at or above ``threshold``, best
    first, mapped to frame pixels (each map cell covers ``stride`` frame pixels) with a
    probability-weighted centroid of the 3x3 neighbourhood for sub-cell precision."""
    size = 2 * min_distance + 1
    is_peak = (probability == ndimage.maximum_filter(probability, size=size)) & (
        probability >= threshold
    )
    rows, cols = np.nonzero(is_peak)
    order = np.argsort(-probability[rows, cols], kind="stable")
    kept: list[tuple[int, int]] = []  # a plateau's cells are all maxima: keep one per place
    for r, c in zip(rows[order], cols[order], strict=True):
        if len(kept) < max_peaks and all(
            max(abs(r - kr), abs(c - kc)) > min_distance for kr, kc in kept
        ):
            kept.append((int(r), int(c)))
    peaks = []
    for r, c in kept:
        r0, r1 = max(r - 1, 0), min(r + 2, probability.shape[0])
        c0, c1 = max(c - 1, 0), min(c + 2, probability.shape[1])
        window = probability[r0:r1, c0:c1]
        rr, cc = np.mgrid[r0:r1, c0:c1]
        weight = float(window.sum())
        centre_r = float((rr * window).sum() / weight)
        centre_c = float((cc * window).sum() / weight)
        peaks.append(
            Peak(
                row=(centre_r + 0.5) * stride - 0.5,
                column=(centre_c + 0.5) * stride - 0.5,
                probability=float(probability[r, c]),
            )
        )
    return peaks


def vessel_course(
    frame: np.ndarray[Any, Any],
    row: float,
    column: float,
    *,
    half_length_px: float = 12.0,
    step_px: float = 2.0,
    sigma_px: float = 2.0,
) -> list[tuple[float, float]]:
    """A short polyline (row, column) along the dark vessel through (``row``, ``column``).

    The vessel's direction is the Hessian eigenvector of least curvature of the smoothed
    frame (vessels are dark ridges); the trace steps along it both ways and re-centres each
    point on the darkest pixel across the vessel. Returns the points from one end to the
    other, the given point among them.
    """
    smooth = ndimage.gaussian_filter(np.asarray(frame, dtype=np.float32), sigma_px)
    hrr = ndimage.gaussian_filter(smooth, 1.0, order=(2, 0))
    hcc = ndimage.gaussian_filter(smooth, 1.0, order=(0, 2))
    hrc = ndimage.gaussian_filter(smooth, 1.0, order=(1, 1))
    shape = np.array(smooth.shape) - 1

    def direction(r: float, c: float) -> np.ndarray[Any, Any]:
        i, j = (int(np.clip(round(v), 0, s)) for v, s in zip((r, c), shape, strict=True))
        hessian = np.array([[hrr[i, j], hrc[i, j]], [hrc[i, j], hcc[i, j]]])
        values, vectors = np.linalg.eigh(hessian)
        vector: np.ndarray[Any, Any] = vectors[:, int(np.argmin(np.abs(values)))]
        return vector

    def recentre(r: float, c: float, along: np.ndarray[Any, Any]) -> tuple[float, float]:
        across = np.array([-along[1], along[0]])
        offsets = np.arange(-3, 4, dtype=np.float64)
        rs = np.clip(r + offsets * across[0], 0, shape[0])
        cs = np.clip(c + offsets * across[1], 0, shape[1])
        values = ndimage.map_coordinates(smooth, [rs, cs], order=1)
        k = int(np.argmin(values))
        return float(rs[k]), float(cs[k])

    steps = max(1, int(half_length_px / step_px))
    start = direction(row, column)
    halves: list[list[tuple[float, float]]] = []
    for sign in (1.0, -1.0):
        points: list[tuple[float, float]] = []
        r, c, along = row, column, sign * start
        for _ in range(steps):
            r, c = r + step_px * along[0], c + step_px * along[1]
            if not (0 <= r <= shape[0] and 0 <= c <= shape[1]):
                break
            r, c = recentre(r, c, along)
            new = direction(r, c)
            along = new if float(new @ along) >= 0 else -new
            points.append((r, c))
        halves.append(points)
    return [*reversed(halves[1]), (row, column), *halves[0]]
