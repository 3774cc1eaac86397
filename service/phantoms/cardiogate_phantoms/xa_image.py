"""The X-ray image model of the synthetic angiograms.

An angiogram here is the transmitted intensity ``I = B * exp(-A)`` on an 8-bit
MONOCHROME2 scale (dense things dark): ``B`` is the patient background (soft
tissue gradient, heart shadow, spine, ribs, diaphragm, vignette) and ``A`` the
iodine attenuation ``mu * chord``, where the chord is the length of the beam
inside a circular lumen, ``2 * sqrt(r**2 - d**2)`` at distance ``d`` from the
centreline, so a narrowed lumen is both thinner and paler.  The detector blurs
slightly and adds quantum noise whose variance grows with the signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._raster import F32, F64, blur_inplane


def normalise_xa_frame(pixels: NDArray[np.uint8]) -> F32:
    """The model input for a stored 8-bit XA frame: ``float32(pixels) / 255``.

    Vessels stay dark on a bright background, values lie in [0, 1]; the same
    mapping serves the training samples of :mod:`.curriculum` and the frames
    of a cine at inference.
    """
    out: F32 = pixels.astype(np.float32) * np.float32(1 / 255)
    return out


def _sigmoid(z: NDArray[np.floating[Any]]) -> F32:
    out: F32 = (0.5 * (1 + np.tanh(0.5 * z))).astype(np.float32, copy=False)
    return out


@dataclass(frozen=True)
class Background:
    """A seeded patient background, in frame units (the frame's shorter side is 1, centre 0).

    Use :meth:`random` for a seeded one and :meth:`render` to draw any window of it.
    """

    level: float
    gradient: tuple[float, float]
    heart: tuple[float, float, float, float, float]
    spine: tuple[float, float, float]
    ribs: tuple[tuple[float, float, float, float], ...]
    rib_slope: tuple[float, float, float]
    diaphragm: tuple[float, float, float, float]
    vignette: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> Background:
        """Draw one background."""
        first, gap = float(rng.uniform(-0.7, -0.5)), float(rng.uniform(0.15, 0.2))
        ribs = tuple(
            (
                first + i * gap + float(rng.uniform(-0.02, 0.02)),
                float(rng.uniform(0.04, 0.07)),
                float(rng.uniform(0.02, 0.06)),
                float(rng.uniform(0.2, 0.5)),
            )
            for i in range(9)
        )
        return cls(
            level=float(rng.uniform(225, 245)),
            gradient=(float(rng.uniform(-0.2, 0.2)), float(rng.uniform(-0.05, 0.25))),
            heart=(
                float(rng.uniform(-0.1, 0.15)),
                float(rng.uniform(0.0, 0.2)),
                float(rng.uniform(0.3, 0.45)),
                float(rng.uniform(0.25, 0.4)),
                float(rng.uniform(0.15, 0.3)),
            ),
            spine=(
                float(rng.uniform(-0.7, 0.7)),
                float(rng.uniform(0.09, 0.14)),
                float(rng.uniform(0.1, 0.25)),
            ),
            ribs=ribs,
            rib_slope=(
                float(rng.uniform(0.15, 0.4)),
                float(rng.uniform(0.1, 0.4)),
                float(rng.uniform(-0.3, 0.3)),
            ),
            diaphragm=(
                float(rng.uniform(0.15, 0.45)),
                float(rng.uniform(-0.3, 0.3)),
                float(rng.uniform(0.4, 1.2)),
                float(rng.uniform(0.25, 0.5)),
            ),
            vignette=float(rng.uniform(0.35, 0.7)),
        )

    def _ribs_profile(self, w: F32) -> F32:
        """Rib attenuation across the ribs' running coordinate *w*: soft bands, denser edges."""
        out = np.zeros_like(w)
        for centre, half, depth, edge in self.ribs:
            dist = np.abs(w - np.float32(centre))
            inside = _sigmoid((np.float32(half) - dist) / np.float32(0.01))
            cortex = np.exp(-(((dist - np.float32(half)) / np.float32(0.012)) ** 2))
            out += np.float32(depth) * (inside + np.float32(edge) * cortex)
        return out

    def render(self, us: F32, vs: F32) -> F32:
        """Transmitted intensity (8-bit scale) at columns *us* x rows *vs* (frame units)."""
        u, v = us[None, :], vs[:, None]
        gx, gy = self.gradient
        att = np.float32(0.35) + np.float32(gx) * u + np.float32(gy) * v
        hx, hy, ha, hb, hd = self.heart
        att = att + np.float32(hd) * _sigmoid(8 * (1 - ((u - hx) / ha) ** 2 - ((v - hy) / hb) ** 2))
        sx, sw, sd = self.spine
        att = att + np.float32(sd) * _sigmoid((sw - np.abs(u - sx)) / np.float32(0.012))
        a, b, c = self.rib_slope
        du = u - np.float32(sx)
        rib_v = v - (np.float32(a) * np.abs(du) + np.float32(b) * du**2 + np.float32(c) * du)
        lo, hi = float(rib_v.min()), float(rib_v.max())
        table = np.linspace(lo, hi + 1e-6, 2048, dtype=np.float32)
        att = att + np.interp(rib_v, table, self._ribs_profile(table)).astype(np.float32)
        d0, dc, dk, dd = self.diaphragm
        dome = np.float32(d0) + np.float32(dk) * (u - np.float32(dc)) ** 2
        att = att + np.float32(dd) * _sigmoid((v - dome) / np.float32(0.015))
        vig = 1 - np.float32(self.vignette) * (u**2 + v**2)
        out: F32 = (np.float32(self.level) * np.exp(-att) * np.clip(vig, 0.2, 1)).astype(np.float32)
        return out


def project_tubes(
    points: F64, radii: F64, shape: tuple[int, int], arrival: F64 | None = None
) -> tuple[F32, F32]:
    """Chord length through a union of circular lumens swept along centrelines.

    Each sample (a third of its radius or less from the next, see
    :meth:`.xa_tree.Vessel.sample`) stamps the chord of a sphere of its radius;
    the union takes the largest chord at each pixel centre, within about 1.5 %
    of the swept tube's.

    Parameters
    ----------
    points : ndarray, shape (n, 2)
        Centreline samples (x, y), pixels.
    radii : ndarray, shape (n,)
        Lumen radius at each sample, pixels.
    shape : tuple of int
        Output (rows, columns).
    arrival : ndarray, shape (n,), optional
        A value per sample (path length from the ostium); the earliest one
        covering a pixel is returned in the second map.

    Returns
    -------
    chord, arrival : ndarray
        Chord lengths (pixels) and earliest arrival (``inf`` where no vessel).
    """
    rows, cols = shape
    chord = np.zeros(rows * cols, dtype=np.float32)
    first = np.full(rows * cols, np.inf, dtype=np.float32)
    win = np.ceil(radii + 0.5).astype(np.int64)
    for half in np.unique(win):
        sel = (win == half) & (radii > 0)
        if not sel.any():
            continue
        p, r2 = points[sel], (radii[sel] ** 2)[:, None, None]
        o = np.arange(-half, half + 1)
        cx, cy = np.rint(p[:, 0]).astype(np.int64), np.rint(p[:, 1]).astype(np.int64)
        xs, ys = cx[:, None, None] + o[None, None, :], cy[:, None, None] + o[None, :, None]
        d2 = (xs - p[:, 0, None, None]) ** 2 + (ys - p[:, 1, None, None]) ** 2
        ok = (d2 < r2) & (xs >= 0) & (xs < cols) & (ys >= 0) & (ys < rows)
        idx = (ys * cols + xs)[ok]
        np.maximum.at(chord, idx, (2 * np.sqrt((r2 - d2)[ok])).astype(np.float32))
        if arrival is not None:
            stamp = np.broadcast_to(arrival[sel][:, None, None], ok.shape)[ok]
            np.minimum.at(first, idx, stamp.astype(np.float32))
    return chord.reshape(shape), first.reshape(shape)


@dataclass(frozen=True)
class Injection:
    """Contrast at the ostium over a cine (time as a fraction of the cine, 0 to 1).

    Wash-in is a smooth ramp from ``onset`` to ``peak``, the plateau lasts to
    ``plateau_end``, then wash-out decays with time constant ``tau``.
    """

    onset: float
    peak: float
    plateau_end: float
    tau: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> Injection:
        """Draw the timing of one injection."""
        onset = float(rng.uniform(0.06, 0.12))
        peak = onset + float(rng.uniform(0.2, 0.3))
        return cls(
            onset, peak, peak + float(rng.uniform(0.15, 0.25)), float(rng.uniform(0.25, 0.5))
        )

    def __call__(self, t: F64) -> F64:
        """Concentration (0 to 1) at times *t*."""
        r = np.clip((t - self.onset) / (self.peak - self.onset), 0.0, 1.0)
        rise = r * r * (3 - 2 * r)
        fall = np.exp(-np.clip(t - self.plateau_end, 0.0, None) / self.tau)
        out: F64 = rise * fall
        return out


@dataclass(frozen=True)
class Exposure:
    """Detector blur and quantum noise, given per pixel of the 512 reference frame."""

    blur_px: float
    noise_gain: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> Exposure:
        """Draw a detector: blur sigma 0.6-1.0 px; noise 2.5-5 grey levels at level 170."""
        sigma = float(rng.uniform(2.5, 5.0))
        return cls(float(rng.uniform(0.6, 1.0)), sigma * sigma / 170)

    def apply(
        self, intensity: F32, rng: np.random.Generator, scale: float = 1.0
    ) -> NDArray[np.uint8]:
        """Blur, add noise and quantise one frame drawn at *scale* target px per reference px.

        Drawing smaller than the reference averages pixels, so the blur shrinks
        (to no less than 0.35 px, the anti-aliasing a resize would give) and
        the noise variance falls with the pixel area.
        """
        sigma = max(self.blur_px * scale, 0.35)
        out = blur_inplane(intensity, sigma)
        gain = self.noise_gain * min(scale, 1.0) ** 2
        noise = rng.standard_normal(out.shape, dtype=np.float32)
        out += np.sqrt(np.maximum(out, 1.0) * np.float32(gain)) * noise
        np.rint(out, out=out)
        return np.clip(out, 0, 255).astype(np.uint8)


def draw_projection(rng: np.random.Generator) -> tuple[float, float, float]:
    """Detector pitch at 512 x 512, source-detector and source-patient distances (mm)."""
    pitch = round(float(rng.uniform(0.25, 0.35)), 3)
    sid = round(float(rng.uniform(1000, 1200)), 1)
    sod = round(float(rng.uniform(700, 800)), 1)
    return pitch, sid, sod


MU_PER_MM = (0.22, 0.32)
"""Range of iodine attenuation per mm of lumen at full opacification (1/mm)."""
CATHETER_MU = 0.8
"""Catheter attenuation per mm of chord, relative to a full vessel (wall and contrast)."""


def centreline_mask(points: F64, shape: tuple[int, int]) -> NDArray[np.bool_]:
    """A one-pixel centreline mask from dense samples (x, y)."""
    mask = np.zeros(shape, dtype=np.bool_)
    ix, iy = np.rint(points[:, 0]).astype(np.int64), np.rint(points[:, 1]).astype(np.int64)
    ok = (ix >= 0) & (ix < shape[1]) & (iy >= 0) & (iy < shape[0])
    mask[iy[ok], ix[ok]] = True
    return mask
