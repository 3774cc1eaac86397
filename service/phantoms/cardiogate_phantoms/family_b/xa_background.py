"""The chest behind family B's coronaries: soft tissue, lungs, ribs, spine, diaphragm, the
heart's own shadow, and the collimator shutters or image-intensifier vignette.

Everything is a line integral of attenuation (dimensionless) on the image grid.  The static
chest is drawn once on a canvas padded by the breathing drift and cut out per frame; the
diaphragm moves half again as far as the chest wall.  The spine is placed by projecting the
vertebral column through the C-arm, so it sits where the view puts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from .xa_heart import F64, Heart, Pose
from .xa_projection import CArm
from .xa_render import F32, upsample

DIAPHRAGM_GAIN = 1.5


@dataclass(frozen=True)
class Chest:
    """Static attenuation maps on a canvas ``pad`` pixels larger than the frame each side."""

    tissue: F32
    diaphragm: F32
    pad: int
    structures: tuple[str, ...]  # which of ribs, spine, diaphragm fall in the frame

    def frame(self, shift: F64, rows: int, columns: int) -> F32:
        """The chest in a frame whose content moved by *shift* (x, y pixels)."""
        out = _cut(self.tissue, shift, self.pad, rows, columns)
        out += _cut(self.diaphragm, shift * DIAPHRAGM_GAIN, self.pad, rows, columns)
        return out


def _cut(canvas: F32, shift: F64, pad: int, rows: int, columns: int) -> F32:
    """Bilinear cut-out of *canvas* moved by *shift* (clamped to the padding)."""
    sx, sy = (float(np.clip(v, -pad + 1, pad - 1)) for v in shift)
    x0, y0 = math.floor(pad - sx), math.floor(pad - sy)
    fx, fy = (pad - sx) - x0, (pad - sy) - y0
    win = canvas[y0 : y0 + rows + 1, x0 : x0 + columns + 1]
    top = win[:-1, :-1] * (1 - fx) + win[:-1, 1:] * fx
    bottom = win[1:, :-1] * (1 - fx) + win[1:, 1:] * fx
    out: F32 = (top * (1 - fy) + bottom * fy).astype(np.float32)
    return out


def draw_chest(rng: np.random.Generator, carm: CArm, pad: int) -> Chest:
    """Soft tissue, lung texture, ribs, spine and diaphragm for one run."""
    rows, cols = carm.rows + 2 * pad, carm.columns + 2 * pad
    mm = carm.mm_per_px
    ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float32)
    xs -= pad
    ys -= pad
    size = max(carm.rows, carm.columns)
    # soft tissue: a tilted gradient, broad blobs, lung texture
    g = rng.normal(size=2) * float(rng.uniform(0.1, 0.5))
    tissue = (g[0] * (xs / size - 0.5) + g[1] * (ys / size - 0.5)).astype(np.float32)
    for _ in range(int(rng.integers(2, 6))):
        cx, cy = rng.uniform(-0.2, 1.2, 2) * size
        sigma = float(rng.uniform(0.15, 0.45)) * size
        amp = float(rng.uniform(-0.25, 0.35))
        tissue += np.float32(amp) * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
    texture = rng.standard_normal((rows // 4 + 1, cols // 4 + 1)).astype(np.float32)
    texture = ndimage.gaussian_filter(texture, float(rng.uniform(0.8, 2.0)))
    texture *= np.float32(rng.uniform(0.03, 0.09) / max(float(texture.std()), 1e-6))
    tissue += ndimage.zoom(texture, 4, order=1)[:rows, :cols]
    structures = ["ribs"]
    tissue += _ribs(rng, xs, ys, mm, size)
    spine, seen = _spine(rng, carm, xs, ys, mm)
    tissue += spine
    if seen:
        structures.append("spine")
    diaphragm, seen = _diaphragm(rng, xs, ys, carm.rows, carm.columns)
    if seen:
        structures.append("diaphragm")
    return Chest(tissue.astype(np.float32), diaphragm, pad, tuple(structures))


def _ribs(rng: np.random.Generator, xs: F32, ys: F32, mm: float, size: int) -> F32:
    """Posterior ribs (denser, bowing down laterally) and fainter anterior ribs."""
    out = np.zeros_like(xs)
    for anterior in (False, True):
        spacing = float(rng.uniform(24.0, 34.0)) / mm
        first = float(rng.uniform(-1.0, 0.0)) * spacing
        slope = float(rng.uniform(-0.45, 0.45)) * (-1 if anterior else 1)
        bow = float(rng.uniform(0.4, 1.2)) / size
        centre = float(rng.uniform(0.2, 0.8)) * size
        half = float(rng.uniform(4.0, 6.0)) / mm
        amp = float(rng.uniform(0.08, 0.22)) * (0.5 if anterior else 1.0)
        y = first
        while y < ys.max() + spacing:
            path = y + slope * (xs - centre) + bow * (xs - centre) ** 2
            d = np.abs(ys - path) / np.float32(half)
            profile = np.where(d < 1, 0.55 + 0.45 * d**4, 0.0).astype(np.float32)
            out += np.float32(amp) * profile
            y += spacing
    smoothed: F32 = ndimage.gaussian_filter(out, 1.0 / mm * 0.8)
    return smoothed


def _spine(rng: np.random.Generator, carm: CArm, xs: F32, ys: F32, mm: float) -> tuple[F32, bool]:
    """Vertebral bodies with discs, end plates and pedicles along the projected column."""
    depth = float(rng.uniform(70.0, 100.0))
    ends = np.array([[0.0, depth, -250.0], [0.0, depth, 250.0]])
    (p0, p1), _ = carm.project(ends)
    axis = (p1 - p0) / np.linalg.norm(p1 - p0)
    across = np.array([-axis[1], axis[0]])
    a = (xs - p0[0]) * axis[0] + (ys - p0[1]) * axis[1]
    c = (xs - p0[0]) * across[0] + (ys - p0[1]) * across[1]
    half = float(rng.uniform(17.0, 23.0)) / mm
    pitch = float(rng.uniform(24.0, 30.0)) / mm
    disc = float(rng.uniform(4.0, 7.0)) / mm
    phase = np.mod(a + float(rng.uniform(0, pitch)), pitch)
    in_disc = np.clip((disc - np.minimum(phase, pitch - phase) * 2) / disc + 0.5, 0, 1)
    plate = np.exp(-((np.minimum(phase, pitch - phase) * 2 - disc) ** 2) / (2 * (1.5 / mm) ** 2))
    body = np.sqrt(np.clip(1 - (c / half) ** 2, 0, 1))
    level = body * (1 - 0.45 * in_disc) + 0.25 * plate * body
    for side in (-1, 1):
        pc = c - side * 0.55 * half
        pa = np.mod(phase - 0.5 * pitch, pitch) - 0.5 * pitch
        level += 0.3 * np.exp(-((pc / (0.2 * half)) ** 2 + (pa / (0.22 * pitch)) ** 2))
    amp = float(rng.uniform(0.3, 0.7))
    spine: F32 = (np.float32(amp) * level).astype(np.float32)
    seen = bool(np.any(np.abs(c[carm.rows // 2]) < half))
    return ndimage.gaussian_filter(spine, 0.6 / mm), seen


def _diaphragm(
    rng: np.random.Generator, xs: F32, ys: F32, rows: int, columns: int
) -> tuple[F32, bool]:
    """A dome edge: the abdomen below it attenuates more than the lung above."""
    size = max(rows, columns)
    top = float(rng.uniform(0.5, 1.35)) * rows
    centre = float(rng.uniform(-0.2, 1.2)) * size
    curve = float(rng.uniform(0.4, 1.6)) / size
    edge = float(rng.uniform(2.0, 6.0)) * size / 512
    dome = top + curve * (xs - centre) ** 2
    amp = float(rng.uniform(0.3, 0.8))
    out: F32 = (
        np.float32(amp) / (1 + np.exp(-np.clip((ys - dome) / np.float32(edge), -30, 30)))
    ).astype(np.float32)
    seen = bool(np.any((dome < rows - 1) & (xs >= 0) & (xs <= columns - 1)))
    return out, seen


def heart_shadow(carm: CArm, heart: Heart, pose: Pose, mu_per_mm: float, step: int = 8) -> F32:
    """Extra attenuation of the heart over lung: chord of rays through an ellipsoid the size
    of the beating ventricles, traced on a grid *step* pixels apart and interpolated."""
    rows, cols = carm.rows, carm.columns
    gy = np.arange(0, rows + step, step, dtype=np.float64)
    gx = np.arange(0, cols + step, step, dtype=np.float64)
    length = heart.length_mm * pose.length_scale
    radius = heart.radius_mm * pose.radius_scale
    centre = heart.apex + pose.shift - heart.axis * 0.5 * length
    semi = np.array([0.62 * length, radius, radius])
    rot = np.stack([heart.axis, heart.e1, heart.e2])  # rows: ellipsoid axes
    u, v, d = carm.basis()
    xx, yy = np.meshgrid(gx, gy)
    det = (xx - (cols - 1) / 2)[..., None] * u + (yy - (rows - 1) / 2)[..., None] * v
    target = -d * carm.sod_mm + (carm.sid_mm * d) + det * carm.pitch_mm
    src = carm.source
    ray = target - src
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    o = ((src - centre) @ rot.T) / semi
    r = (ray @ rot.T) / semi
    qa = np.sum(r * r, axis=-1)
    qb = 2 * np.sum(r * o, axis=-1)
    qc = float(o @ o) - 1
    disc = np.maximum(qb * qb - 4 * qa * qc, 0.0)
    chord = np.sqrt(disc) / qa  # in mm: ray is a unit vector in patient space
    return upsample(mu_per_mm * chord, step, rows, cols)


def transmission(rng: np.random.Generator, rows: int, columns: int) -> tuple[F32 | None, str]:
    """Collimator shutters (dark straight edges), an image-intensifier circle, or neither."""
    pick = rng.random()
    ys, xs = np.mgrid[0:rows, 0:columns].astype(np.float32)
    size = min(rows, columns)
    soft = 1.5 * size / 512
    if pick < 0.3:
        lo, hi = (float(rng.uniform(0.0, 0.12)) for _ in range(2))
        coord = xs if rng.random() < 0.6 else ys
        n = columns if coord is xs else rows
        open_ = _step((coord - lo * n) / soft) * _step(((1 - hi) * n - coord) / soft)
        return (0.03 + 0.97 * open_).astype(np.float32), "shutters"
    if pick < 0.5:
        rad = float(rng.uniform(0.5, 0.58)) * size
        rho = np.hypot(xs - (columns - 1) / 2, ys - (rows - 1) / 2)
        falloff = 1 - float(rng.uniform(0.1, 0.3)) * (rho / rad) ** 2
        return (falloff * _step((rad - rho) / soft)).astype(np.float32), "intensifier"
    return None, "none"


def _step(x: NDArray[np.float32]) -> NDArray[np.float32]:
    out: NDArray[np.float32] = (1 / (1 + np.exp(-np.clip(x, -30, 30)))).astype(np.float32)
    return out
