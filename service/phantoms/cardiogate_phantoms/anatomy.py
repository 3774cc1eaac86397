"""Seeded chest anatomy for the synthetic cardiac CT phantom.

Geometry is in patient LPS millimetres (x to the patient's left, y posterior,
z cranial) with the body axis at x = y = 0, so structures keep their real size
whatever the matrix and pixel spacing.  :func:`draw_anatomy` draws body wall,
lungs, liver dome, heart (pericardial fat, myocardium, four blood pools), aorta
(root, ascending, arch, descending), spine, ribs with costal cartilage,
sternum, pulmonary trunk and superior vena cava; :mod:`.renderer` rasterises it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._raster import F64, Ellipsoid, Tube

AIR_HU, FAT_HU, MUSCLE_HU, LUNG_HU = -1000.0, -100.0, 45.0, -850.0
MEDIASTINUM_HU, ABDOMEN_HU, LIVER_HU, CSF_HU, DISC_HU = -70.0, 35.0, 58.0, 12.0, 85.0
BLOOD_HU = 40.0


def _unit(v: F64) -> F64:
    out: F64 = v / np.linalg.norm(v)
    return out


@dataclass(frozen=True, eq=False)
class Heart:
    """Heart ellipsoid with its long-axis frame.

    ``frame`` rows are the long axis (base to apex), the anterior direction and
    the patient-left direction, all perpendicular; ``semi`` the matching semi-axes.
    ``t_av`` is the normalised long-axis position of the atrioventricular groove
    and ``phi_lad`` the angle (from anterior towards left) of the anterior
    interventricular groove.
    """

    centre: F64
    frame: F64
    semi: F64
    fat_mm: float
    t_av: float
    phi_lad: float

    def surface(self, t: F64, phi: F64, lift: F64 | float = 0.0) -> F64:
        """Points ``(n, 3)`` on the heart surface raised by *lift* mm."""
        t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
        lift_a = np.asarray(lift, dtype=np.float64)
        ring = np.sqrt(1.0 - t**2)
        u, ant, left = self.frame
        al, as1, as2 = self.semi
        pts = (
            self.centre
            + np.multiply.outer(t * (al + lift_a), u)
            + np.multiply.outer(np.cos(phi) * (as1 + lift_a) * ring, ant)
            + np.multiply.outer(np.sin(phi) * (as2 + lift_a) * ring, left)
        )
        return np.atleast_2d(pts)

    def local(self, t: float, a: float, left: float) -> F64:
        """Point at normalised heart coordinates (long axis, anterior, left)."""
        out: F64 = self.centre + (np.array([t, a, left]) * self.semi) @ self.frame
        return out

    def ellipsoid(self, grow_mm: float = 0.0) -> Ellipsoid:
        """The heart (myocardial) ellipsoid, optionally grown by *grow_mm*."""
        return Ellipsoid(self.centre, self.frame, self.semi + grow_mm)


@dataclass(frozen=True, eq=False)
class Anatomy:
    """Seeded chest geometry and tissue values (see module docstring)."""

    body_semi: tuple[float, float]
    fat_mm: float
    muscle_mm: float
    cavity_semi: tuple[float, float]
    lung_centres: tuple[tuple[float, float], tuple[float, float]]
    lung_semi: tuple[float, float]
    lung_z: tuple[float, float]
    diaphragm_z: float
    liver: Ellipsoid
    heart: Heart
    chambers: tuple[tuple[Ellipsoid, float], ...]
    myocardium_hu: float
    blood_hu: float
    aorta: Tube
    great_vessels: tuple[Tube, ...]
    aortic_root: F64
    aortic_root_radius_mm: float
    lm_ostium: F64
    rca_ostium: F64
    bifurcation: F64
    spine: dict[str, float]
    sternum: dict[str, float]
    bones: tuple[Tube, ...]
    contrast: bool
    summary: dict[str, Any] = field(default_factory=dict)


def _heart(rng: np.random.Generator, s: float, z_mid: float, cav_b: float) -> Heart:
    sh = s * float(rng.uniform(0.92, 1.08))
    semi = np.array([rng.uniform(50, 60), rng.uniform(40, 47), rng.uniform(36, 43)]) * sh
    az, el = np.radians(rng.uniform(35, 55)), np.radians(rng.uniform(18, 38))
    u = np.array([np.cos(el) * np.cos(az), -np.cos(el) * np.sin(az), -np.sin(el)])
    ant = _unit(np.array([0.0, -1.0, 0.0]) - (-u[1]) * u)
    left = np.array([1.0, 0.0, 0.0])
    left = _unit(left - (left @ u) * u - (left @ ant) * ant)
    frame = np.stack([u, ant, left])
    fat = float(rng.uniform(2.0, 6.0))
    ext = Ellipsoid(np.zeros(3), frame, semi + fat).extent()
    centre = np.array(
        [
            rng.uniform(18, 34) * s,
            -cav_b + ext[1] + rng.uniform(8, 18),
            z_mid + rng.uniform(-10, 10),
        ]
    )
    return Heart(
        centre=centre,
        frame=frame,
        semi=semi,
        fat_mm=fat,
        t_av=float(rng.uniform(-0.5, -0.38)),
        phi_lad=float(np.radians(rng.uniform(10, 30))),
    )


def _chambers(
    heart: Heart, rng: np.random.Generator, blood: float
) -> list[tuple[Ellipsoid, float]]:
    """LV, RV, LA and RA blood pools in heart-normalised coordinates."""
    specs = (
        ((0.10, -0.15, 0.25), (0.60, 0.45, 0.45)),
        ((0.00, 0.45, -0.35), (0.55, 0.33, 0.45)),
        ((-0.70, -0.45, 0.15), (0.28, 0.35, 0.40)),
        ((-0.60, 0.00, -0.55), (0.33, 0.33, 0.33)),
    )
    out = []
    for centre, semi in specs:
        jitter = rng.uniform(0.93, 1.07, size=3)
        e = Ellipsoid(heart.local(*centre), heart.frame, np.array(semi) * heart.semi * jitter)
        out.append((e, blood + float(rng.uniform(-4, 4))))
    return out


def _bezier(p: list[F64], n: int) -> F64:
    """Cubic Bezier through control points *p* sampled at *n* points."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    out: F64 = (
        (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]
    )
    return out


