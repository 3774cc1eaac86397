"""Devices in family B's chest: the guiding catheter (always), and sometimes a guide wire,
a stent, sternal wires and a pacemaker lead.

A device is a set of 3D polylines.  Each point is tied to a point of the heart (surface
coordinates) with a weight: 1 moves with the heart, 0 only with breathing.  Stent struts
and the guide wire ride on a vessel's centreline: their points are offsets in the vessel's
local frame (tangent, outward normal, binormal), rebuilt for every pose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

from .xa_heart import F64, Heart, Pose
from .xa_projection import CArm, project_tube
from .xa_render import Tube
from .xa_tree3d import Vessel


@dataclass(frozen=True)
class Device:
    """One device: polylines (``breaks`` start each) of points tied to the heart."""

    kind: str
    rest: F64  # (N, 3) LPS at rest; ignored where ``offsets`` is given
    anchor: F64  # (N, 3) surface coordinates each point follows
    weight: F64  # (N,) 0 = chest, 1 = heart
    radius_mm: float
    mu: F64  # (N,) attenuation per mm
    breaks: tuple[int, ...] = (0,)
    offsets: F64 | None = None  # (N, 2) mm along the local outward normal and binormal
    iodine: float = 0.0  # share of the lumen that carries contrast from the ostium

    def points(self, heart: Heart, pose: Pose, breathing: F64) -> F64:
        """LPS points at *pose* (whose shift includes *breathing*)."""
        now = heart.to_patient(self.anchor, pose)
        if self.offsets is not None:
            n1, n2 = heart.local_frame(self.anchor, pose, now)
            out: F64 = now + self.offsets[:, :1] * n1 + self.offsets[:, 1:] * n2
            return out
        moved = now - heart.to_patient(self.anchor)
        w = self.weight[:, None]
        out = self.rest + w * moved + (1 - w) * breathing
        return out

    def tubes(
        self, carm: CArm, heart: Heart, pose: Pose, breathing: F64, iodine_mu: float
    ) -> list[Tube]:
        """The projected polylines, with contrast in the lumen at *iodine_mu* per mm."""
        pts = self.points(heart, pose, breathing)
        mu = self.mu + self.iodine * iodine_mu
        ends = [*self.breaks[1:], len(pts)]
        radius = np.full(len(pts), self.radius_mm)
        return [
            project_tube(carm, pts[a:b], radius[a:b], mu[a:b], min_sin=0.5)
            for a, b in zip(self.breaks, ends, strict=True)
            if b - a >= 2
        ]


def _smooth(points: F64, step_mm: float) -> F64:
    """A monotone cubic through *points* sampled about *step_mm* apart."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    knots = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(knots[-1] / step_mm))
    out: F64 = PchipInterpolator(knots, points, axis=0)(np.linspace(0, knots[-1], n))
    return out


def catheter(rng: np.random.Generator, heart: Heart, ostium: F64) -> Device:
    """A guiding catheter from the femoral route: down the descending aorta, over the arch,
    down the ascending aorta into the ostium (*ostium*: surface coordinates)."""
    tip = heart.to_patient(ostium[None, :])[0]
    root = heart.to_patient(np.array([[ostium[0] - 0.05, 0.0, 0.0]]))[0]
    j = rng.uniform(-8, 8, size=(6, 3))
    descending = np.array([float(rng.uniform(12, 28)), float(rng.uniform(45, 65)), root[2]])
    ctrl = np.stack(
        [
            descending + [0, 0, -260] + j[0],
            descending + [0, -5, 60] + j[1],
            [0.5 * root[0], 15.0, root[2] + 115] + j[2],
            root + [-12, -5, 60] + j[3],
            root + [-6, -8, 25] + j[4] * 0.5,
            0.55 * root + 0.45 * tip + [0, 0, 10] + j[5] * 0.3,
            tip,
        ]
    )
    pts = _smooth(ctrl, 1.5)
    along = np.linalg.norm(pts - tip, axis=1)
    weight = np.exp(-along / float(rng.uniform(30.0, 60.0)))
    anchor = np.repeat(ostium[None, :], len(pts), axis=0)
    mu = np.full(len(pts), float(rng.uniform(0.03, 0.08)))
    return Device("catheter", pts, anchor, weight, float(rng.uniform(0.9, 1.05)), mu, iodine=0.7)


def guide_wire(vessel_path: Sequence[Vessel]) -> Device:
    """A 0.014 inch wire along *vessel_path* (ostium first) to the distal end."""
    anchor = np.concatenate([v.shc for v in vessel_path])
    n = len(anchor)
    zeros = np.zeros((n, 3))
    return Device("wire", zeros, anchor, np.ones(n), 0.18, np.full(n, 2.5), offsets=zeros[:, :2])


