"""Quantitative coronary angiography (QCA) of one lesion on one frame.

The measurement follows the steps of edge-detection QCA (the CMS/QAngio lineage), with the
lumen at the narrowing read by videodensitometry:

1. the vessel is traced through the lesion and about ``reach_mm`` beyond it on both sides
   (:func:`~cardiogate.tasks.stenosis.geometry.trace_vessel`), from the two darkest, most
   nearly opposite directions around the sighting;
2. the frame is resampled along scan lines perpendicular to that centreline (a straightened
   vessel), and the background under each line is fitted from its bright outer parts;
3. on each line the attenuation (``log(background / value)`` where the values are
   proportional to the X-ray intensity, ``background - value`` where they are its
   logarithm: Pixel Intensity Relationship (0028,1040) LIN or LOG, PS3.3 C.8.7.1) is
   integrated across the lumen: for a round lumen the integral is proportional to its
   area, so ``sqrt(integral)`` is proportional to the diameter whatever the blur, even
   where the lumen is narrower than the edges the detector can resolve; the half-maximum
   edges of the same profile give the diameter in pixels of the healthy segments (round
   lumen: edges at 0.87 r);
4. the interpolated reference: a robust (Theil-Sen) line through the healthy segments on
   both sides of the lesion, the narrowed core excluded, evaluated where the lumen is
   narrowest;
5. %DS = 100 x (1 - MLD / reference), the MLD read from a parabola through the few scan
   lines around the narrowest one and no smaller than the noise allows (a vessel filled
   beyond the narrowing is open); the lesion length is where the lumen is narrower than
   ``length_fraction`` of the reference.

A lesion whose lumen cannot be measured reliably (no vessel through it, too short a trace,
too little healthy vessel, a reference that does not fit a line, too faint a vessel,
another vessel over or beside the narrowing) is not measured: :class:`NotMeasured` says
why, and the caller keeps the network's reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from scipy import ndimage, stats

from cardiogate.tasks.stenosis.geometry import resampled, straightened, trace_vessel, vessel_axes

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

_RELATIONSHIP = Tag("PixelIntensityRelationship")
NOMINAL_FIELD_MM = 100.0  # field at the isocentre assumed when the geometry gives no size
_ROUND_EDGE = np.sqrt(3.0) / 2  # half-maximum of a round lumen's chord lies at 0.87 r


@dataclass(frozen=True)
class QCAMeasurement:
    """A lesion measured on one frame; lengths in that frame's pixels."""

    percent_stenosis: float
    minimal_lumen_diameter_px: float
    reference_diameter_px: float
    lesion_length_px: float
    row: float  # where the lumen is narrowest
    column: float
    centreline: FloatArray  # (n, 2) rows and columns, proximal or distal end first
    diameters_px: FloatArray  # lumen diameter at each centreline point
    reference_px: FloatArray  # the interpolated reference at each centreline point
    residual: float  # median relative deviation of the healthy segments from the reference


@dataclass(frozen=True)
class NotMeasured:
    """Why a lesion could not be measured (words for the report, no values)."""

    reason: str


@dataclass(frozen=True)
class QCASettings:
    """What the measurement looks at; lengths in mm at the isocentre."""

    reach_mm: float = 9.0  # traced beyond the sighting on each side
    search_mm: float = 3.0  # the narrowest point lies this close to the sighting
    core_mm: float = 2.5  # at least this much either side of it is left out of the reference
    scan_mm: float = 4.0  # half-width of the first scan lines
    length_fraction: float = 0.85  # lesion: lumen narrower than this fraction of reference
    core_fraction: float = 0.9  # left out of the reference: narrower than this fraction
    outlier_fraction: float = 0.2  # left out of the reference: further than this from it
    min_healthy_mm: float = 3.0  # healthy vessel needed for the reference
    max_residual: float = 0.12  # healthy segments further than this from a line: no reference
    max_beside: float = 0.2  # a structure beside the lesion darker than this x the vessel
    min_contrast: float = 6.0  # reference lumen's integral over the noise of one line's


