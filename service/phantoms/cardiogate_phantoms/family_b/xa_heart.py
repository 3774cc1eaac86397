"""The beating epicardium that family B's coronary tree lies on, and its breathing.

A point is given in surface coordinates ``(s, phi, h)``: ``s`` runs along the long axis from
the atrioventricular (AV) groove (0) to the apex (1), negative above the groove (aortic root);
``phi`` is the angle about the long axis (0: the anterior face over the right ventricle,
+pi/2: the left, obtuse margin, -pi/2: the right, acute margin); ``h`` is the fraction of the
local epicardial radius (1 on the surface, < 1 inside the muscle, e.g. septal branches).

The ventricles are a bullet shape ``rho(s) = R * sqrt(1 - s**q)`` about the long axis.  In
systole the base descends towards the fixed apex (long-axis shortening), the radius shrinks,
base and apex twist in opposite senses and the whole heart sways; breathing adds a slow drift
of everything in the chest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Heart:
    """Size, shape and pose (LPS mm) of the epicardium at end-diastole."""

    apex: F64  # LPS position of the apex
    axis: F64  # unit vector base -> apex
    e1: F64  # unit, perpendicular to axis, anterior face (phi = 0)
    e2: F64  # unit, axis x e1 rotated: phi = +pi/2 (left border)
    length_mm: float
    radius_mm: float
    shape_q: float
    ellipticity: float
    ellipse_phi: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> Heart:
        """A heart of adult size with its long axis pointing left, anterior and down."""
        az = math.radians(float(rng.uniform(35.0, 55.0)))
        el = math.radians(float(rng.uniform(20.0, 40.0)))
        axis = np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), -math.sin(el)])
        anterior = np.array([0.0, -1.0, 0.0])
        e1 = anterior - (anterior @ axis) * axis
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(e1, axis)
        length = float(rng.uniform(82.0, 102.0))
        return cls(
            apex=axis * length * 0.55,
            axis=axis,
            e1=e1,
            e2=e2,
            length_mm=length,
            radius_mm=float(rng.uniform(40.0, 52.0)),
            shape_q=float(rng.uniform(1.8, 2.8)),
            ellipticity=float(rng.uniform(0.0, 0.1)),
            ellipse_phi=float(rng.uniform(0.0, math.pi)),
        )

    def moved(self, shift: F64) -> Heart:
        """The same heart translated by *shift* (LPS mm)."""
        return Heart(
            self.apex + shift,
            self.axis,
            self.e1,
            self.e2,
            self.length_mm,
            self.radius_mm,
            self.shape_q,
            self.ellipticity,
            self.ellipse_phi,
        )

    def profile(self, s: F64) -> F64:
        """Epicardial radius factor (0-1) at long-axis position *s* (1 above the groove)."""
        inside = np.clip(s, 0.0, 1.0)
        out: F64 = np.sqrt(np.clip(1.0 - inside**self.shape_q, 0.0, 1.0))
        return out

    def to_patient(self, shc: F64, pose: Pose | None = None) -> F64:
        """LPS points (N x 3) of surface coordinates *shc* (N x 3: s, phi, h) at *pose*."""
        pose = pose or Pose.rest()
        s, phi, h = shc[:, 0], shc[:, 1], shc[:, 2]
        length = self.length_mm * pose.length_scale
        radius = self.radius_mm * pose.radius_scale
        phi = phi + pose.twist_base * (1 - np.clip(s, 0, 1)) + pose.twist_apex * np.clip(s, 0, 1)
        rho = radius * self.profile(s) * h
        rho = rho * (1 + self.ellipticity * np.cos(2 * (phi - self.ellipse_phi)))
        along = (s - 1.0) * length  # from the apex, which stays where it is
        ring = np.cos(phi)[:, None] * self.e1 + np.sin(phi)[:, None] * self.e2
        out: F64 = self.apex + along[:, None] * self.axis + rho[:, None] * ring + pose.shift
        return out

    def local_frame(self, shc: F64, pose: Pose, centre: F64) -> tuple[F64, F64]:
        """Outward normal and binormal (N x 3 each) of the centreline *centre* (N x 3, the
        points of *shc* at *pose*)."""
        tangent = np.gradient(centre, axis=0)
        tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
        lifted = shc * [1.0, 1.0, 1.05] + [0.0, 0.0, 0.01]
        out = self.to_patient(lifted, pose) - centre
        out -= np.sum(out * tangent, axis=1, keepdims=True) * tangent
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return out, np.cross(tangent, out)


@dataclass(frozen=True)
class Pose:
    """The deformation of the heart at one instant."""

    length_scale: float
    radius_scale: float
    twist_base: float  # rad
    twist_apex: float  # rad
    shift: F64  # LPS mm, sway and breathing

    @classmethod
    def rest(cls) -> Pose:
        """End-diastole, no breathing: the pose the anatomy is measured in."""
        return cls(1.0, 1.0, 0.0, 0.0, np.zeros(3))


@dataclass(frozen=True)
class Motion:
    """Heartbeat and breathing as functions of time (seconds from the first frame)."""

    heart_rate_bpm: float
    phase0: float  # cardiac phase (0-1) at t = 0
    systole: float  # fraction of the cycle spent contracting
    shortening: float  # long-axis shortening at end-systole (fraction)
    narrowing: float  # radial shortening at end-systole (fraction)
    twist_base: float  # rad at end-systole
    twist_apex: float  # rad at end-systole
    sway_mm: F64  # LPS translation at end-systole
    breath_mm: F64  # LPS amplitude of the breathing drift
    breath_period_s: float
    breath_phase: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> Motion:
        """Heart rate 50-110 bpm; a breath-hold that is not always perfect."""
        sway = rng.normal(size=3)
        sway *= float(rng.uniform(2.0, 7.0)) / np.linalg.norm(sway)
        breath = np.array([rng.normal(0, 0.3), rng.normal(0, 0.5), 1.0])
        breath *= float(rng.choice([0.0, rng.uniform(1.0, 4.0), rng.uniform(4.0, 12.0)]))
        return cls(
            heart_rate_bpm=float(rng.uniform(50.0, 110.0)),
            phase0=float(rng.random()),
            systole=float(rng.uniform(0.3, 0.4)),
            shortening=float(rng.uniform(0.08, 0.16)),
            narrowing=float(rng.uniform(0.06, 0.13)),
            twist_base=-math.radians(float(rng.uniform(3.0, 8.0))),
            twist_apex=math.radians(float(rng.uniform(5.0, 12.0))),
            sway_mm=sway,
            breath_mm=breath,
            breath_period_s=float(rng.uniform(3.5, 6.0)),
            breath_phase=float(rng.uniform(0.0, 2 * math.pi)),
        )

    def contraction(self, t: float) -> float:
        """0 at end-diastole, 1 at end-systole: fast contraction, slower relaxation, and a
        small atrial kick before the next beat."""
        phase = (self.phase0 + t * self.heart_rate_bpm / 60.0) % 1.0
        relax = 0.22
        if phase < self.systole:
            return math.sin(0.5 * math.pi * phase / self.systole) ** 2
        if phase < self.systole + relax:
            return math.cos(0.5 * math.pi * (phase - self.systole) / relax) ** 2
        if phase > 0.85:
            return 0.12 * math.sin(math.pi * (phase - 0.85) / 0.15) ** 2
        return 0.0

    def breathing(self, t: float) -> F64:
        """Drift of the chest (LPS mm) since t = 0."""
        w = 2 * math.pi / self.breath_period_s
        out: F64 = (
            self.breath_mm
            * 0.5
            * (math.sin(w * t + self.breath_phase) - math.sin(self.breath_phase))
        )
        return out

    def pose(self, t: float) -> Pose:
        """The heart's pose at time *t*."""
        f = self.contraction(t)
        return Pose(
            length_scale=1.0 - self.shortening * f,
            radius_scale=1.0 - self.narrowing * f,
            twist_base=self.twist_base * f,
            twist_apex=self.twist_apex * f,
            shift=self.sway_mm * f + self.breathing(t),
        )