def stent(rng: np.random.Generator, vessel: Vessel) -> Device:
    """A stent: criss-crossing helical struts round *vessel* over 12-32 mm."""
    length = float(rng.uniform(12.0, 32.0))
    centre = float(rng.uniform(0.15, 0.65)) * vessel.length_mm
    lo, hi = max(0.0, centre - length / 2), min(vessel.length_mm, centre + length / 2)
    along = np.arange(lo, hi, 0.15)
    radius = np.interp(along, vessel.arc_mm, vessel.radius_mm) * 1.05
    shc = np.stack([np.interp(along, vessel.arc_mm, vessel.shc[:, k]) for k in range(3)], axis=1)
    pitch = float(rng.uniform(3.0, 5.0))
    n_struts = int(rng.choice([4, 6]))
    parts: list[F64] = []
    breaks: list[int] = []
    offsets: list[F64] = []
    for i in range(n_struts):
        hand = 1 if i % 2 == 0 else -1
        angle = hand * 2 * math.pi * (along - lo) / pitch + 2 * math.pi * (i // 2) / (n_struts // 2)
        breaks.append(len(parts) * len(along))
        parts.append(shc)
        offsets.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))
    anchor = np.concatenate(parts)
    n = len(anchor)
    return Device(
        "stent",
        np.zeros((n, 3)),
        anchor,
        np.ones(n),
        0.06,
        np.full(n, 2.0),
        tuple(breaks),
        np.concatenate(offsets),
    )


def sternal_wires(rng: np.random.Generator, heart: Heart) -> Device:
    """4-6 twisted steel loops round the sternum, in front of the heart."""
    front = (
        heart.apex - heart.axis * heart.length_mm * 0.5 + [0.0, -float(rng.uniform(60, 85)), 0.0]
    )
    front[0] = float(rng.uniform(-10, 10))
    pts: list[F64] = []
    breaks: list[int] = []
    count = int(rng.integers(4, 7))
    for i in range(count):
        z = front[2] + 40 - i * float(rng.uniform(24, 30))
        t = np.linspace(0, 2 * math.pi, 90)
        half_w, half_d = float(rng.uniform(10, 17)), float(rng.uniform(5, 8))
        tilt = float(rng.uniform(-0.2, 0.2))
        loop = np.stack(
            [
                front[0] + half_w * np.cos(t),
                front[1] + half_d * np.sin(t),
                z + tilt * half_w * np.cos(t),
            ],
            1,
        )
        twist_t = np.linspace(0, 6 * math.pi, 60)
        knot = np.stack(
            [
                front[0] + half_w + 1.5 * np.cos(twist_t),
                front[1] - np.linspace(0, 9, 60),
                z + 1.5 * np.sin(twist_t),
            ],
            1,
        )
        start = sum(len(p) for p in pts)
        breaks.extend([start, start + len(loop)])
        pts.extend([loop, knot])
    rest = np.concatenate(pts)
    n = len(rest)
    anchor = np.zeros((n, 3))
    return Device("sternal_wires", rest, anchor, np.zeros(n), 0.5, np.full(n, 3.0), tuple(breaks))


def pacemaker_lead(rng: np.random.Generator, heart: Heart) -> Device:
    """A lead from the left subclavian vein down the SVC, through the right atrium into the
    right-ventricular apex, with a denser electrode at its tip."""
    base = heart.apex - heart.axis * heart.length_mm
    apex_shc = np.array([float(rng.uniform(0.78, 0.9)), float(rng.uniform(-1.0, -0.4)), 0.75])
    tip = heart.to_patient(apex_shc[None, :])[0]
    ctrl = np.stack(
        [
            base + [80, -40, 190],
            base + [20, -20, 150],
            base + [-30, 5, 90],
            base + [-40, 0, 25],
            0.5 * (base + [-40, 0, 25]) + 0.5 * tip + [0, -10, 0],
            tip,
        ]
    )
    jitter = rng.uniform(-6, 6, size=ctrl.shape)
    jitter[-1] = 0.0
    pts = _smooth(ctrl + jitter, 1.5)
    from_tip = np.linalg.norm(pts - tip, axis=1)
    weight = np.clip(1.2 - from_tip / 80.0, 0.0, 1.0)
    anchor = np.repeat(apex_shc[None, :], len(pts), axis=0)
    mu = np.where(from_tip < 10.0, 1.2, 0.35)
    return Device("pacemaker_lead", pts, anchor, weight, 1.0, mu)