def measure_lesion(
    frame: np.ndarray[Any, Any],
    row: float,
    column: float,
    mm_per_px: float | None,
    settings: QCASettings | None = None,
    *,
    logarithmic: bool = False,
) -> QCAMeasurement | NotMeasured:
    """QCA of the lesion sighted at (``row``, ``column``) of ``frame`` (vessels dark).

    Parameters
    ----------
    frame : ndarray
        One frame (rows, columns), vessels dark.
    row, column : float
        The sighting, frame pixels.
    mm_per_px : float or None
        Pixel size at the isocentre; None assumes a field of ``NOMINAL_FIELD_MM`` for the
        lengths looked at (the results stay in pixels).
    settings : QCASettings, optional
        What the measurement looks at.
    logarithmic : bool
        The values are a logarithm of the X-ray intensity (else proportional to it).
    """
    s = settings or QCASettings()
    image = np.asarray(frame, dtype=np.float32)
    px_mm = 1.0 / mm_per_px if mm_per_px else min(image.shape) / NOMINAL_FIELD_MM
    reach = s.reach_mm * px_mm
    margin = int(reach + s.scan_mm * px_mm + 8)
    r0, c0 = max(0, int(row) - margin), max(0, int(column) - margin)
    r1 = min(image.shape[0], int(row) + margin + 1)
    c1 = min(image.shape[1], int(column) + margin + 1)
    roi = image[r0:r1, c0:c1]
    start = np.array([row - r0, column - c0])
    if min(roi.shape) < 16 or not (0 <= start[0] < roi.shape[0] and 0 <= start[1] < roi.shape[1]):
        return NotMeasured("the lesion lies at the edge of the frame")
    smooth = ndimage.gaussian_filter(roi, 1.5)
    axes = vessel_axes(smooth, start, [r * px_mm for r in (3.0, 4.5, 6.0)])
    if axes is None:
        return NotMeasured("no vessel runs through the lesion")
    halves = [trace_vessel(smooth, start, axis, reach) for axis in axes]
    points = np.concatenate([halves[0][::-1], start[None], halves[1]])
    centreline = resampled(points)
    if len(centreline) < 2 * s.min_healthy_mm * px_mm:
        return NotMeasured("the vessel could be traced over too short a stretch")
    profile = _lumen_profile(roi, centreline, s.scan_mm * px_mm, logarithmic)
    if profile is None:
        return NotMeasured("the vessel's profile could not be read")
    measured = _narrowing(centreline, start, profile, px_mm, s)
    if isinstance(measured, NotMeasured):
        return measured
    return QCAMeasurement(
        percent_stenosis=measured.percent_stenosis,
        minimal_lumen_diameter_px=measured.minimal_lumen_diameter_px,
        reference_diameter_px=measured.reference_diameter_px,
        lesion_length_px=measured.lesion_length_px,
        row=measured.row + r0,
        column=measured.column + c0,
        centreline=centreline + np.array([r0, c0]),
        diameters_px=measured.diameters_px,
        reference_px=measured.reference_px,
        residual=measured.residual,
    )


def _attenuation(
    lines: FloatArray, offsets: FloatArray, inner: float, logarithmic: bool
) -> FloatArray:
    """The attenuation on each scan line (see the module docstring); the background a line
    through the level of the samples beyond ``inner`` on each side, smoothed along the
    vessel (the background changes slowly; its noise would add to every lumen sample).

    A side's level is the median of its samples within three noise deviations of their
    upper quartile: a branch or a neighbour darkening part of the side is left out, the
    noise is not, and a slope of the background across the side is followed.
    """
    left, right = offsets < -inner, offsets > inner
    outer = lines[:, left | right]
    spread = 1.4826 * float(np.median(np.abs(outer - np.median(outer, axis=1, keepdims=True))))

    def level(side: np.ndarray[Any, np.dtype[np.bool_]]) -> FloatArray:
        values = lines[:, side]
        quartile = np.percentile(values, 75, axis=1, keepdims=True)
        kept = np.where(values >= quartile - 3.0 * spread, values, np.nan)
        out: FloatArray = ndimage.gaussian_filter1d(np.nanmedian(kept, axis=1), 4.0, mode="nearest")
        return out

    left_level, right_level = level(left), level(right)
    left_at, right_at = float(offsets[left].mean()), float(offsets[right].mean())
    slope = (right_level - left_level) / (right_at - left_at)
    background = left_level[:, None] + slope[:, None] * (offsets[None, :] - left_at)
    if logarithmic:  # the values are already a logarithm of the intensity
        difference: FloatArray = background - lines
        return difference
    out: FloatArray = np.log(np.maximum(background, 1.0)) - np.log(np.maximum(lines, 1.0))
    return out


@dataclass(frozen=True)
class _Profile:
    """Along the centreline, per scan line."""

    area: FloatArray  # attenuation integrated across the lumen (px)
    width: FloatArray  # half-maximum width of the attenuation (px); NaN where none
    peak: FloatArray  # the attenuation's maximum across the lumen
    beside: FloatArray  # the darkest structure beside it (90th percentile of each side)


