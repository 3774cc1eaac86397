"""Pure pieces of the stenosis analysis: grading, heatmap peaks, and the vessel's course
(a short polyline for the report; a longer trace through a lesion, smoothed, resampled and
straightened along its normals for :mod:`.qca`).

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


def vessel_axes(
    image: np.ndarray[Any, Any], start: np.ndarray[Any, Any], radii: list[float]
) -> list[np.ndarray[Any, Any]] | None:
    """The two directions (unit row, column vectors) in which the vessel through ``start``
    leaves it, or None when no vessel runs through.

    The smoothed ``image`` (vessels dark) is read on circles of the given ``radii`` around
    ``start``, beyond a lesion's narrowed core; the vessel crosses each circle twice,
    nearly opposite. Darkness below each circle's upper quartile is summed over the
    circles, and the pair of dark directions most nearly opposite and darkest is taken (a
    branch leaves at a sharper angle than the vessel's own course bends).
    """
    angles = np.linspace(0.0, 2 * np.pi, 144, endpoint=False)
    unit = np.stack([np.sin(angles), np.cos(angles)], axis=1)
    darkness = np.zeros(len(angles))
    for radius in radii:
        rows = start[0] + radius * unit[:, 0]
        cols = start[1] + radius * unit[:, 1]
        values = ndimage.map_coordinates(image, [rows, cols], order=1, mode="nearest")
        level = float(np.percentile(values, 75))
        darkness += np.clip(level - values, 0.0, None) / max(level, 1e-6)
    darkness = ndimage.gaussian_filter1d(darkness, 1.5, mode="wrap")
    is_peak = (darkness >= np.roll(darkness, 1)) & (darkness > np.roll(darkness, -1))
    peaks = np.flatnonzero(is_peak & (darkness > 0.2 * float(darkness.max())))
    if float(darkness.max()) <= 0 or len(peaks) < 2:
        return None
    best, best_score = None, 0.0
    for i, a in enumerate(peaks):
        for b in peaks[i + 1 :]:
            apart = abs(float(angles[b] - angles[a]))
            apart = min(apart, 2 * np.pi - apart)
            if apart < np.pi / 2:
                continue
            straight = 1.0 - ((np.pi - apart) / (np.pi / 2)) ** 2
            score = min(darkness[a], darkness[b]) * straight
            if score > best_score:
                best, best_score = (int(a), int(b)), score
    if best is None:
        return None
    return [unit[best[0]], unit[best[1]]]


def trace_vessel(
    image: np.ndarray[Any, Any],
    start: np.ndarray[Any, Any],
    direction: np.ndarray[Any, Any],
    length_px: float,
    *,
    step_px: float = 1.0,
    half_width_px: float = 4.0,
    max_shift_px: float = 0.35,
) -> np.ndarray[Any, Any]:
    """Points (n, 2) along the dark vessel from ``start`` (not included) in ``direction``.

    Each step goes ``step_px`` ahead, then moves across to the darkest point of the smoothed
    ``image`` within ``half_width_px`` (at most ``max_shift_px``, and only to a real
    minimum, so that a faint narrowing is crossed straight); the heading follows the chord
    of the last few points. Stops at the image's edge.
    """
    limit = np.array(image.shape, dtype=np.float64) - 1
    offsets = np.arange(-half_width_px, half_width_px + 0.25, 0.5)
    p = np.asarray(start, dtype=np.float64)
    heading = np.asarray(direction, dtype=np.float64) / max(float(np.linalg.norm(direction)), 1e-9)
    points: list[np.ndarray[Any, Any]] = [p]
    for _ in range(int(length_px / step_px)):
        q = points[-1] + step_px * heading
        if not (np.all(q >= 0) and np.all(q <= limit)):
            break
        across = np.array([-heading[1], heading[0]])
        profile = ndimage.map_coordinates(
            image, [q[0] + offsets * across[0], q[1] + offsets * across[1]], order=1
        )
        k = int(np.argmin(profile))
        if 0 < k < len(profile) - 1:
            left, mid, right = profile[k - 1], profile[k], profile[k + 1]
            bend = left - 2 * mid + right
            sub = 0.5 * (left - right) / bend if bend > 0 else 0.0
            shift = float(np.clip((k + sub) * 0.5 - half_width_px, -max_shift_px, max_shift_px))
            q = q + shift * across
        points.append(q)
        chord = q - points[max(0, len(points) - 6)]
        norm = float(np.linalg.norm(chord))
        if norm > 0:
            heading = 0.5 * heading + 0.5 * chord / norm
            heading /= max(float(np.linalg.norm(heading)), 1e-9)
    return np.asarray(points[1:], dtype=np.float64).reshape(-1, 2)


def resampled(points: np.ndarray[Any, Any], step: float = 1.0) -> np.ndarray[Any, Any]:
    """The polyline smoothed a little and resampled every ``step`` pixels of arc."""
    smooth = ndimage.gaussian_filter1d(points, 2.0, axis=0, mode="nearest")
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(smooth, axis=0), axis=1))])
    if arc[-1] < 2 * step:
        return np.asarray(smooth, dtype=np.float64)
    stations = np.arange(0.0, arc[-1], step)
    out: np.ndarray[Any, Any] = np.stack(
        [np.interp(stations, arc, smooth[:, i]) for i in (0, 1)], axis=1
    )
    return out


def normals(centreline: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Unit normals of the centreline smoothed over a few mm, so that a jog where the two
    halves of the trace meet does not tilt the scan lines through the narrowing."""
    tangent = np.gradient(
        ndimage.gaussian_filter1d(centreline, 6.0, axis=0, mode="nearest"), axis=0
    )
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    out: np.ndarray[Any, Any] = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    return out


def straightened(
    roi: np.ndarray[Any, Any], centreline: np.ndarray[Any, Any], offsets: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """The straightened vessel: intensity at ``offsets`` along each point's normal."""
    unit = normals(centreline)
    rows = centreline[:, 0, None] + offsets[None, :] * unit[:, 0, None]
    cols = centreline[:, 1, None] + offsets[None, :] * unit[:, 1, None]
    values = ndimage.map_coordinates(roi, [rows, cols], order=1, mode="nearest")
    out: np.ndarray[Any, Any] = np.asarray(values, dtype=np.float64)
    return out
