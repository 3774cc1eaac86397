"""Cardiac motion of the synthetic angiograms.

Each frame shows the tree translated, contracted towards the centre of the
heart in systole, slightly rotated and bent by a smooth non-rigid wave, all
following one sinusoidal heartbeat.  :meth:`CardiacMotion.to_reference` maps
frame pixels back onto the unmoved tree (to warp its attenuation map) and
:meth:`CardiacMotion.to_frame` moves tree points into a frame (for the truth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._raster import F32, F64
from .xa_tree import REF_SIZE


@dataclass(frozen=True)
class CardiacMotion:
    """Heartbeat motion of the coronary tree about *centre* (pixels).

    Attributes
    ----------
    centre : tuple of float
        Centre of contraction and rotation, pixels.
    translate : tuple of float
        Amplitude of the translation along x and y, pixels.
    contraction : float
        Systolic shrinkage, a fraction of the distance to the centre.
    rotation : float
        Amplitude of the rotation, radians.
    warp, wave : float
        Amplitude (pixels) and spatial frequency (radians per pixel) of the
        non-rigid wave.
    heart_rate_bpm, phase0 : float
        Heart rate and cardiac phase at time 0 (radians).
    """

    centre: tuple[float, float]
    translate: tuple[float, float]
    contraction: float
    rotation: float
    warp: float
    wave: float
    heart_rate_bpm: float
    phase0: float

    @classmethod
    def random(cls, rng: np.random.Generator, centre: F64, scale: float) -> CardiacMotion:
        """Draw a motion for a frame drawn at *scale* pixels per reference pixel."""
        return cls(
            (float(centre[0]), float(centre[1])),
            (scale * float(rng.uniform(5, 12)), scale * float(rng.uniform(5, 12))),
            float(rng.uniform(0.04, 0.08)),
            math.radians(float(rng.uniform(1.0, 2.5))),
            scale * float(rng.uniform(1.5, 3.0)),
            2 * math.pi * float(rng.uniform(0.8, 1.6)) / (REF_SIZE * scale),
            float(rng.uniform(55, 85)),
            float(rng.uniform(0, 2 * math.pi)),
        )

    def state(self, t_s: float) -> tuple[float, float, float, float, float]:
        """Translation x, y (px), scale, rotation (rad) and warp amplitude at *t_s* seconds."""
        ph = 2 * math.pi * self.heart_rate_bpm / 60 * t_s + self.phase0
        scale = 1 - self.contraction * 0.5 * (1 - math.cos(ph))
        tx, ty = self.translate[0] * math.sin(ph), self.translate[1] * math.sin(ph + 0.6)
        return tx, ty, scale, self.rotation * math.sin(ph + 1.1), self.warp * math.sin(ph + 0.3)

    def bound(self, reach: float) -> float:
        """Largest displacement of a point within *reach* px of the centre, px."""
        return math.hypot(*self.translate) + (self.contraction + self.rotation) * reach + self.warp

    def to_reference(self, t_s: float, x: F32, y: F32) -> tuple[F32, F32]:
        """Where frame pixels (*x*, *y*) were before the motion at *t_s*."""
        tx, ty, scale, rot, warp = self.state(t_s)
        cx, cy = self.centre
        c, s = math.cos(rot) / scale, math.sin(rot) / scale
        dx, dy = x - np.float32(cx + tx), y - np.float32(cy + ty)
        rx = np.float32(cx) + np.float32(c) * dx + np.float32(s) * dy
        ry = np.float32(cy) - np.float32(s) * dx + np.float32(c) * dy
        rx += np.float32(warp) * np.sin(np.float32(self.wave) * y + np.float32(1.3))
        ry += np.float32(warp) * np.sin(np.float32(self.wave) * x + np.float32(0.4))
        return rx, ry

    def to_frame(self, t_s: float, points: F64) -> F64:
        """Where reference points (n, 2) are in the frame at *t_s* (inverse of ``to_reference``)."""
        tx, ty, scale, rot, warp = self.state(t_s)
        cx, cy = self.centre
        c, s = math.cos(rot) * scale, math.sin(rot) * scale
        x = points.copy()
        for _ in range(8):
            px = points[:, 0] - warp * np.sin(self.wave * x[:, 1] + 1.3) - cx
            py = points[:, 1] - warp * np.sin(self.wave * x[:, 0] + 0.4) - cy
            x = np.stack([cx + tx + c * px - s * py, cy + ty + s * px + c * py], axis=1)
        return x
