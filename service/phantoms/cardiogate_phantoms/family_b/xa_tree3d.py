"""Family B's coronary trees: 3D centrelines on the epicardium with tapering lumens.

The left coronary artery (LCA) has the left main (LM) splitting into the LAD, down the
anterior interventricular groove to the apex, and the LCX, round the left AV groove; the LAD
gives diagonals (D1-D3) over the left ventricle and septal perforators (S1, S2) into the
septum, the LCX obtuse marginals (OM1-OM3) down the lateral wall.  The right coronary artery
(RCA) runs round the right AV groove to the crux, giving the conus branch (CB), acute
marginals (AM1, AM2) and the posterior descending artery (PDA).  Each centreline is a
monotone cubic through seeded control points in surface coordinates (see
:mod:`.xa_heart`), with seeded take-offs and tortuosity, resampled every ``STEP_MM``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

from .xa_heart import F64, Heart

STEP_MM = 0.4
LCA_VESSELS = ("LM", "LAD", "LCX", "D1", "D2", "D3", "S1", "S2", "OM1", "OM2", "OM3")
RCA_VESSELS = ("RCA", "CB", "AM1", "AM2", "PDA")
VESSEL_NAMES = LCA_VESSELS + RCA_VESSELS

# proximal and distal lumen diameters (mm) before the patient's own scale
_DIAMETERS = {
    "LM": (4.6, 4.0),
    "LAD": (3.7, 1.4),
    "LCX": (3.4, 1.6),
    "D1": (2.4, 1.1),
    "D2": (2.1, 1.0),
    "D3": (1.8, 0.9),
    "S1": (1.7, 0.8),
    "S2": (1.4, 0.7),
    "OM1": (2.5, 1.1),
    "OM2": (2.2, 1.0),
    "OM3": (1.9, 0.9),
    "RCA": (3.9, 2.2),
    "CB": (1.5, 0.8),
    "AM1": (1.9, 0.9),
    "AM2": (1.7, 0.8),
    "PDA": (2.2, 1.0),
}
# branches that a tree has only sometimes: probability of being there
_OPTIONAL = {"D3": 0.4, "S2": 0.7, "OM3": 0.4, "AM2": 0.65}


def artery_of_vessel(name: str) -> str:
    """``"LCA"`` or ``"RCA"`` for a vessel name; ``ValueError`` for an unknown one."""
    if name in LCA_VESSELS:
        return "LCA"
    if name in RCA_VESSELS:
        return "RCA"
    raise ValueError(f"vessel must be one of {', '.join(VESSEL_NAMES)}, got {name!r}")


@dataclass(frozen=True)
class Vessel:
    """One artery: its centreline samples, lumen and place in the tree.

    Attributes
    ----------
    name, parent : str, str or None
        Vessel name and the vessel it branches from (None at the ostium).
    shc : ndarray (N, 3)
        Surface coordinates (s, phi, h) of the centreline, ``STEP_MM`` apart at rest.
    arc_mm : ndarray (N,)
        Arc length from the vessel's origin, at rest.
    origin_mm : float
        Path length from the ostium to the origin (the contrast arrives that much later).
    radius_mm : ndarray (N,)
        Reference lumen radius (no disease).
    """

    name: str
    parent: str | None
    shc: F64
    arc_mm: F64
    origin_mm: float
    radius_mm: F64

    @property
    def length_mm(self) -> float:
        """Arc length of the whole vessel at rest."""
        return float(self.arc_mm[-1])

    def shc_at(self, position: float) -> F64:
        """Surface coordinates at a fraction *position* (0-1) of the arc length."""
        at = position * self.length_mm
        return np.array([np.interp(at, self.arc_mm, self.shc[:, k]) for k in range(3)])

    def radius_at(self, position: float) -> float:
        """Reference lumen radius (mm) at a fraction *position* of the arc length."""
        return float(np.interp(position * self.length_mm, self.arc_mm, self.radius_mm))


@dataclass(frozen=True)
class _Plan:
    """Control points of one vessel before it is sampled.

    With *take_off* None the *points* are absolute (a vessel from the ostium, or the LAD and
    LCX from the end of the LM); otherwise they are relative to the take-off (the first row
    zero, ``h`` absolute), the fraction *take_off* of the parent's arc length.
    """

    name: str
    parent: str | None
    points: F64  # (K, 3) surface coordinates
    tortuosity: float  # mm
    take_off: float | None = None


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _branch(
    rng: np.random.Generator,
    name: str,
    parent: str,
    take_off: float,
    ds: float,
    dphi: float,
    depth: float = 1.0,
) -> _Plan:
    """A branch leaving *parent* at *take_off*, running *ds* towards the apex and *dphi*
    round the heart, ending at depth *depth* (fraction of the epicardial radius)."""
    bend = _u(rng, -0.15, 0.15)
    points = np.array(
        [
            [0.0, 0.0, 1.0],
            [ds * 0.45, dphi * (0.55 + bend), 1.0 - 0.55 * (1.0 - depth)],
            [ds, dphi, depth],
        ]
    )
    return _Plan(name, parent, points, _u(rng, 0.3, 1.5), take_off)


def _lca_plans(rng: np.random.Generator) -> list[_Plan]:
    phi_lad = _u(rng, 0.55, 0.85)
    bif = np.array([_u(rng, 0.0, 0.03), phi_lad, 1.0])
    ostium = np.array([-_u(rng, 0.06, 0.1), phi_lad + _u(rng, 0.05, 0.35), _u(rng, 0.72, 0.8)])
    lm = _Plan("LM", None, np.stack([ostium, (ostium + bif) / 2 + [0, 0, 0.05], bif]), 0.0)
    lad_end = _u(rng, 0.9, 0.99)
    wobble = rng.uniform(-0.12, 0.12, size=3)
    lad = _Plan(
        "LAD",
        "LM",
        np.array(
            [
                bif,
                [0.08, phi_lad + 0.02, 1.0],
                [0.35, phi_lad + wobble[0], 1.0],
                [0.65, phi_lad + wobble[1], 1.0],
                [lad_end, phi_lad + wobble[2], 1.0],
            ]
        ),
        _u(rng, 0.5, 3.0),
    )
    sweep = _u(rng, 1.5, 2.3)
    lcx = _Plan(
        "LCX",
        "LM",
        np.array(
            [
                bif,
                [_u(rng, 0.02, 0.05), phi_lad + 0.3 * sweep, 1.0],
                [_u(rng, 0.03, 0.07), phi_lad + 0.65 * sweep, 1.0],
                [_u(rng, 0.08, 0.25), phi_lad + sweep, 1.0],
            ]
        ),
        _u(rng, 0.5, 2.5),
    )
    plans = [lm, lad, lcx]
    for name, lo, hi in (("D1", 0.12, 0.28), ("D2", 0.34, 0.5), ("D3", 0.55, 0.7)):
        plans.append(
            _branch(rng, name, "LAD", _u(rng, lo, hi), _u(rng, 0.28, 0.5), _u(rng, 0.5, 0.9))
        )
    for name, lo, hi in (("S1", 0.08, 0.2), ("S2", 0.28, 0.45)):
        depth = _u(rng, 0.5, 0.65)
        plans.append(
            _branch(
                rng, name, "LAD", _u(rng, lo, hi), _u(rng, 0.2, 0.35), _u(rng, -0.1, 0.1), depth
            )
        )
    for name, lo, hi in (("OM1", 0.22, 0.4), ("OM2", 0.48, 0.65), ("OM3", 0.72, 0.86)):
        plans.append(
            _branch(rng, name, "LCX", _u(rng, lo, hi), _u(rng, 0.45, 0.7), _u(rng, -0.15, 0.25))
        )
    return plans


def _rca_plans(rng: np.random.Generator) -> list[_Plan]:
    phi_r = _u(rng, -0.3, 0.1)
    crux = _u(rng, 0.55, 0.85) - math.pi
    ostium = np.array([-_u(rng, 0.05, 0.09), phi_r, _u(rng, 0.75, 0.82)])
    rca = _Plan(
        "RCA",
        None,
        np.array(
            [
                ostium,
                [_u(rng, 0.0, 0.03), phi_r - _u(rng, 0.25, 0.4), 1.0],
                [_u(rng, 0.03, 0.06), -1.0 + _u(rng, -0.1, 0.1), 1.0],
                [_u(rng, 0.04, 0.09), -math.pi / 2 + _u(rng, -0.15, 0.15), 1.0],
                [_u(rng, 0.04, 0.08), (crux - math.pi / 2) / 2, 1.0],
                [_u(rng, 0.05, 0.08), crux, 1.0],
                [_u(rng, 0.08, 0.2), crux - _u(rng, 0.2, 0.5), 1.0],
            ]
        ),
        _u(rng, 0.5, 3.0),
    )
    cb = _branch(rng, "CB", "RCA", _u(rng, 0.03, 0.08), _u(rng, 0.1, 0.2), _u(rng, 0.4, 0.7))
    am1 = _branch(rng, "AM1", "RCA", _u(rng, 0.38, 0.48), _u(rng, 0.4, 0.6), _u(rng, -0.2, 0.15))
    am2 = _branch(rng, "AM2", "RCA", _u(rng, 0.55, 0.66), _u(rng, 0.4, 0.6), _u(rng, -0.2, 0.15))
    pda = _branch(rng, "PDA", "RCA", _u(rng, 0.84, 0.9), _u(rng, 0.5, 0.75), _u(rng, -0.1, 0.1))
    return [rca, cb, am1, am2, pda]


def build_tree(rng: np.random.Generator, artery: str, heart: Heart) -> list[Vessel]:
    """The seeded tree of *artery* (``"LCA"`` or ``"RCA"``) on *heart*, parents first."""
    plans = _lca_plans(rng) if artery == "LCA" else _rca_plans(rng)
    keep = {p.name: rng.random() < _OPTIONAL.get(p.name, 1.0) for p in plans}
    scale = _u(rng, 0.85, 1.2)
    vessels: dict[str, Vessel] = {}
    for plan in plans:
        if not keep[plan.name] or (plan.parent is not None and plan.parent not in vessels):
            continue
        points, origin = plan.points, 0.0
        if plan.parent is not None:
            parent = vessels[plan.parent]
            along = 1.0 if plan.take_off is None else plan.take_off
            origin = parent.origin_mm + along * parent.length_mm
        if plan.parent is not None and plan.take_off is not None:
            start = parent.shc_at(plan.take_off)
            points = points + [start[0], start[1], 0.0]
            points[0, 2] = start[2]
        shc, arc = _sample(rng, points, plan.tortuosity, heart)
        d0, d1 = _DIAMETERS[plan.name]
        d0 *= scale * _u(rng, 0.9, 1.1)
        d1 *= scale * _u(rng, 0.85, 1.15)
        frac = arc / arc[-1]
        ripple = 1 + 0.04 * np.sin(2 * math.pi * _u(rng, 1.0, 4.0) * frac + _u(rng, 0, 6.3))
        radius = 0.5 * d0 * (d1 / d0) ** frac * ripple
        vessels[plan.name] = Vessel(plan.name, plan.parent, shc, arc, origin, radius)
    return list(vessels.values())


def _sample(rng: np.random.Generator, pts: F64, tortuosity: float, heart: Heart) -> tuple[F64, F64]:
    """Centreline samples ``STEP_MM`` apart at rest and their arc lengths."""
    knots = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    knots /= knots[-1]
    dense_t = np.linspace(0.0, 1.0, 800)
    shc = np.stack([PchipInterpolator(knots, pts[:, k])(dense_t) for k in range(3)], axis=1)
    # tortuosity: a sideways wave (in phi) that is zero at the origin
    steps = np.diff(pts, axis=0) * [heart.length_mm, heart.radius_mm, heart.radius_mm]
    cycles = float(np.linalg.norm(steps, axis=1).sum()) / _u(rng, 15.0, 40.0)
    wave = np.sin(2 * math.pi * cycles * dense_t + _u(rng, 0, 6.3))
    wave *= np.minimum(dense_t * 8.0, 1.0)
    shc[:, 1] += tortuosity / heart.radius_mm * wave
    xyz = heart.to_patient(shc)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xyz, axis=0), axis=1))])
    n = max(2, int(arc[-1] / STEP_MM) + 1)
    even = np.linspace(0.0, arc[-1], n)
    out = np.stack([np.interp(even, arc, shc[:, k]) for k in range(3)], axis=1)
    return out, even
