"""Family B CT anatomy: a seeded torso, heart and great vessels in patient mm (LPS).

The heart is a tapered, bulged ellipsoid in its own frame: ``e1`` runs from the base (atria,
superior-posterior-right) to the apex (inferior-anterior-left), ``e2`` is the anterior
direction perpendicular to it and ``e3`` completes the frame towards the patient's left.
A point of the heart's surface is named by ``t`` (-1 base .. 1 apex along ``e1``) and the
angle ``phi`` around ``e1``: 0 anterior, +90 deg left-lateral, 180 deg posterior, about
-120 deg the diaphragmatic (inferior) wall.  Its surface is where
``(u / a)**2 + (rho / R(t, phi))**2 == 1`` (``u`` along ``e1``, ``rho`` the distance from
the axis, ``R`` an equatorial radius that tapers towards the apex and bulges to one side).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
BODY_SIZES = ("small", "medium", "large")

# skin semi-axes x, y; subcutaneous fat; chest wall (muscle and ribs), per body size (mm)
_BODY = {
    "small": ((132, 148), (92, 106), (5, 12), (12, 16)),
    "medium": ((152, 175), (106, 122), (12, 26), (14, 18)),
    "large": ((178, 212), (124, 148), (28, 50), (15, 20)),
}
_APEX_DIRECTION = (0.55, -0.45, -0.70)  # base -> apex, patient LPS, before jitter


def unit(v: F64) -> F64:
    """``v`` scaled to length 1."""
    return np.asarray(v / np.linalg.norm(v), dtype=np.float64)


def rotate(v: F64, axis: F64, angle: float) -> F64:
    """``v`` turned by ``angle`` (rad) about ``axis`` (Rodrigues)."""
    k = unit(axis)
    return np.asarray(
        v * math.cos(angle)
        + np.cross(k, v) * math.sin(angle)
        + k * float(k @ v) * (1 - math.cos(angle)),
        dtype=np.float64,
    )


def ellipse_radius(semi: tuple[float, float], cos: Any, sin: Any) -> Any:
    """The distance from the centre to an ellipse of semi-axes ``semi`` along an angle."""
    return 1.0 / np.sqrt((cos / semi[0]) ** 2 + (sin / semi[1]) ** 2)


@dataclass(frozen=True)
class Torso:
    """Skin, fat, chest wall, ribs, spine, sternum and the diaphragm domes (mm)."""

    size: str
    skin: tuple[float, float]
    fat_mm: float
    wall_mm: float
    rib_mm: float  # radial thickness of a rib inside the chest wall
    rib_pitch_mm: float
    rib_height_mm: float
    rib_drop_mm: float  # how much lower a rib's front end lies than its back
    rib_z0_mm: float
    cartilage_from: float  # anteriority (0 back .. 1 front) where rib turns to cartilage
    vertebra_y_mm: float
    vertebra_r_mm: float
    disc_pitch_mm: float
    disc_height_mm: float
    disc_z0_mm: float
    sternum: tuple[float, float, float]  # y centre, half width, half depth
    sternum_bottom_mm: float
    sternotomy: bool
    domes: tuple[tuple[float, float, float, float], ...]  # right, left: x, y, apex z, radius
    mediastinum_mm: float  # half width of the fat strip between the lungs

    @property
    def muscle(self) -> tuple[float, float]:
        return (self.skin[0] - self.fat_mm, self.skin[1] - self.fat_mm)

    @property
    def cavity(self) -> tuple[float, float]:
        return (
            self.skin[0] - self.fat_mm - self.wall_mm,
            self.skin[1] - self.fat_mm - self.wall_mm,
        )

    def rib_phase(self, z: Any, anteriority: Any) -> Any:
        """Where in the rib cycle (mm, 0 .. pitch) a point lies; ribs fill 0 .. height."""
        return np.mod(z - self.rib_z0_mm + self.rib_drop_mm * anteriority, self.rib_pitch_mm)


@dataclass(frozen=True)
class Heart:
    """The heart in its frame (see the module docstring) and its epicardial fat."""

    centre: F64
    e1: F64
    e2: F64
    e3: F64
    a: float  # half length along e1
    b: float  # equatorial radius towards e2
    c: float  # equatorial radius towards e3
    taper: float  # narrowing towards the apex
    base_taper: float  # narrowing towards the base
    bulge: float
    bulge_phi: float
    fat_mm: float
    groove_fat_mm: float
    pad_mm: float  # paracardiac fat outside the pericardium
    t_av: float  # the atrioventricular groove
    av_tilt: float
    phi_iv: float  # anterior interventricular groove
    phi_piv: float  # posterior interventricular groove

    def equatorial_radius(self, t: Any, cos_phi: Any, sin_phi: Any) -> Any:
        t = np.clip(t, -1.2, 1.2)
        taper = 1.0 - np.where(t > 0, self.taper, -self.base_taper) * t
        shape = 1.0 / np.sqrt((cos_phi / self.b) ** 2 + (sin_phi / self.c) ** 2)
        side = cos_phi * math.cos(self.bulge_phi) + sin_phi * math.sin(self.bulge_phi)
        return taper * shape * (1.0 + self.bulge * side)

    def local(self, points: F64) -> tuple[F64, F64, F64]:
        """(u, v, w) of points (..., 3) along e1, e2, e3 from the centre."""
        d = points - self.centre
        return d @ self.e1, d @ self.e2, d @ self.e3

    def t_groove(self, phi: Any) -> Any:
        """t of the atrioventricular groove at angle ``phi``."""
        return self.t_av + self.av_tilt * np.cos(phi)

    def surface(self, t: Any, phi: Any, lift: Any = 0.0) -> F64:
        """Points (n, 3) on the surface at (t, phi), moved ``lift`` mm out along its normal."""
        t, phi = np.atleast_1d(np.asarray(t, float)), np.atleast_1d(np.asarray(phi, float))
        cp, sp = np.cos(phi), np.sin(phi)
        big_r = self.equatorial_radius(t, cp, sp)
        rho = big_r * np.sqrt(np.clip(1 - t**2, 0.0, None))
        radial = cp[:, None] * self.e2 + sp[:, None] * self.e3
        normal = (t / self.a)[:, None] * self.e1 + (rho / big_r**2)[:, None] * radial
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        base = self.centre + (t * self.a)[:, None] * self.e1 + rho[:, None] * radial
        return np.asarray(base + np.asarray(lift, float).reshape(-1, 1) * normal)


@dataclass(frozen=True)
class GreatVessels:
    """Aortic root and aorta, pulmonary trunk, superior vena cava (capsules, mm)."""

    root: F64  # centre of the aortic annulus
    root_axis: F64
    annulus_r_mm: float
    sinus_r_mm: float
    aorta_r_mm: float
    aorta_top: F64
    descending: tuple[F64, F64]
    descending_r_mm: float
    pulmonary: tuple[F64, F64]
    pulmonary_r_mm: float
    svc: tuple[F64, F64]
    svc_r_mm: float


@dataclass(frozen=True)
class Anatomy:
    torso: Torso
    heart: Heart
    vessels: GreatVessels

    def as_dict(self) -> dict[str, Any]:
        h, t = self.heart, self.torso
        return {
            "body_size": t.size,
            "skin_semi_axes_mm": [round(v, 1) for v in t.skin],
            "subcutaneous_fat_mm": round(t.fat_mm, 1),
            "heart_centre_mm": [round(float(v), 1) for v in h.centre],
            "heart_long_axis": [round(float(v), 3) for v in h.e1],
            "heart_semi_axes_mm": [round(v, 1) for v in (h.a, h.b, h.c)],
            "epicardial_fat_mm": round(h.fat_mm, 1),
            "sternotomy": t.sternotomy,
        }


def sample_torso(rng: np.random.Generator, size: str, sternotomy: bool) -> Torso:
    sx, sy, fat, wall = _BODY[size]
    skin = (float(rng.uniform(*sx)), float(rng.uniform(*sy)))
    wall_mm = float(rng.uniform(*wall))
    fat_mm = float(rng.uniform(*fat))
    cavity_y = skin[1] - fat_mm - wall_mm
    vr = float(rng.uniform(15, 21))
    return Torso(
        size=size,
        skin=skin,
        fat_mm=fat_mm,
        wall_mm=wall_mm,
        rib_mm=float(rng.uniform(7, 11)),
        rib_pitch_mm=float(rng.uniform(24, 32)),
        rib_height_mm=float(rng.uniform(8, 12)),
        rib_drop_mm=float(rng.uniform(40, 75)),
        rib_z0_mm=float(rng.uniform(0, 30)),
        cartilage_from=float(rng.uniform(0.78, 0.86)),
        vertebra_y_mm=cavity_y - 1.05 * vr,
        vertebra_r_mm=vr,
        disc_pitch_mm=float(rng.uniform(24, 30)),
        disc_height_mm=float(rng.uniform(4, 8)),
        disc_z0_mm=float(rng.uniform(0, 30)),
        sternum=(-cavity_y - 0.45 * wall_mm, float(rng.uniform(12, 18)), float(rng.uniform(4, 6))),
        sternum_bottom_mm=float(rng.uniform(-80, -40)),
        sternotomy=sternotomy,
        domes=(
            (float(rng.uniform(-75, -50)), float(rng.uniform(-5, 25)), 0.0, 120.0),
            (float(rng.uniform(50, 75)), float(rng.uniform(0, 30)), 0.0, 130.0),
        ),
        mediastinum_mm=float(rng.uniform(8, 16)),
    )


def sample_heart(rng: np.random.Generator, torso: Torso) -> Heart:
    scale = float(rng.uniform(0.9, 1.12))
    e1 = unit(np.array(_APEX_DIRECTION))
    e1 = rotate(e1, np.array([0.0, 0.0, 1.0]), float(rng.normal(0, 0.15)))
    e1 = rotate(e1, np.array([1.0, 0.0, 0.0]), float(rng.normal(0, 0.15)))
    anterior = np.array([0.0, -1.0, 0.0])
    e2 = unit(anterior - float(anterior @ e1) * e1)
    e3 = np.cross(e1, e2)
    e3 = -e3 if e3[0] < 0 else e3
    a, b, c = (scale * float(rng.uniform(lo, hi)) for lo, hi in ((46, 56), (38, 46), (36, 44)))
    extent_front = max(b, c) * 1.1
    gap = float(rng.uniform(12, 24))
    centre = np.array([float(rng.uniform(15, 32)), -torso.cavity[1] + extent_front + gap, 0.0])
    return Heart(
        centre=centre,
        e1=e1,
        e2=e2,
        e3=e3,
        a=a,
        b=b,
        c=c,
        taper=float(rng.uniform(0.12, 0.3)),
        base_taper=float(rng.uniform(0.1, 0.3)),
        bulge=float(rng.uniform(0.0, 0.12)),
        bulge_phi=float(rng.uniform(0.5, 2.0)),
        fat_mm=float(rng.uniform(1.5, 4.0)) + (2.0 if torso.size == "large" else 0.0),
        groove_fat_mm=float(rng.uniform(4.0, 8.0)),
        pad_mm=float(rng.uniform(0.0, 12.0)),
        t_av=float(rng.uniform(-0.42, -0.28)),
        av_tilt=float(rng.uniform(-0.06, 0.06)),
        phi_iv=math.radians(float(rng.uniform(12, 38))),
        phi_piv=math.radians(float(rng.uniform(-165, -140))),
    )


def sample_vessels(rng: np.random.Generator, torso: Torso, heart: Heart) -> GreatVessels:
    h = heart
    # the root bulges from the anterior-superior base, the pulmonary trunk to its left
    t_root = float(rng.uniform(-0.75, -0.6))
    phi_root = math.radians(float(rng.uniform(-10, 15)))
    sinus_r = float(rng.uniform(14, 18))
    surface = h.surface(t_root, phi_root)[0]
    on_axis = h.centre + t_root * h.a * h.e1
    root = surface + (0.7 * sinus_r) * unit(on_axis - surface)
    up = np.array([0.0, 0.0, 1.0])
    axis = unit(0.85 * up - 0.35 * h.e1 + rng.normal(0, 0.08, 3))
    aorta_r = float(rng.uniform(13, 18))
    descending_r = float(rng.uniform(10, 14))
    dx = 0.6 * torso.vertebra_r_mm + descending_r + float(rng.uniform(0, 6))
    dy = torso.vertebra_y_mm - 0.5 * torso.vertebra_r_mm - 0.3 * descending_r
    descending = (np.array([dx + 4.0, dy, -200.0]), np.array([dx - 4.0, dy - 3.0, 200.0]))
    phi_pa = phi_root + math.radians(float(rng.uniform(35, 50)))
    pa_start = h.surface(t_root + 0.15, phi_pa, -0.5 * sinus_r)[0]
    pa_end = pa_start + float(rng.uniform(45, 60)) * unit(np.array([0.35, 0.45, 0.8]))
    svc_bottom = root + np.array([-26.0 - aorta_r * 0.4, 10.0, 6.0]) + rng.normal(0, 3, 3)
    return GreatVessels(
        root=root,
        root_axis=axis,
        annulus_r_mm=float(rng.uniform(10, 13)),
        sinus_r_mm=sinus_r,
        aorta_r_mm=aorta_r,
        aorta_top=root + 220.0 * unit(axis + np.array([0.0, 0.1, 0.6])),
        descending=descending,
        descending_r_mm=descending_r,
        pulmonary=(pa_start, pa_end),
        pulmonary_r_mm=float(rng.uniform(11, 15)),
        svc=(svc_bottom, svc_bottom + np.array([2.0, 6.0, 200.0])),
        svc_r_mm=float(rng.uniform(8, 11)),
    )


def sample_anatomy(rng: np.random.Generator, size: str, sternotomy: bool) -> Anatomy:
    """A torso of ``size``, its heart and great vessels."""
    torso = sample_torso(rng, size, sternotomy)
    heart = sample_heart(rng, torso)
    # the heart rests on the left dome; the right dome (liver) rides higher
    t = np.linspace(-1, 1, 41)
    ring = heart.surface(np.repeat(t, 24), np.tile(np.linspace(-np.pi, np.pi, 24), 41))
    low = float(ring[:, 2].min())
    right, left = torso.domes
    torso = replace(
        torso,
        domes=(
            (*right[:2], low + float(rng.uniform(12, 28)), right[3]),
            (*left[:2], low + float(rng.uniform(-2, 6)), left[3]),
        ),
    )
    return Anatomy(torso, heart, sample_vessels(rng, torso, heart))
