"""Family B CT: the slice grid, the partial-volume ball renderer and the reconstruction kernel.

Patient coordinates are LPS in mm (PS3.3 C.7.6.2.1.1): x to the patient's left (columns),
y posterior (rows), z towards the head.  Slice 0 is the most cranial; each slice integrates
its slab ``z +- thickness / 2`` (a box slice-sensitivity profile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
Box = tuple[slice, slice, slice]

_SUBSAMPLE_MM = 0.35  # z step of the slab integration of small objects
_KERNEL_TRUNCATE = 3.0


@dataclass(frozen=True)
class Grid:
    """Where the voxels are: slice centres ``z_mm`` (descending), square pixels of
    ``spacing_mm`` whose (0, 0) centre is at ``origin_mm`` (x, y)."""

    rows: int
    columns: int
    spacing_mm: float
    thickness_mm: float
    z_mm: F64
    origin_mm: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.z_mm), self.rows, self.columns)

    @cached_property
    def x_mm(self) -> F64:
        return np.asarray(self.origin_mm[0] + np.arange(self.columns) * self.spacing_mm, np.float64)

    @cached_property
    def y_mm(self) -> F64:
        return np.asarray(self.origin_mm[1] + np.arange(self.rows) * self.spacing_mm, np.float64)

    @property
    def subsamples(self) -> int:
        """How many z samples integrate a slab for objects of a few mm."""
        return int(np.clip(math.ceil(self.thickness_mm / _SUBSAMPLE_MM), 1, 9))

    def slab_offsets(self) -> F64:
        """z offsets (mm) of the subsamples from a slice centre, spread over its slab."""
        n = self.subsamples
        return self.thickness_mm * ((np.arange(n) + 0.5) / n - 0.5)

    def box(self, lo: F64, hi: F64) -> Box | None:
        """The voxel box whose pixels or slabs reach into the mm box ``lo``..``hi`` (x, y, z);
        None when it misses the volume."""
        sp, half = self.spacing_mm, self.thickness_mm / 2
        c0 = max(math.floor((lo[0] - self.origin_mm[0]) / sp), 0)
        c1 = min(math.ceil((hi[0] - self.origin_mm[0]) / sp) + 1, self.columns)
        r0 = max(math.floor((lo[1] - self.origin_mm[1]) / sp), 0)
        r1 = min(math.ceil((hi[1] - self.origin_mm[1]) / sp) + 1, self.rows)
        hit = np.flatnonzero((self.z_mm - half < hi[2]) & (self.z_mm + half > lo[2]))
        if c0 >= c1 or r0 >= r1 or not len(hit):
            return None
        return (slice(int(hit[0]), int(hit[-1]) + 1), slice(r0, r1), slice(c0, c1))

    def voxel_mm(self, z: Any, r: Any, c: Any) -> F64:
        """Patient (x, y, z) mm of voxel indices (arrays of one length)."""
        return np.stack(
            [self.x_mm[np.asarray(c)], self.y_mm[np.asarray(r)], self.z_mm[np.asarray(z)]],
            axis=-1,
        )


def ball_occupancy(grid: Grid, centres: F64, radii: F64) -> tuple[Box, F32] | None:
    """The fraction of each voxel (slab-integrated in z, anti-aliased over a pixel in-plane)
    inside the union of balls ``centres`` (n, 3 mm) of ``radii`` (n,), over the box the
    balls reach; None when they miss the volume."""
    lo = (centres - radii[:, None]).min(axis=0)
    hi = (centres + radii[:, None]).max(axis=0)
    pad = np.array([grid.spacing_mm, grid.spacing_mm, 0.0])
    box = grid.box(lo - pad, hi + pad)
    if box is None:
        return None
    zs, rs, cs = box
    z = grid.z_mm[zs][:, None] + grid.slab_offsets()[None, :]  # (nz, S)
    y, x = grid.y_mm[rs], grid.x_mm[cs]
    best = np.full((*z.shape, len(y), len(x)), -1e9, dtype=np.float32)
    sp = grid.spacing_mm
    for (cx, cy, cz), radius in zip(centres, radii, strict=True):
        c0, c1 = np.searchsorted(x, [cx - radius - sp, cx + radius + sp])
        r0, r1 = np.searchsorted(y, [cy - radius - sp, cy + radius + sp])
        near = np.flatnonzero((np.abs(z - cz) <= radius).any(axis=1))
        if c0 >= c1 or r0 >= r1 or not len(near):
            continue
        k0, k1 = int(near[0]), int(near[-1]) + 1
        d2 = (
            ((z[k0:k1] - cz) ** 2)[:, :, None, None]
            + ((y[r0:r1] - cy) ** 2)[None, None, :, None]
            + ((x[c0:c1] - cx) ** 2)[None, None, None, :]
        )
        view = best[k0:k1, :, r0:r1, c0:c1]
        np.maximum(view, (radius - np.sqrt(d2)).astype(np.float32), out=view)
    occupancy = np.clip(best / np.float32(sp) + np.float32(0.5), 0.0, 1.0).mean(axis=1)
    return box, occupancy.astype(np.float32)


def blend(volume: F32, box: Box, occupancy: F32, value: float | F32) -> None:
    """Fill the fraction ``occupancy`` of the voxels in ``box`` with ``value`` (HU)."""
    view = volume[box]
    view += occupancy * (np.asarray(value, dtype=np.float32) - view)


@dataclass(frozen=True)
class Kernel:
    """A reconstruction kernel as an in-plane filter: Gaussian blur of ``sigma_mm``, then
    unsharp masking of strength ``sharpen`` (edge overshoot, a ringed noise texture)."""

    name: str  # soft, standard, sharp
    dicom_name: str  # ConvolutionKernel (0018,1210)
    sigma_mm: float
    sharpen: float

    def apply(self, image: F32, spacing_mm: float) -> F32:
        """Filter the last two axes of ``image``."""
        lead = (0.0,) * (image.ndim - 2)
        s = self.sigma_mm / spacing_mm
        out: F32 = ndimage.gaussian_filter(
            image, (*lead, s, s), truncate=_KERNEL_TRUNCATE, mode="nearest"
        )
        if self.sharpen > 0:
            wide = ndimage.gaussian_filter(
                out, (*lead, 2 * s, 2 * s), truncate=_KERNEL_TRUNCATE, mode="nearest"
            )
            out += np.float32(self.sharpen) * (out - wide)
        return out

    def reach_px(self, spacing_mm: float) -> int:
        """How far (pixels) the filter spreads a point."""
        factor = 2.0 if self.sharpen > 0 else 1.0
        return math.ceil(_KERNEL_TRUNCATE * factor * self.sigma_mm / spacing_mm) + 1

    def noise_gain(self, spacing_mm: float) -> float:
        """The standard deviation the filter leaves of unit white noise."""
        n = 2 * self.reach_px(spacing_mm) + 9
        delta = np.zeros((n, n), dtype=np.float32)
        delta[n // 2, n // 2] = 1.0
        return float(np.sqrt((self.apply(delta, spacing_mm).astype(np.float64) ** 2).sum()))


KERNELS = {
    "soft": (("B20f", "FC02", "SOFT"), (0.75, 0.95), (0.0, 0.0)),
    "standard": (("Qr36", "B35f", "STANDARD"), (0.5, 0.65), (0.0, 0.0)),
    "sharp": (("B46f", "FC12", "SHARP"), (0.3, 0.42), (0.6, 1.1)),
}


def sample_kernel(rng: np.random.Generator, name: str | None = None) -> Kernel:
    """A kernel of the named class (drawn when None): its DICOM name, blur and sharpening."""
    if name is None:
        name = str(rng.choice(list(KERNELS), p=[0.3, 0.5, 0.2]))
    names, sigma, sharpen = KERNELS[name]
    return Kernel(
        name,
        str(rng.choice(names)),
        float(rng.uniform(*sigma)),
        float(rng.uniform(*sharpen)),
    )


def footprint(
    grid: Grid, box: Box, contribution: F32, kernel: Kernel, min_hu: float
) -> tuple[Box, NDArray[np.bool_]]:
    """Where a contribution (HU added in ``box``) still adds ``min_hu`` after the kernel:
    the grown box and the mask over it."""
    zs, rs, cs = box
    pad = kernel.reach_px(grid.spacing_mm)
    r0, r1 = max(rs.start - pad, 0), min(rs.stop + pad, grid.rows)
    c0, c1 = max(cs.start - pad, 0), min(cs.stop + pad, grid.columns)
    grown = np.zeros((zs.stop - zs.start, r1 - r0, c1 - c0), dtype=np.float32)
    grown[:, rs.start - r0 : rs.stop - r0, cs.start - c0 : cs.stop - c0] = contribution
    mask = kernel.apply(grown, grid.spacing_mm) >= min_hu
    return (zs, slice(r0, r1), slice(c0, c1)), mask