def _aorta(
    rng: np.random.Generator, root: F64, r_root: float, desc_xy: tuple[float, float], z_end: float
) -> tuple[F64, F64]:
    """Centreline and radii of root, ascending aorta, arch and descending aorta."""
    top = root + np.array([rng.uniform(-12, -4), rng.uniform(-10, 0), rng.uniform(55, 80)])
    up = np.array([0.0, 0.0, 1.0])
    asc = _bezier([root, root + 25 * _unit(top - root), top - 20 * up, top], 24)
    d_top = np.array([desc_xy[0], desc_xy[1], top[2] - rng.uniform(5, 15)])
    mid, half = (top + d_top) / 2, (top - d_top) / 2
    th = np.linspace(0.0, np.pi, 25)[1:, None]
    arch = mid + np.cos(th) * half + np.sin(th) * rng.uniform(15, 25) * up
    zd = np.arange(d_top[2] - 10.0, z_end - 10.0, -10.0)
    drift = 10.0 * np.clip((d_top[2] - zd) / 300.0, 0, 1)
    desc = np.stack([desc_xy[0] - drift, np.full_like(zd, desc_xy[1]), zd], axis=1)
    pts = np.concatenate([asc, arch, desc])
    r_desc = float(rng.uniform(10, 13))
    radii = np.concatenate(
        [
            np.linspace(r_root, 0.92 * r_root, len(asc)),
            np.linspace(0.92 * r_root, 0.85 * r_root, len(arch)),
            np.linspace(r_desc, 0.85 * r_desc, len(desc)),
        ]
    )
    return pts, radii