def _lumen_profile(
    roi: np.ndarray[Any, Any], centreline: FloatArray, half_scan: float, logarithmic: bool
) -> _Profile | None:
    """The lumen along the centreline in two passes: the first sizes the vessel, the
    second integrates over the lumen and a blur margin only, with the background just
    beyond."""
    step = 0.5
    offsets = np.arange(-half_scan, half_scan + step / 2, step)
    lines = straightened(roi, centreline, offsets)
    first = _attenuation(lines, offsets, 0.6 * half_scan, logarithmic)
    width = _half_max_width(first, offsets)
    typical = float(np.nanmedian(width)) if np.isfinite(width).any() else float("nan")
    if not np.isfinite(typical) or typical <= 0:
        return None
    inner = 0.5 * typical / _ROUND_EDGE + 3.0
    offsets = np.arange(-(inner + 6.0), inner + 6.0 + step / 2, step)
    lines = straightened(roi, centreline, offsets)
    att = _attenuation(lines, offsets, inner, logarithmic)
    inside = np.abs(offsets) <= inner
    smooth = ndimage.gaussian_filter1d(att, 1.0, axis=1)
    beside = np.maximum(
        np.percentile(smooth[:, offsets < -inner], 90, axis=1),
        np.percentile(smooth[:, offsets > inner], 90, axis=1),
    )
    return _Profile(
        area=att[:, inside].sum(axis=1) * step,
        width=_half_max_width(att, offsets),
        peak=smooth[:, inside].max(axis=1),
        beside=beside,
    )


def _half_max_width(att: FloatArray, offsets: FloatArray) -> FloatArray:
    """Width of each line's attenuation peak at half its maximum (sub-sample), around the
    maximum nearest the centre; NaN where a line has no peak or its half-maximum is not
    crossed on both sides."""
    smooth = ndimage.gaussian_filter1d(att, 1.0, axis=1)
    n, m = smooth.shape
    centre = np.flatnonzero(np.abs(offsets) <= max(2.0, 0.25 * float(offsets[-1])))
    k = centre[np.argmax(smooth[:, centre], axis=1)]
    half = 0.5 * smooth[np.arange(n), k]
    below = smooth <= half[:, None]
    columns = np.arange(m)
    # the last sample at or below half before the peak, the first after it
    left = np.where(below & (columns[None, :] < k[:, None]), columns[None, :], -1).max(axis=1)
    right = np.where(below & (columns[None, :] > k[:, None]), columns[None, :], m).min(axis=1)
    ok = (half > 0) & (left >= 0) & (right < m)
    rows, half = np.flatnonzero(ok), half[ok]
    x_left = _crossing(offsets, smooth[rows], left[ok], left[ok] + 1, half)
    x_right = _crossing(offsets, smooth[rows], right[ok] - 1, right[ok], half)
    out = np.full(n, np.nan)
    out[rows] = x_right - x_left
    return out


def _crossing(
    offsets: FloatArray,
    lines: FloatArray,
    a: np.ndarray[Any, Any],
    b: np.ndarray[Any, Any],
    level: FloatArray,
) -> FloatArray:
    """Where each line crosses ``level`` between its samples ``a`` and ``b`` (linear)."""
    index = np.arange(len(lines))
    va, vb = lines[index, a], lines[index, b]
    span = vb - va
    t = np.where(span == 0, 0.5, (level - va) / np.where(span == 0, 1.0, span))
    out: FloatArray = offsets[a] + t * (offsets[b] - offsets[a])
    return out


@dataclass(frozen=True)
class _Narrowing:
    percent_stenosis: float
    minimal_lumen_diameter_px: float
    reference_diameter_px: float
    lesion_length_px: float
    row: float
    column: float
    diameters_px: FloatArray
    reference_px: FloatArray
    residual: float


