"""Family B: bright things in a cardiac CT that are not coronary calcium.

Aortic valve calcium on the cusps below the coronary ostia, calcified patches on the wall of
the ascending and descending aorta, mitral annulus calcification inside the left
atrioventricular plane, costal cartilage calcification, metal (sternal wires after a
sternotomy, a pacemaker lead through the superior vena cava and right atrium to the right
ventricular apex, surgical clips) and noise spikes.  Bone itself is anatomy
(``ct_body``).  Every ball keeps a gap from every coronary plaque, so no calcium component
of the image mixes a coronary plaque with one of these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .ct_anatomy import Anatomy, ellipse_radius, unit
from .ct_coronary import CoronaryTree, Plaque, smooth_path

F64 = NDArray[np.float64]
NONCORONARY_KINDS = (
    "none",
    "aortic_valve",
    "aortic_wall",
    "mitral_annulus",
    "bone",
    "metal",
    "other",
)
AORTIC_VALVE, AORTIC_WALL, MITRAL, BONE, METAL, OTHER = 1, 2, 3, 4, 5, 6
METAL_HU = 12000.0
_GAP_MM = 6.0  # between any ball here and any coronary plaque ball
_OSTIUM_GAP_MM = 1.5


@dataclass(frozen=True)
class Extra:
    """One placed object: balls (centres mm, radii), its density and metal streak strength.
    A noise spike (kind 6) is one ball whose radius is its size in pixels."""

    kind: int
    name: str
    centres: F64
    radii: F64
    density_hu: float
    streaks_hu: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": NONCORONARY_KINDS[self.kind],
            "kind_code": self.kind,
            "name": self.name,
            "centre_mm": [round(float(v), 2) for v in self.centres.mean(axis=0)],
            "balls": len(self.radii),
            "density_hu": round(self.density_hu, 1),
        }


def _basis(axis: F64) -> tuple[F64, F64]:
    ref = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    n1 = unit(np.cross(axis, ref))
    return n1, np.cross(axis, n1)


def _aortic_valve(rng: np.random.Generator, anatomy: Anatomy) -> Extra:
    v = anatomy.vessels
    n1, n2 = _basis(v.root_axis)
    first = float(rng.uniform(0, 2 * math.pi))
    balls = []
    for cusp in rng.choice(3, size=int(rng.integers(1, 4)), replace=False):
        mid = first + (int(cusp) + 0.5) * 2 * math.pi / 3
        for _ in range(int(rng.integers(1, 5))):
            angle = mid + float(rng.uniform(-0.8, 0.8))
            radial = float(rng.uniform(0.35, 0.95)) * v.annulus_r_mm
            height = float(rng.uniform(0.0, 5.0))
            size = float(rng.uniform(0.7, 2.2))
            for k in range(int(rng.integers(1, 4))):  # a chain along the cusp towards its hinge
                r = min(radial + 1.2 * k, v.annulus_r_mm)
                at = v.root + height * v.root_axis
                balls.append((at + r * (math.cos(angle) * n1 + math.sin(angle) * n2), size))
    return _extra(AORTIC_VALVE, "aortic valve calcium", balls, rng.uniform(300, 1400))


def _aortic_wall(rng: np.random.Generator, anatomy: Anatomy, z_range: tuple[float, float]) -> Extra:
    v = anatomy.vessels
    balls = []
    for _ in range(int(rng.integers(1, 7))):
        if rng.random() < 0.5:
            start, axis, radius = v.root, v.root_axis, v.aorta_r_mm
            along = float(rng.uniform(22, 90))
        else:
            start, top = v.descending
            axis, radius = unit(top - start), v.descending_r_mm
            along = float(rng.uniform(z_range[0], z_range[1]) - start[2]) / float(axis[2])
        n1, n2 = _basis(axis)
        angle, arc = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0.3, 1.8))
        size = float(rng.uniform(0.6, 1.4))
        for dz in np.arange(0.0, float(rng.uniform(2, 10)), 0.8):
            for a in np.arange(angle, angle + arc, 0.8 / radius):
                wall = start + (along + dz) * axis
                balls.append((wall + (radius - 0.5) * (math.cos(a) * n1 + math.sin(a) * n2), size))
    return _extra(AORTIC_WALL, "aortic wall calcium", balls, rng.uniform(250, 1000))


def _mitral(rng: np.random.Generator, anatomy: Anatomy) -> Extra:
    h = anatomy.heart
    phi = math.radians(float(rng.uniform(125, 160)))
    t = float(h.t_groove(phi)) + 0.03
    radial = math.cos(phi) * h.e2 + math.sin(phi) * h.e3
    centre = h.centre + t * h.a * h.e1 + 0.4 * h.b * radial
    ring = float(rng.uniform(12, 16))
    spread = math.radians(float(rng.uniform(60, 220)))
    size = float(rng.uniform(1.0, 2.4))
    balls = []
    for a in np.arange(-spread / 2, spread / 2, 1.0 / ring):
        direction = math.cos(phi + a) * h.e2 + math.sin(phi + a) * h.e3
        balls.append((centre + ring * direction, size * float(rng.uniform(0.7, 1.0))))
    return _extra(MITRAL, "mitral annulus calcification", balls, rng.uniform(300, 1200))


def _costal(rng: np.random.Generator, anatomy: Anatomy, z_range: tuple[float, float]) -> Extra:
    t = anatomy.torso
    balls = []
    for _ in range(int(rng.integers(2, 12))):
        g = float(rng.uniform(t.cartilage_from + 0.02, 0.95))
        sin = 1 - 2 * g
        cos = math.sqrt(max(1 - sin**2, 0.0)) * (1 if rng.random() < 0.5 else -1)
        radius = float(ellipse_radius(t.cavity, cos, sin)) + 0.5 + t.rib_mm / 2
        z0 = t.rib_z0_mm - t.rib_drop_mm * g + t.rib_height_mm / 2
        ribs = np.arange(-12, 12) * t.rib_pitch_mm + z0
        inside = ribs[(ribs > z_range[0]) & (ribs < z_range[1])]
        if not len(inside):
            continue
        centre = np.array([radius * cos, radius * sin, float(rng.choice(inside))])
        for _ in range(int(rng.integers(1, 5))):
            balls.append((centre + rng.normal(0, 1.5, 3), float(rng.uniform(0.5, 1.5))))
    return _extra(BONE, "costal cartilage calcification", balls, rng.uniform(250, 700))


def _wires(rng: np.random.Generator, anatomy: Anatomy, z_range: tuple[float, float]) -> list[Extra]:
    t = anatomy.torso
    y, hw, hd = t.sternum
    out: list[Extra] = []
    z = t.sternum_bottom_mm + float(rng.uniform(8, 20))
    while z < z_range[1] and len(out) < 7:
        loop = np.linspace(0, 2 * math.pi, int(2 * math.pi * (hw + 3) / 0.6))
        tilt = float(rng.uniform(-1.5, 1.5))
        pts = np.stack(
            [(hw + 2.5) * np.cos(loop), y + (hd + 2.0) * np.sin(loop), z + tilt * np.cos(loop)],
            axis=1,
        )
        knot = np.array([[float(rng.uniform(-4, 4)), y - hd - 3.0, z]])
        balls = [(p, 0.55) for p in pts] + [(knot[0], 1.4)]
        if z > z_range[0]:
            out.append(_extra(METAL, "sternal wire", balls, METAL_HU, rng.uniform(150, 400)))
        z += float(rng.uniform(18, 28))
    return out


def _lead(rng: np.random.Generator, anatomy: Anatomy) -> list[Extra]:
    h, v = anatomy.heart, anatomy.vessels
    bottom, top = v.svc
    ra = h.surface(-0.55, math.radians(-95), -12.0)[0]
    rv = h.centre + 0.72 * h.a * h.e1 + 0.45 * h.b * (math.cos(-0.3) * h.e2 + math.sin(-0.3) * h.e3)
    path = smooth_path(np.array([top, bottom + 0.3 * (top - bottom), bottom, ra, rv]), 0.7)
    radius = float(rng.uniform(0.85, 1.1))
    balls = [(p, radius) for p in path] + [(path[-1], 1.6)]
    return [_extra(METAL, "pacemaker lead", balls, 6000.0, rng.uniform(80, 220))]


def _clips(rng: np.random.Generator, anatomy: Anatomy, z_range: tuple[float, float]) -> list[Extra]:
    y = anatomy.torso.sternum[0]
    out = []
    for _ in range(int(rng.integers(2, 7))):
        centre = np.array(
            [
                float(rng.uniform(18, 45)),
                y + float(rng.uniform(10, 22)),
                float(rng.uniform(*z_range)),
            ]
        )
        direction = unit(rng.normal(0, 1, 3))
        balls = [(centre + s * direction, 0.6) for s in np.arange(-2.0, 2.01, 0.5)]
        out.append(_extra(METAL, "surgical clip", balls, METAL_HU, rng.uniform(100, 250)))
    return out


def _spikes(
    rng: np.random.Generator, anatomy: Anatomy, z_range: tuple[float, float]
) -> list[Extra]:
    cavity = anatomy.torso.cavity
    out = []
    for _ in range(int(rng.integers(3, 25))):
        angle = float(rng.uniform(0, 2 * math.pi))
        r = math.sqrt(float(rng.random())) * 0.95
        centre = np.array(
            [
                r * cavity[0] * math.cos(angle),
                r * cavity[1] * math.sin(angle),
                float(rng.uniform(*z_range)),
            ]
        )
        size = float(rng.integers(1, 4))
        out.append(_extra(OTHER, "noise spike", [(centre, size)], rng.uniform(250, 1200)))
    return out


def _extra(
    kind: int, name: str, balls: list[tuple[F64, float]], density: Any, streaks: Any = 0.0
) -> Extra:
    centres = np.array([b[0] for b in balls]).reshape(-1, 3)
    radii = np.array([b[1] for b in balls], dtype=np.float64)
    return Extra(kind, name, centres, radii, float(density), float(streaks))


def _clear(extra: Extra, obstacles: F64, reach: F64, gap: float) -> Extra | None:
    """``extra`` without the balls closer than ``gap`` to any obstacle ball; None if none left."""
    if not len(obstacles) or not len(extra.radii):
        return extra if len(extra.radii) else None
    size = np.zeros_like(extra.radii) if extra.kind == OTHER else extra.radii
    d = np.linalg.norm(extra.centres[:, None, :] - obstacles[None, :, :], axis=2)
    keep = (d - size[:, None] - reach[None, :]).min(axis=1) >= gap
    if not keep.any():
        return None
    return Extra(
        extra.kind,
        extra.name,
        extra.centres[keep],
        extra.radii[keep],
        extra.density_hu,
        extra.streaks_hu,
    )


def sample_extras(
    rng: np.random.Generator,
    anatomy: Anatomy,
    tree: CoronaryTree,
    plaques: list[Plaque],
    z_range: tuple[float, float],
    present: dict[str, bool],
) -> list[Extra]:
    """The objects named in ``present`` (valve, wall, mitral, costal, wires, lead, clips,
    spikes), kept clear of the coronary plaques and the first centimetre of each artery."""
    out: list[Extra] = []
    if present["valve"]:
        out.append(_aortic_valve(rng, anatomy))
    if present["wall"]:
        out.append(_aortic_wall(rng, anatomy, z_range))
    if present["mitral"]:
        out.append(_mitral(rng, anatomy))
    if present["costal"]:
        out.append(_costal(rng, anatomy, z_range))
    if present["wires"]:
        out += _wires(rng, anatomy, z_range)
    if present["lead"]:
        out += _lead(rng, anatomy)
    if present["clips"]:
        out += _clips(rng, anatomy, z_range)
    if present["spikes"]:
        out += _spikes(rng, anatomy, z_range)
    plaque_c = np.vstack([p.centres for p in plaques]) if plaques else np.zeros((0, 3))
    plaque_r = np.concatenate([p.radii for p in plaques]) if plaques else np.zeros(0)
    ostial = [v for v in tree.vessels if v.name in ("LM-LAD", "LM-LCX", "RCA")]
    ostia_c = np.vstack([v.points[:20] for v in ostial])
    ostia_r = np.concatenate([v.radius[:20] for v in ostial])
    kept = []
    for extra in out:
        cleared = _clear(extra, plaque_c, plaque_r, _GAP_MM)
        if cleared is not None and extra.kind == AORTIC_VALVE:
            cleared = _clear(cleared, ostia_c, ostia_r, _OSTIUM_GAP_MM)
        if cleared is not None and len(cleared.radii):
            kept.append(cleared)
    return kept