def _veins_and_pa(rng: np.random.Generator, root: F64, s: float) -> list[tuple[F64, F64]]:
    """Pulmonary trunk with both branches and the superior vena cava (centrelines, radii)."""
    j = rng.uniform(-4, 4, size=(4, 3))
    start, bif = root + np.array([28.0, -15, -5]) + j[0], root + np.array([25.0, 20, 40]) + j[1]
    r_pa = float(rng.uniform(11, 14)) * s
    trunk = _bezier([start, start + np.array([0.0, -2, 18]), bif - np.array([0.0, 10, 8]), bif], 12)
    lpa = _bezier(
        [
            bif,
            bif + np.array([15.0, 8, 4]),
            bif + np.array([32.0, 16, 4]),
            bif + np.array([50.0, 22, 0]) + j[2],
        ],
        10,
    )
    rpa = _bezier(
        [
            bif,
            bif + np.array([-20.0, 6, 0]),
            bif + np.array([-40.0, 8, -2]),
            bif + np.array([-65.0, 10, -4]) + j[3],
        ],
        12,
    )
    svc_x, svc_y = root[0] - float(rng.uniform(28, 34)) * s, root[1] + float(rng.uniform(0, 8))
    svc = np.array([[svc_x, svc_y, root[2] - 15], [svc_x + 2, svc_y - 2, root[2] + 250]])
    r_svc = float(rng.uniform(8, 10)) * s
    return [
        (trunk, np.full(len(trunk), r_pa)),
        (lpa, np.linspace(0.8 * r_pa, 0.55 * r_pa, len(lpa))),
        (rpa, np.linspace(0.8 * r_pa, 0.55 * r_pa, len(rpa))),
        (svc, np.full(2, r_svc)),
    ]


def _ribs(
    rng: np.random.Generator, cav: tuple[float, float], z0: float, st: dict[str, float], s: float
) -> list[Tube]:
    """Twelve ribs a side along the cavity wall, with costal cartilage on the true ribs."""
    tubes: list[Tube] = []
    cortex, marrow = float(rng.uniform(600, 900)), float(rng.uniform(150, 250))
    cart = float(rng.uniform(60, 120))
    spacing, drop0 = float(rng.uniform(22, 28)) * s, float(rng.uniform(45, 70)) * s
    for side in (-1.0, 1.0):
        for k in range(12):
            rr = float(rng.uniform(4.0, 5.5)) * s
            a_end = 2.5 if k < 7 else 2.2 if k < 10 else 1.5 + float(rng.uniform(0, 0.3))
            ea, eb = cav[0] + rr, cav[1] + rr
            alpha = np.linspace(0.22, a_end, max(8, int((a_end - 0.22) * (ea + eb) / 8)))
            zp = z0 - k * spacing + float(rng.uniform(-3, 3))
            drop = drop0 + 2.0 * k
            z = zp - drop * (alpha / np.pi) ** 1.3
            pts = np.stack([side * ea * np.sin(alpha), eb * np.cos(alpha), z], axis=1)
            tubes.append(
                Tube(pts, np.full(len(pts), rr), ((1.0, 0.0, cortex), (0.55, 0.0, marrow)))
            )
            if k < 7:
                a_st = np.pi - np.arcsin(min(0.95, st["semi_x"] / ea))
                ac = np.linspace(a_end, a_st, 8)
                zs = np.linspace(z[-1], np.clip(z[-1] - 8, st["z_lo"] + 5, st["z_hi"] - 5), 8)
                pc = np.stack([side * ea * np.sin(ac), eb * np.cos(ac), zs], axis=1)
                tubes.append(Tube(pc, np.full(8, 0.8 * rr), ((1.0, 0.0, cart),)))
    return tubes


