"""Rasterisation primitives for the cardiac phantom: mm geometry onto a pixel grid.

Everything here works in patient LPS millimetres.  A :class:`Grid` holds the
pixel-centre coordinates of an axial slice stack; :class:`TubeSet` draws layered
tubes around polylines (vessels, ribs, aorta), :class:`Ellipsoid` evaluates
oriented ellipsoids on a slice window, and :func:`blob_occupancy` measures the
fraction of each voxel (pixel x slice profile) inside a small ellipsoid, which
gives small objects their partial-volume effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]
Box = tuple[slice, slice, slice]
_GROUP = 6

BLUR_TRUNCATE = 3.5
"""Gaussian kernel half-width in standard deviations (shared by every blur)."""


@dataclass(frozen=True, eq=False)
class Grid:
    """Pixel-centre coordinates of an axial slice stack.

    Attributes
    ----------
    xs, ys : ndarray
        Column (x) and row (y) centre coordinates, ascending, mm.
    zs : ndarray
        Slice centre z, mm (any order).
    spacing : float
        In-plane pixel spacing, mm.
    thickness : float
        Slice thickness (width of the box slice profile), mm.
    """

    xs: F32
    ys: F32
    zs: F64
    spacing: float
    thickness: float

    def cols(self, lo: float, hi: float) -> tuple[int, int]:
        """Column index range whose centres lie in ``[lo, hi]``."""
        return int(np.searchsorted(self.xs, lo, "left")), int(np.searchsorted(self.xs, hi, "right"))

    def rows(self, lo: float, hi: float) -> tuple[int, int]:
        """Row index range whose centres lie in ``[lo, hi]``."""
        return int(np.searchsorted(self.ys, lo, "left")), int(np.searchsorted(self.ys, hi, "right"))


@dataclass(frozen=True, eq=False)
class Ellipsoid:
    """An oriented ellipsoid: ``centre``, ``frame`` rows = unit axes, ``semi`` = semi-axes."""

    centre: F64
    frame: F64
    semi: F64

    def extent(self) -> F64:
        """Half extent of the bounding box along x, y and z."""
        out: F64 = np.sqrt(((self.semi[:, None] * self.frame) ** 2).sum(axis=0))
        return out

    def metric(self) -> F64:
        """Matrix ``M`` with ``d @ M @ d <= 1`` inside."""
        return self.frame.T @ np.diag(1.0 / self.semi**2) @ self.frame

    def quad(self, xs: F32, ys: F32, z: float) -> F32:
        """Normalised squared radius on the window ``ys x xs`` of the slice at *z*."""
        m = self.metric().astype(np.float32)
        dx = xs - np.float32(self.centre[0])
        dy = ys - np.float32(self.centre[1])
        dz = np.float32(z - self.centre[2])
        qx = (m[0, 0] * dx + 2 * m[0, 2] * dz) * dx
        qy = (m[1, 1] * dy + 2 * m[1, 2] * dz) * dy + m[2, 2] * dz * dz
        out: F32 = np.multiply.outer(dy * (2 * m[0, 1]), dx)
        out += qx[None, :]
        out += qy[:, None]
        return out

    def window(self, grid: Grid, z: float, pad: float = 0.0) -> tuple[int, int, int, int] | None:
        """Row/column window of the slice at *z* that can hold the ellipsoid, or None."""
        ex, ey, ez = self.extent() + pad
        if abs(z - self.centre[2]) > ez:
            return None
        r0, r1 = grid.rows(self.centre[1] - ey, self.centre[1] + ey)
        c0, c1 = grid.cols(self.centre[0] - ex, self.centre[0] + ex)
        return None if r1 <= r0 or c1 <= c0 else (r0, r1, c0, c1)


@dataclass(frozen=True, eq=False)
class Tube:
    """A layered tube around a polyline.

    Attributes
    ----------
    points : (n, 3) ndarray
        Centreline vertices, mm.
    radii : (n,) ndarray
        Reference radius at each vertex, mm.
    layers : tuple of (scale, offset_mm, hu)
        Drawn outer to inner: voxels within ``scale * radius + offset_mm`` of the
        centreline get ``hu``.
    """

    points: F64
    radii: F64
    layers: tuple[tuple[float, float, float], ...]


class TubeSet:
    """Segments of several tubes, drawn slice by slice in the given tube order."""

    def __init__(self, tubes: Sequence[Tube]) -> None:
        self.tubes = list(tubes)
        p0, p1, r0, r1, tid, reach = [], [], [], [], [], []
        for k, tube in enumerate(self.tubes):
            n = len(tube.points) - 1
            if n < 1:
                continue
            p0.append(tube.points[:-1])
            p1.append(tube.points[1:])
            r0.append(tube.radii[:-1])
            r1.append(tube.radii[1:])
            tid.append(np.full(n, k))
            scale, off, _ = tube.layers[0]
            reach.append(np.maximum(tube.radii[:-1], tube.radii[1:]) * scale + off)
        empty = np.zeros((0, 3))
        self.p0 = np.concatenate(p0) if p0 else empty
        self.d = (np.concatenate(p1) if p1 else empty) - self.p0
        self.dd = np.maximum((self.d**2).sum(axis=1), 1e-9)
        self.r0 = np.concatenate(r0) if r0 else np.zeros(0)
        self.dr = (np.concatenate(r1) if r1 else np.zeros(0)) - self.r0
        self.tid = np.concatenate(tid) if tid else np.zeros(0, dtype=np.int64)
        rr = np.concatenate(reach) if reach else np.zeros(0)
        lo = np.minimum(self.p0, self.p0 + self.d) - rr[:, None]
        hi = np.maximum(self.p0, self.p0 + self.d) + rr[:, None]
        self.lo, self.hi = lo, hi

    def render(self, img: F32, grid: Grid, z: float) -> None:
        """Draw every tube crossing the slice at *z* into *img* (rows, columns)."""
        sel = np.flatnonzero((self.lo[:, 2] <= z) & (self.hi[:, 2] >= z))
        if sel.size == 0:
            return
        tids = self.tid[sel]
        for k in np.unique(tids):
            self._render_tube(img, grid, z, int(k), sel[tids == k])

    def _nearest(
        self, xs: F32, ys: F32, z: float, ch: NDArray[np.intp], best: F32, rad: F32
    ) -> None:
        """Lower *best* (squared distance) and set *rad* where segments *ch* are nearer."""
        p0 = self.p0[ch].astype(np.float32)
        d = self.d[ch].astype(np.float32)
        inv = (1.0 / self.dd[ch]).astype(np.float32)
        x = xs[None, None, :] - p0[:, 0, None, None]
        y = ys[None, :, None] - p0[:, 1, None, None]
        zz = (np.float32(z) - p0[:, 2])[:, None, None]
        t = x * (d[:, 0] * inv)[:, None, None] + y * (d[:, 1] * inv)[:, None, None]
        t += zz * (d[:, 2] * inv)[:, None, None]
        np.clip(t, 0, 1, out=t)
        d2 = (x - t * d[:, 0, None, None]) ** 2
        d2 += (y - t * d[:, 1, None, None]) ** 2
        d2 += (zz - t * d[:, 2, None, None]) ** 2
        d2min = d2.min(axis=0)
        upd = d2min < best
        best[upd] = d2min[upd]
        # radius varies slowly along a tube: one value per group of segments
        rad[upd] = np.float32((self.r0[ch] + 0.5 * self.dr[ch]).mean())

    def _render_tube(self, img: F32, grid: Grid, z: float, k: int, segs: NDArray[np.intp]) -> None:
        r0, r1 = grid.rows(self.lo[segs, 1].min(), self.hi[segs, 1].max())
        c0, c1 = grid.cols(self.lo[segs, 0].min(), self.hi[segs, 0].max())
        if r1 <= r0 or c1 <= c0:
            return
        best = np.full((r1 - r0, c1 - c0), np.inf, dtype=np.float32)
        rad = np.zeros_like(best)
        for i in range(0, segs.size, _GROUP):
            ch = segs[i : i + _GROUP]
            a0, a1 = grid.cols(self.lo[ch, 0].min(), self.hi[ch, 0].max())
            b0, b1 = grid.rows(self.lo[ch, 1].min(), self.hi[ch, 1].max())
            if a1 > a0 and b1 > b0:
                win = (slice(b0 - r0, b1 - r0), slice(a0 - c0, a1 - c0))
                self._nearest(grid.xs[a0:a1], grid.ys[b0:b1], z, ch, best[win], rad[win])
        view = img[r0:r1, c0:c1]
        for scale, off, hu in self.tubes[k].layers:
            lim = rad * np.float32(scale) + np.float32(off)
            np.copyto(view, np.float32(hu), where=(best <= lim * lim) & (lim > 0))


def blur_sigma_px(sigma_mm: float, spacing_mm: float) -> float:
    """In-plane gaussian sigma in pixels."""
    return sigma_mm / spacing_mm


def blur_inplane(a: F32, sigma_px: float) -> F32:
    """Gaussian blur over the last two axes of a 2D or 3D float32 array (returns a new array)."""
    sigma = (sigma_px, sigma_px) if a.ndim == 2 else (0.0, sigma_px, sigma_px)
    out: F32 = ndimage.gaussian_filter(a, sigma, mode="nearest", truncate=BLUR_TRUNCATE)
    return out


def blur_margin_mm(sigma_mm: float, spacing_mm: float) -> float:
    """Padding that keeps a local blur identical to a global one away from the image edge."""
    return BLUR_TRUNCATE * sigma_mm + 2 * spacing_mm


def noise_gain(sigma_px: float) -> float:
    """Standard deviation of white unit noise after :func:`blur_inplane`."""
    r = int(BLUR_TRUNCATE * sigma_px + 0.5) + 1
    delta = np.zeros((2 * r + 1, 2 * r + 1), dtype=np.float32)
    delta[r, r] = 1.0
    return float(np.sqrt((blur_inplane(delta, sigma_px).astype(np.float64) ** 2).sum()))


def blob_occupancy(blob: Ellipsoid, grid: Grid, pad_mm: float) -> tuple[Box, F32] | None:
    """Fraction of each voxel inside *blob*, on a local box padded in-plane by *pad_mm*.

    The slice profile is a box of ``grid.thickness``; both it and the pixel are
    supersampled so that sub-millimetre blobs get their partial-volume share.

    Returns
    -------
    (box, fraction) or None
        ``box`` indexes (slices, rows, columns) of the full volume; None when the
        blob misses the grid.
    """
    ext = blob.extent()
    half = grid.thickness / 2
    ks = np.flatnonzero(np.abs(grid.zs - blob.centre[2]) < ext[2] + half)
    r0, r1 = grid.rows(blob.centre[1] - ext[1] - pad_mm, blob.centre[1] + ext[1] + pad_mm)
    c0, c1 = grid.cols(blob.centre[0] - ext[0] - pad_mm, blob.centre[0] + ext[0] + pad_mm)
    if ks.size == 0 or r1 <= r0 or c1 <= c0:
        return None
    k0, k1 = int(ks.min()), int(ks.max()) + 1
    step = min(0.25, float(blob.semi.min()) / 2)
    m = int(np.clip(np.ceil(grid.spacing / step), 1, 8))
    nz = int(np.clip(np.ceil(grid.thickness / step), 1, 16))
    sub = ((np.arange(m) + 0.5) / m - 0.5) * grid.spacing
    dx = (grid.xs[c0:c1, None].astype(np.float64) + sub).ravel() - blob.centre[0]
    dy = (grid.ys[r0:r1, None].astype(np.float64) + sub).ravel() - blob.centre[1]
    zsub = ((np.arange(nz) + 0.5) / nz - 0.5) * grid.thickness
    mt = blob.metric()
    qxy = mt[0, 0] * dx[None, :] ** 2 + mt[1, 1] * dy[:, None] ** 2
    qxy += 2 * mt[0, 1] * np.multiply.outer(dy, dx)
    frac = np.zeros((k1 - k0, r1 - r0, c1 - c0), dtype=np.float32)
    for i, k in enumerate(range(k0, k1)):
        dz = grid.zs[k] + zsub - blob.centre[2]
        q = qxy[None] + (mt[2, 2] * dz**2)[:, None, None]
        q += (2 * mt[0, 2] * dz)[:, None, None] * dx[None, None, :]
        q += (2 * mt[1, 2] * dz)[:, None, None] * dy[None, :, None]
        inside = (q <= 1).reshape(nz, r1 - r0, m, c1 - c0, m)
        frac[i] = inside.mean(axis=(0, 2, 4))
    return (slice(k0, k1), slice(r0, r1), slice(c0, c1)), frac


def frame_from(direction: F64, hint: F64) -> F64:
    """Orthonormal frame (rows) whose first axis is *direction* and second is near *hint*."""
    a = direction / np.linalg.norm(direction)
    b = hint - (hint @ a) * a
    if np.linalg.norm(b) < 1e-6:
        b = np.array([0.0, 0.0, 1.0]) - a[2] * a
    b /= np.linalg.norm(b)
    return np.stack([a, b, np.cross(a, b)])
