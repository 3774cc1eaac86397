"""Rasterise projected tubes into an attenuation image (Beer-Lambert line integrals).

A tube is a polyline of projected centre points with, at each point, its projected radius
``r`` (pixels) and ``k``, the attenuation per pixel of path (attenuation coefficient x mm
per pixel at the tube's depth / sine of the angle between tube and ray).  At a pixel a
distance ``d`` from the segment the line integral is ``2 k sqrt(r**2 - d**2)``: the chord
through a cylinder.  Segments of one tube are merged with a maximum (their joints must not
count twice); different tubes add up.  The chord is softened by a quarter pixel and scaled so
that its integral across the tube stays ``pi r**2 k``, so sub-pixel tubes (wires, stent
struts) keep their total attenuation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .xa_heart import F64

F32 = NDArray[np.float32]
_SOFT = 0.25  # px^2 added to r^2
_MIN_R = 0.7  # px: thinner tubes are drawn this wide with their attenuation conserved


@dataclass(frozen=True)
class Tube:
    """One projected polyline: ``xy`` (N x 2, x = column), ``r`` (N,) px, ``k`` (N,) per px."""

    xy: F64
    r: F64
    k: F64

    def decimated(self, step: int, keep: NDArray[np.bool_] | None = None) -> Tube:
        """Every *step*-th point, the last, and every point where *keep* is set."""
        mask = np.zeros(len(self.r), dtype=bool)
        mask[::step] = True
        mask[-1] = True
        if keep is not None:
            mask |= keep
        return Tube(self.xy[mask], self.r[mask], self.k[mask])


def rasterise(shape: tuple[int, int], tubes: Sequence[Tube]) -> F32:
    """Sum of the tubes' line integrals on a ``rows x columns`` grid (pixel centres at
    integer coordinates)."""
    rows, cols = shape
    total = np.zeros(rows * cols, dtype=np.float32)
    scratch = np.zeros(rows * cols, dtype=np.float32)
    for tube in tubes:
        if len(tube.r) < 2 or not np.any(tube.k > 0):
            continue
        pix, val = _tube_pixels(shape, tube)
        if pix.size == 0:
            continue
        np.maximum.at(scratch, pix, val)
        total[pix] += scratch[pix]  # repeated indices add once: the merged maximum
        scratch[pix] = 0.0
    return total.reshape(rows, cols)


def _tube_pixels(shape: tuple[int, int], tube: Tube) -> tuple[NDArray[np.intp], F32]:
    """Flat pixel indices and line integrals of every pixel near a segment of *tube*."""
    rows, cols = shape
    a, b = tube.xy[:-1], tube.xy[1:]
    r_true = np.maximum(tube.r, 1e-3)
    r_draw = np.maximum(r_true, _MIN_R)
    k = tube.k * (r_true / r_draw) ** 2
    ra, rb, ka, kb = r_draw[:-1], r_draw[1:], k[:-1], k[1:]
    reach = np.maximum(ra, rb) + 1.0
    x0 = np.clip(np.floor(np.minimum(a[:, 0], b[:, 0]) - reach), 0, cols).astype(np.intp)
    x1 = np.clip(np.ceil(np.maximum(a[:, 0], b[:, 0]) + reach), -1, cols - 1).astype(np.intp)
    y0 = np.clip(np.floor(np.minimum(a[:, 1], b[:, 1]) - reach), 0, rows).astype(np.intp)
    y1 = np.clip(np.ceil(np.maximum(a[:, 1], b[:, 1]) + reach), -1, rows - 1).astype(np.intp)
    w = np.maximum(x1 - x0 + 1, 0)
    h = np.maximum(y1 - y0 + 1, 0)
    counts = w * h
    live = (counts > 0) & ((ka > 0) | (kb > 0))
    counts = np.where(live, counts, 0)
    n = int(counts.sum())
    if n == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.float32)
    seg = np.repeat(np.arange(len(counts)), counts)
    off = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    ws = w[seg]
    px = (x0[seg] + off % ws).astype(np.float32)
    py = (y0[seg] + off // ws).astype(np.float32)
    ax, ay = a[seg, 0].astype(np.float32), a[seg, 1].astype(np.float32)
    dx = (b[:, 0] - a[:, 0]).astype(np.float32)[seg]
    dy = (b[:, 1] - a[:, 1]).astype(np.float32)[seg]
    len2 = np.maximum(dx * dx + dy * dy, np.float32(1e-6))
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / len2, 0.0, 1.0)
    ex, ey = px - ax - t * dx, py - ay - t * dy
    r = ra[seg].astype(np.float32) + t * (rb - ra).astype(np.float32)[seg]
    kk = ka[seg].astype(np.float32) + t * (kb - ka).astype(np.float32)[seg]
    r2 = r * r + np.float32(_SOFT)
    chord = np.sqrt(np.maximum(r2 - ex * ex - ey * ey, 0.0))
    val = (2.0 * kk * chord * (r * r / r2)).astype(np.float32)
    hit = val > 0
    pix = (py[hit].astype(np.intp) * cols + px[hit].astype(np.intp)).astype(np.intp)
    return pix, val[hit]


def upsample(small: F32 | F64, step: int, rows: int, columns: int) -> F32:
    """Bilinear interpolation of a grid sampled every *step* pixels (from pixel 0) onto
    ``rows x columns``, one axis at a time."""
    grid = np.asarray(small, dtype=np.float32)
    i0, i1, f = _weights(grid.shape[0], step, rows)
    grid = grid[i0] * (1 - f)[:, None] + grid[i1] * f[:, None]
    j0, j1, g = _weights(grid.shape[1], step, columns)
    out: F32 = grid[:, j0] * (1 - g) + grid[:, j1] * g
    return out


def _weights(n: int, step: int, size: int) -> tuple[NDArray[np.intp], NDArray[np.intp], F32]:
    at = np.arange(size, dtype=np.float64) / step
    i0 = np.clip(np.floor(at).astype(np.intp), 0, n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    frac = np.clip(at - i0, 0.0, 1.0).astype(np.float32)
    return i0, i1, frac