def draw_anatomy(
    rng: np.random.Generator, z_mid: float, z_lo: float, contrast: bool = False
) -> Anatomy:
    """Draw a seeded chest.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of all randomness.
    z_mid : float
        z (mm) the heart is centred near.
    z_lo : float
        Lowest slice z; the descending aorta is extended below it.
    contrast : bool
        Opacified blood (CTA) instead of unenhanced blood.

    Returns
    -------
    Anatomy
    """
    s = float(rng.uniform(0.88, 1.12))
    body = (160 * s * float(rng.uniform(0.94, 1.06)), 112 * s * float(rng.uniform(0.94, 1.06)))
    fat, muscle = float(rng.uniform(6, 24)), float(rng.uniform(8, 14))
    cav = (body[0] - fat - muscle, body[1] - fat - muscle)
    heart = _heart(rng, s, z_mid, cav[1])
    blood = float(rng.uniform(300, 450)) if contrast else BLOOD_HU + float(rng.uniform(-5, 5))
    myo = float(rng.uniform(100, 140)) if contrast else MUSCLE_HU + float(rng.uniform(-5, 5))
    hz = float(heart.centre[2])
    lung_z = (hz + float(rng.uniform(30, 50)), float(rng.uniform(130, 160)) * s)
    dia = hz - float(rng.uniform(35, 50))
    liver = Ellipsoid(
        np.array([-35 * s, 15.0, dia - 70]), np.eye(3), np.array([100 * s, 85 * s, 90.0])
    )
    # aortic root placed so that the left main is 7-14 mm long
    r_root = float(rng.uniform(14, 17)) * s
    bif = heart.surface(
        np.array([heart.t_av]), np.array([heart.phi_lad + np.radians(rng.uniform(20, 35))]), 2.3
    )[0]
    base = heart.local(-0.75, 0.15, -0.05)
    root = bif + _unit(base - bif) * (float(rng.uniform(7, 14)) + r_root)
    lm_ostium = root + r_root * _unit(bif - root)
    rca_groove = heart.surface(np.array([heart.t_av]), np.array([np.radians(-40.0)]), 2.3)[0]
    to_rca = rca_groove - root
    to_rca[2] = 0.0
    rca_ostium = root + r_root * _unit(to_rca) + np.array([0.0, 0.0, float(rng.uniform(0, 6))])
    r_v = float(rng.uniform(15, 20)) * s
    y_v = cav[1] - 0.6 * r_v
    y_canal = y_v + r_v + 7.0
    spine = {
        "y": y_v,
        "radius": r_v,
        "cortex_hu": float(rng.uniform(500, 900)),
        "cancellous_hu": float(rng.uniform(160, 280)),
        "period": float(rng.uniform(26, 31)) * s,
        "phase": float(rng.uniform(0, 30)),
        "y_canal": y_canal,
        "spinous_len": float(max(5.0, min(25.0, body[1] - fat - y_canal - 10))),
    }
    r_desc_max = 13.0
    desc_xy = (r_v * 1.15 + r_desc_max + 2.0, y_v - 0.5 * r_v)
    aorta_pts, aorta_r = _aorta(rng, root, r_root, desc_xy, z_lo - 40.0)
    wall_hu = myo if contrast else MUSCLE_HU
    layers = ((1.0, 0.0, wall_hu), (1.0, -2.0, blood))
    aorta = Tube(aorta_pts, aorta_r, layers)
    sheath = (1.0, 3.0, MEDIASTINUM_HU)
    great = [Tube(aorta_pts, aorta_r, (sheath, *layers))]
    great += [Tube(p, r, (sheath, (1.0, 0.0, blood))) for p, r in _veins_and_pa(rng, root, s)]
    sternum = {
        "y": -cav[1] - 4.0,
        "semi_x": float(rng.uniform(12, 16)),
        "semi_y": float(rng.uniform(5, 7)),
        "z_lo": hz - float(rng.uniform(60, 80)),
        "z_hi": hz + float(rng.uniform(90, 130)),
        "cortex_hu": float(rng.uniform(400, 700)),
        "marrow_hu": float(rng.uniform(150, 250)),
    }
    bones = _ribs(rng, cav, hz + float(rng.uniform(120, 150)), sternum, s)
    summary = {
        "body_semi_axes_mm": list(body),
        "heart_center_mm": heart.centre.tolist(),
        "heart_semi_axes_mm": heart.semi.tolist(),
        "heart_long_axis": heart.frame[0].tolist(),
        "aortic_root_mm": root.tolist(),
        "aortic_root_radius_mm": r_root,
        "descending_aorta_xy_mm": list(desc_xy),
        "spine_center_xy_mm": [0.0, y_v],
        "blood_hu": blood,
        "myocardium_hu": myo,
    }
    return Anatomy(
        body_semi=body,
        fat_mm=fat,
        muscle_mm=muscle,
        cavity_semi=cav,
        lung_centres=((-0.5 * cav[0], 0.05 * cav[1]), (0.5 * cav[0], 0.05 * cav[1])),
        lung_semi=(0.47 * cav[0], 0.9 * cav[1]),
        lung_z=lung_z,
        diaphragm_z=dia,
        liver=liver,
        heart=heart,
        chambers=tuple(_chambers(heart, rng, blood)),
        myocardium_hu=myo,
        blood_hu=blood,
        aorta=aorta,
        great_vessels=tuple(great),
        aortic_root=root,
        aortic_root_radius_mm=r_root,
        lm_ostium=lm_ostium,
        rca_ostium=rca_ostium,
        bifurcation=bif,
        spine=spine,
        sternum=sternum,
        bones=tuple(bones),
        contrast=contrast,
        summary=summary,
    )