def _narrowing(
    centreline: FloatArray,
    sighting: FloatArray,
    profile: _Profile,
    px_mm: float,
    s: QCASettings,
) -> _Narrowing | NotMeasured:
    """The narrowest lumen near the sighting against the interpolated reference."""
    area, width = profile.area, profile.width
    n = len(centreline)
    index = np.arange(n, dtype=np.float64)
    lumen = np.sqrt(np.maximum(area, 0.0))  # proportional to the diameter
    smooth = np.sqrt(np.maximum(ndimage.gaussian_filter1d(area, 1.0, mode="nearest"), 0.0))
    at = int(np.argmin(np.linalg.norm(centreline - sighting, axis=1)))
    search = round(s.search_mm * px_mm)
    lo, hi = max(0, at - search), min(n, at + search + 1)
    narrowest = lo + int(np.argmin(smooth[lo:hi]))
    core_px = round(s.core_mm * px_mm)
    healthy = np.abs(index - narrowest) > core_px
    fit = np.zeros(n)
    for _ in range(4):
        if healthy.sum() < s.min_healthy_mm * px_mm:
            return NotMeasured("too little healthy vessel beside the lesion for a reference")
        slope, intercept, *_ = stats.theilslopes(lumen[healthy], index[healthy])
        fit = intercept + slope * index
        if fit.min() <= 0:
            return NotMeasured("the reference diameter could not be fitted")
        narrowest = lo + int(np.argmin(smooth[lo:hi] / fit[lo:hi]))
        core = _run(smooth / fit < s.core_fraction, narrowest)
        core[max(0, narrowest - core_px) : narrowest + core_px + 1] = True
        # a parent vessel, a branch or another lesion beside it is no reference
        healthy = ~core & (np.abs(lumen / fit - 1.0) < s.outlier_fraction)
    residual = float(np.median(np.abs(lumen[healthy] / fit[healthy] - 1.0)))
    if residual > s.max_residual:
        return NotMeasured("the healthy segments do not fit a reference line")
    noise = 1.4826 * float(np.median(np.abs(np.diff(area[healthy])))) / np.sqrt(2.0)
    if fit[narrowest] ** 2 < s.min_contrast * max(noise, 1e-9):
        return NotMeasured("the vessel is too faint to measure")
    edges = width / _ROUND_EDGE
    ok = healthy & np.isfinite(edges) & (lumen > 0)
    if ok.sum() < s.min_healthy_mm * px_mm:
        return NotMeasured("the vessel's edges could not be found beside the lesion")
    scale = float(np.median(edges[ok] / lumen[ok]))  # px of diameter per sqrt(integral)
    if np.isfinite(width[narrowest]) and width[narrowest] > 1.5 * scale * fit[narrowest]:
        return NotMeasured("another vessel overlaps the lesion")
    near = slice(max(0, narrowest - core_px), narrowest + core_px + 1)
    beside = float(ndimage.gaussian_filter1d(profile.beside, 2.0, mode="nearest")[near].max())
    if beside > s.max_beside * float(np.median(profile.peak[healthy])):
        return NotMeasured("another vessel lies beside the lesion")
    # below the noise of the estimate a lumen cannot be told from none: a filled vessel
    # beyond the narrowing shows that it is open, so the least area read is that noise
    least = max(_minimum(area, narrowest), noise / np.sqrt(5.0))
    ratio = float(np.clip(np.sqrt(least) / fit[narrowest], 0.0, 1.0))
    reference = float(scale * fit[narrowest])
    length = float(_run(smooth / fit < s.length_fraction, narrowest).sum())
    return _Narrowing(
        percent_stenosis=100.0 * (1.0 - ratio),
        minimal_lumen_diameter_px=reference * ratio,
        reference_diameter_px=reference,
        lesion_length_px=length,
        row=float(centreline[narrowest, 0]),
        column=float(centreline[narrowest, 1]),
        diameters_px=scale * smooth,
        reference_px=scale * fit,
        residual=residual,
    )


def _minimum(area: FloatArray, at: int, half: int = 2) -> float:
    """The least lumen area near ``at``: the vertex of a parabola through the areas of the
    ``2 half + 1`` scan lines around it (noise averaged, the minimum not flattened)."""
    lo, hi = max(0, at - half), min(len(area), at + half + 1)
    x = np.arange(lo, hi, dtype=np.float64) - at
    if len(x) < 5:
        return max(float(area[at]), 0.0)
    c2, c1, c0 = np.polyfit(x, area[lo:hi], 2)
    vertex = -c1 / (2 * c2) if c2 > 0 else 0.0
    if abs(vertex) > half:
        vertex = 0.0
    return max(float(c0 + c1 * vertex + c2 * vertex**2), 0.0)


def _run(mask: np.ndarray[Any, np.dtype[np.bool_]], at: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The contiguous run of ``mask`` containing ``at`` (all False when ``mask[at]`` is)."""
    out = np.zeros_like(mask)
    if not mask[at]:
        return out
    lo = at
    while lo > 0 and mask[lo - 1]:
        lo -= 1
    hi = at
    while hi < len(mask) - 1 and mask[hi + 1]:
        hi += 1
    out[lo : hi + 1] = True
    return out


def logarithmic_values(source: Path | Dataset) -> bool:
    """Whether the pixel values are a logarithm of the X-ray intensity: Pixel Intensity
    Relationship (0028,1040) LOG, or DISP (processed for display, log-like); LIN (or
    absent) values are proportional to it (PS3.3 C.8.7.1)."""
    if isinstance(source, Dataset):
        value = source.get("PixelIntensityRelationship")
    else:
        header = dcmread(source, stop_before_pixels=True, specific_tags=[_RELATIONSHIP])
        value = header.get("PixelIntensityRelationship")
    return str(value or "LIN").strip().upper() != "LIN"
