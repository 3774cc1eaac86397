"""Family B coronary tree and calcified plaques.

Arteries are centripetal Catmull-Rom splines through points of the epicardial surface
(``Heart.surface``, lifted into the epicardial fat): the left main runs straight from the
left coronary ostium on the aortic sinus for 2-15 mm to the bifurcation; the LAD then
reaches the anterior interventricular groove and follows it towards the apex; the LCX and
the RCA follow the atrioventricular groove to the left and right, how far depending on the
dominance (the posterior descending artery belongs to the RCA, or to the LCX in left
dominance).  Diagonal, obtuse and acute marginal branches carry their parent's label.
Each centreline point carries its label (1 LM, 2 LAD, 3 LCX, 4 RCA), so a plaque that
crosses the bifurcation is labelled on either side of it.

A plaque is a union of balls on the vessel wall: a spot, a streak along the wall, a ring
around it or a bulky cluster; its balls take the label of the centreline point they sit on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .ct_anatomy import GreatVessels, Heart, unit

F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]
ARTERIES = ("LM", "LAD", "LCX", "RCA")  # labels 1..4; 0 is not coronary
STEP_MM = 0.5
BURDENS = ("zero", "minimal", "mild", "moderate", "severe")
_BURDEN_P = (0.2, 0.17, 0.23, 0.2, 0.2)
# plaque count, shape weights (spot, streak, ring, bulky), size scale, density range
_BURDEN = {
    "minimal": ((1, 2), (1.0, 0.0, 0.0, 0.0), 1.0, (300, 700)),
    "mild": ((2, 4), (0.6, 0.3, 0.1, 0.0), 1.0, (250, 850)),
    "moderate": ((3, 7), (0.35, 0.35, 0.15, 0.15), 1.0, (300, 1000)),
    "severe": ((6, 10), (0.1, 0.35, 0.2, 0.35), 1.3, (350, 1100)),
}
_SHAPES = ("spot", "streak", "ring", "bulky")
_ARTERY_P = {"LM": 0.13, "LAD": 0.39, "LCX": 0.2, "RCA": 0.28}


def smooth_path(ctrl: F64, step: float, before: F64 | None = None) -> F64:
    """Points every ``step`` mm along the centripetal Catmull-Rom spline through ``ctrl``
    (m, 3); ``before`` is a point ahead of the first, which sets the starting direction."""
    head = before if before is not None else 2 * ctrl[0] - ctrl[1]
    p = np.vstack([head, ctrl, 2 * ctrl[-1] - ctrl[-2]])
    pieces = []
    u = np.linspace(0.0, 1.0, 24, endpoint=False)[:, None]
    for i in range(len(ctrl) - 1):
        p0, p1, p2, p3 = p[i : i + 4]
        t1 = math.sqrt(float(np.linalg.norm(p1 - p0))) + 1e-6
        t2 = t1 + math.sqrt(float(np.linalg.norm(p2 - p1))) + 1e-6
        t3 = t2 + math.sqrt(float(np.linalg.norm(p3 - p2))) + 1e-6
        t = t1 + u * (t2 - t1)
        a1 = (t1 - t) / t1 * p0 + t / t1 * p1
        a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
        a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
        b1 = (t2 - t) / t2 * a1 + t / t2 * a2
        b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
        pieces.append((t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2)
    dense = np.vstack([*pieces, ctrl[-1:]])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
    at = np.arange(0.0, arc[-1], step)
    return np.stack([np.interp(at, arc, dense[:, k]) for k in range(3)], axis=1)


@dataclass(frozen=True)
class Vessel:
    """A centreline every ``STEP_MM`` with its lumen radius and label per point."""

    name: str
    points: F64
    radius: F64
    labels: U8


@dataclass(frozen=True)
class CoronaryTree:
    vessels: tuple[Vessel, ...]  # LM-LAD, LM-LCX, RCA, then branches
    lm_length_mm: float
    dominance: str
    ostia: tuple[F64, F64]  # left, right

    def vessel(self, name: str) -> Vessel:
        return next(v for v in self.vessels if v.name == name)

    def as_dict(self) -> dict[str, Any]:
        z = np.concatenate([v.points[:, 2] for v in self.vessels])
        return {
            "z_extent_mm": [round(float(z.min()), 2), round(float(z.max()), 2)],
            "lm_length_mm": round(self.lm_length_mm, 2),
            "dominance": self.dominance,
            "vessels": {v.name: round(len(v.points) * STEP_MM, 1) for v in self.vessels},
            "ostia_mm": [[round(float(x), 1) for x in o] for o in self.ostia],
        }


def _surface(heart: Heart, t: float, phi: float, lift: float) -> F64:
    return np.asarray(heart.surface(t, phi, lift)[0], np.float64)


def _vessel(name: str, points: F64, r0: float, r1: float, label: int) -> Vessel:
    radius = np.linspace(r0, r1, len(points))
    return Vessel(name, points, radius, np.full(len(points), label, dtype=np.uint8))


def _join(name: str, first: Vessel, second: Vessel) -> Vessel:
    return Vessel(
        name,
        np.vstack([first.points, second.points[1:]]),
        np.concatenate([first.radius, second.radius[1:]]),
        np.concatenate([first.labels, second.labels[1:]]),
    )


def _groove(heart: Heart, phis: F64, lift: float, down: float = 0.0) -> list[F64]:
    return [_surface(heart, float(heart.t_groove(p)) + down, float(p), lift) for p in phis]


def sample_tree(rng: np.random.Generator, heart: Heart, vessels: GreatVessels) -> CoronaryTree:
    """Seeded ostia, left main, LAD, LCX, RCA and a few branches on ``heart``."""
    h, axis = heart, vessels.root_axis

    def across(d: F64) -> F64:
        return unit(d - float(d @ axis) * axis)

    n_left = across(h.e3 + float(rng.uniform(-0.4, 0.2)) * h.e2)
    n_right = across(h.e2 - float(rng.uniform(0.2, 0.6)) * h.e3)
    left = vessels.root + float(rng.uniform(8, 14)) * axis + vessels.sinus_r_mm * n_left
    right = vessels.root + float(rng.uniform(8, 14)) * axis + vessels.sinus_r_mm * n_right
    dominance = str(rng.choice(["right", "co", "left"], p=[0.8, 0.1, 0.1]))
    lift = float(rng.uniform(0.6, 1.5))

    lm_len = float(rng.uniform(2.0, 15.0))
    phi_b = math.radians(float(rng.uniform(45, 75)))
    nominal = _surface(h, float(h.t_groove(phi_b)), phi_b, 2.0 + lift)
    bif = left + lm_len * unit(nominal - left)
    r_lm = float(rng.uniform(2.0, 2.6))
    lm = _vessel("LM", np.linspace(left, bif, max(int(lm_len / STEP_MM), 2) + 1), r_lm, r_lm, 1)

    iv = h.phi_iv + rng.normal(0, 0.06, 5)
    t_mid = float(h.t_groove(h.phi_iv))
    lad_ctrl = [
        bif,
        _surface(h, t_mid + 0.03, 0.5 * (phi_b + h.phi_iv), 1.8 + lift),
        _surface(h, t_mid + 0.18, float(iv[0]), 1.8 + lift),
        *(
            _surface(h, t, float(p), 1.6 + lift)
            for t, p in zip((0.05, 0.35, 0.65), iv[1:4], strict=True)
        ),
        _surface(h, float(rng.uniform(0.84, 0.95)), float(iv[4]), 1.2 + lift),
    ]
    lad = _vessel("LAD", smooth_path(np.array(lad_ctrl), STEP_MM, before=left), 1.9, 0.9, 2)

    lcx_end = math.radians(
        {"right": rng.uniform(115, 160), "co": rng.uniform(170, 195), "left": 180.0}[dominance]
    )
    phis = np.linspace(phi_b + 0.3, lcx_end, max(int((lcx_end - phi_b) / 0.35), 2))
    lcx_ctrl = [bif, *_groove(h, phis, 1.8 + lift)]
    if dominance == "left":
        crux = h.phi_piv + 2 * math.pi
        lcx_ctrl += _groove(h, np.array([crux - 0.15]), 1.8 + lift)
        lcx_ctrl += [_surface(h, t, crux, 1.5 + lift) for t in (h.t_av + 0.2, 0.25, 0.55)]
    r_lcx = float(rng.uniform(1.5, 1.9))
    lcx = _vessel("LCX", smooth_path(np.array(lcx_ctrl), STEP_MM, before=left), r_lcx, 0.9, 3)

    rca_end = {"right": h.phi_piv, "co": h.phi_piv + 0.1, "left": math.radians(-95)}[dominance]
    phis = np.linspace(-0.45, rca_end, max(int((0.45 + abs(rca_end)) / 0.35), 2))
    rca_ctrl = [right, _surface(h, float(h.t_groove(-0.2)) - 0.06, -0.2, 2.5 + lift)]
    rca_ctrl += _groove(h, phis, 1.8 + lift)
    if dominance == "right":
        rca_ctrl += [_surface(h, t, h.phi_piv, 1.5 + lift) for t in (h.t_av + 0.2, 0.25, 0.55)]
    r_rca = float(rng.uniform(1.3, 1.7) if dominance == "left" else rng.uniform(1.7, 2.3))
    rca = _vessel("RCA", smooth_path(np.array(rca_ctrl), STEP_MM), r_rca, 0.9, 4)

    mains = (_join("LM-LAD", lm, lad), _join("LM-LCX", lm, lcx), rca)
    branches = _branches(rng, h, mains, lift, len(lm.points))
    return CoronaryTree((*mains, *branches), len(lm.points) * STEP_MM, dominance, (left, right))


def _branches(
    rng: np.random.Generator, h: Heart, mains: tuple[Vessel, ...], lift: float, skip: int
) -> list[Vessel]:
    """Diagonals off the LAD, obtuse marginals off the LCX, an acute marginal off the RCA."""
    plan = [
        ("D", mains[0], 0.55, int(rng.integers(1, 3))),
        ("OM", mains[1], 0.05, int(rng.integers(1, 3))),
        ("AM", mains[2], -0.05, int(rng.integers(0, 2))),
    ]
    out = []
    for prefix, parent, turn, count in plan:
        for k in range(count):
            at = int(rng.integers(skip + 16, max(len(parent.points) * 2 // 3, skip + 17)))
            start = parent.points[min(at, len(parent.points) - 1)]
            u, v, w = h.local(start)
            t0, phi0 = float(u) / h.a, math.atan2(float(w), float(v))
            dt, dphi = float(rng.uniform(0.35, 0.6)), turn + float(rng.normal(0, 0.12))
            ctrl = np.array(
                [
                    start,
                    _surface(h, t0 + 0.25 * dt, phi0 + 0.4 * dphi, 1.2 + lift),
                    _surface(h, min(t0 + dt, 0.93), phi0 + dphi, 1.0 + lift),
                ]
            )
            label = int(parent.labels[min(at, len(parent.points) - 1)])
            r0 = float(min(parent.radius[min(at, len(parent.points) - 1)] * 0.7, 1.3))
            out.append(_vessel(f"{prefix}{k + 1}", smooth_path(ctrl, STEP_MM), r0, 0.7, label))
    return out


@dataclass(frozen=True)
class Plaque:
    """A calcified plaque: balls (centres mm, radii) with a label each, one density."""

    artery: str
    shape: str
    centres: F64
    radii: F64
    labels: U8
    density_hu: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "artery": self.artery,
            "shape": self.shape,
            "centre_mm": [round(float(v), 2) for v in self.centres.mean(axis=0)],
            "extent_mm": round(float(np.ptp(self.centres, axis=0).max() + 2 * self.radii.max()), 2),
            "density_hu": round(self.density_hu, 1),
            "labels": sorted({ARTERIES[int(k) - 1] for k in self.labels}),
        }


def _frame(vessel: Vessel, i: int) -> tuple[F64, F64, F64]:
    """Tangent and two normals of a centreline at point ``i``."""
    pts = vessel.points
    tangent = unit(pts[min(i + 1, len(pts) - 1)] - pts[max(i - 1, 0)])
    ref = np.array([0.0, 0.0, 1.0]) if abs(tangent[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    n1 = unit(np.cross(tangent, ref))
    return tangent, n1, np.cross(tangent, n1)


def _wall(vessel: Vessel, i: int, psi: float, radius: float, n: tuple[F64, F64]) -> F64:
    centre, r_lumen = vessel.points[i], float(vessel.radius[i])
    return np.asarray(
        centre + (r_lumen + 0.3 * radius) * (math.cos(psi) * n[0] + math.sin(psi) * n[1])
    )


def _plaque(
    rng: np.random.Generator,
    vessel: Vessel,
    i0: int,
    artery: str,
    shape: str,
    scale: float,
    density: float,
) -> Plaque:
    _, n1, n2 = _frame(vessel, i0)
    last = len(vessel.points) - 1
    psi = float(rng.uniform(0, 2 * math.pi))
    balls: list[tuple[F64, float, int]] = []

    def put(i: int, angle: float, radius: float) -> None:
        i = min(max(i, 0), last)
        balls.append((_wall(vessel, i, angle, radius, (n1, n2)), radius, int(vessel.labels[i])))

    if shape == "spot":
        r = float(rng.uniform(0.6, 1.2)) * scale
        put(i0, psi, r)
        for _ in range(int(rng.integers(0, 3))):
            put(
                i0 + int(rng.integers(-2, 3)),
                psi + float(rng.normal(0, 0.4)),
                r * float(rng.uniform(0.6, 1.0)),
            )
    elif shape in ("streak", "bulky"):
        bulky = shape == "bulky"
        length = float(rng.uniform(3, 9) if bulky else rng.uniform(3, 12)) * scale
        r_max = float(rng.uniform(1.1, 1.9) if bulky else rng.uniform(0.55, 1.1)) * scale
        arc = float(rng.uniform(0.8, 2.0)) if bulky else 0.0
        steps = max(int(length / STEP_MM), 2)
        for k in range(steps):
            frac = (k + 0.5) / steps
            r = max(r_max * math.sin(math.pi * frac) ** 0.5, 0.35)
            drift = psi + 0.15 * math.sin(3 * frac)
            for off in np.linspace(-arc / 2, arc / 2, 3 if bulky else 1):
                put(i0 + k, drift + float(off), r)
    else:  # ring
        arc = float(rng.uniform(2.2, 2 * math.pi))
        r = float(rng.uniform(0.4, 0.75)) * scale
        width = max(int(float(rng.uniform(0.8, 3.0)) / STEP_MM), 1)
        r_lumen = float(vessel.radius[i0])
        count = max(int(arc * r_lumen / 0.45), 3)
        for k in range(width):
            for angle in psi + np.linspace(0, arc, count):
                put(i0 + k, float(angle), r)
    centres = np.array([b[0] for b in balls])
    return Plaque(
        artery,
        shape,
        centres,
        np.array([b[1] for b in balls]),
        np.array([b[2] for b in balls], dtype=np.uint8),
        density,
    )


def sample_plaques(rng: np.random.Generator, tree: CoronaryTree, burden: str) -> list[Plaque]:
    """Plaques for a calcium ``burden`` (one of :data:`BURDENS`), mostly proximal."""
    if burden == "zero":
        return []
    counts, shape_p, scale, densities = _BURDEN[burden]
    lm_points = round(tree.lm_length_mm / STEP_MM)
    out = []
    for _ in range(int(rng.integers(counts[0], counts[1] + 1))):
        artery = str(rng.choice(list(_ARTERY_P), p=list(_ARTERY_P.values())))
        if artery == "LM":
            vessel = tree.vessel(str(rng.choice(["LM-LAD", "LM-LCX"])))
            lo, hi = 0, lm_points
        elif artery == "RCA":
            vessel = tree.vessel("RCA")
            lo, hi = 6, len(vessel.points) - 4
        else:
            vessel = tree.vessel("LM-LAD" if artery == "LAD" else "LM-LCX")
            lo, hi = lm_points + 1, len(vessel.points) - 4
        i0 = lo + int(float(rng.beta(1.2, 2.8)) * max(hi - lo, 1))
        shape = str(rng.choice(_SHAPES, p=shape_p))
        density = float(rng.uniform(*densities))
        out.append(_plaque(rng, vessel, i0, artery, shape, scale, density))
    return out


def sample_burden(rng: np.random.Generator) -> str:
    return str(rng.choice(BURDENS, p=_BURDEN_P))
