"""Coronary tree layouts per angiographic view, and the guiding catheter.

Each view places the ostium and the headings of the main vessels on the 512 x
512 reference frame (degrees, y down, clockwise on screen); the seed varies
lengths, bends, branch points and calibres.  LCA: LM, LAD with diagonals (D)
and septals (S), LCX with obtuse marginals (OM).  RCA: conus branch (CB),
acute marginals (AM), posterior descending artery (PDA).
"""

from __future__ import annotations

import math

import numpy as np

from .xa_tree import Point, Vessel, branch, curve

LCA_VESSELS = frozenset({"LM", "LAD", "LCX", "D1", "D2", "S1", "S2", "OM1", "OM2"})
"""Left coronary vessels present in every LCA tree (``D3`` and ``OM3`` only sometimes)."""
RCA_VESSELS = frozenset({"RCA", "CB", "AM1", "AM2", "PDA"})
"""Right coronary vessels present in every RCA tree."""

# view: ostium (ref px), LM heading, LAD heading and bend, LCX heading and bend,
# side of the diagonals off the LAD and of the marginals off the LCX (degrees, y down)
_LCA_LAYOUT: dict[str, tuple[tuple[float, float], float, float, float, float, float, int, int]] = {
    "RAO 30 CAU 25": ((150, 130), 20, 5, 65, 80, -15, 1, -1),
    "LAO 45 CRA 20": ((300, 110), 120, 105, -20, 10, 70, 1, 1),
    "AP CRA 30": ((250, 100), 100, 85, 15, 160, -50, -1, 1),
    "LAO 50 CAU 25": ((256, 190), 90, 130, 20, 40, 30, 1, -1),
}
# view: ostium (ref px), RCA heading, bend (degrees), length (ref px)
_RCA_LAYOUT: dict[str, tuple[tuple[float, float], float, float, float]] = {
    "LAO 30": ((330, 95), 165, -150, 540),
    "RAO 30": ((200, 85), 75, 30, 420),
    "LAO 30 CRA 20": ((320, 110), 170, -130, 500),
}
LCA_VIEWS = tuple(_LCA_LAYOUT)
RCA_VIEWS = tuple(_RCA_LAYOUT)
VIEW_ANGLES: dict[str, tuple[float, float]] = {
    "RAO 30 CAU 25": (-30.0, -25.0),
    "LAO 45 CRA 20": (45.0, 20.0),
    "AP CRA 30": (0.0, 30.0),
    "LAO 50 CAU 25": (50.0, -25.0),
    "LAO 30": (30.0, 0.0),
    "RAO 30": (-30.0, 0.0),
    "LAO 30 CRA 20": (30.0, 20.0),
}
"""Positioner primary (+LAO / -RAO) and secondary (+CRA / -CAU) angle of each view, degrees."""


def _lca(rng: np.random.Generator, view: str, mm: float) -> list[Vessel]:
    (ox, oy), h_lm, h_lad, b_lad, h_lcx, b_lcx, d_side, m_side = _LCA_LAYOUT[view]

    def j() -> float:
        return float(rng.uniform(-10, 10))

    ostium = (ox + 0.8 * j(), oy + 0.8 * j())
    lm_pts = curve(rng, ostium, h_lm + j(), float(rng.uniform(35, 65)), wiggle_deg=2)
    lm_r = float(rng.uniform(3.8, 4.8)) / 2 / mm
    lm = Vessel("LM", None, lm_pts, lm_r, 0.9 * lm_r)
    fore = 0.6 if "CAU" in view and view.startswith("LAO") else 1.0
    lad_len = fore * float(rng.uniform(330, 420))
    lad = Vessel(
        "LAD",
        "LM",
        curve(rng, lm.points[-1], h_lad + j(), lad_len, bend_deg=b_lad + j()),
        float(rng.uniform(3.0, 3.8)) / 2 / mm,
        float(rng.uniform(1.2, 1.6)) / 2 / mm,
        lm.length,
    )
    lcx = Vessel(
        "LCX",
        "LM",
        curve(rng, lm.points[-1], h_lcx + j(), float(rng.uniform(200, 300)), bend_deg=b_lcx + j()),
        float(rng.uniform(2.8, 3.5)) / 2 / mm,
        float(rng.uniform(1.3, 1.7)) / 2 / mm,
        lm.length,
    )
    tree = [lm, lad, lcx]
    diag = [("D1", (0.15, 0.3)), ("D2", (0.38, 0.55))]
    if rng.random() < 0.5:
        diag.append(("D3", (0.6, 0.72)))
    for name, frac in diag:
        length = lad.length * float(rng.uniform(0.35, 0.55))
        tree.append(branch(rng, lad, name, frac, d_side, length, (1.8, 2.5), mm))
    for name, frac in (("S1", (0.12, 0.25)), ("S2", (0.3, 0.45))):
        length = float(rng.uniform(60, 110))
        tree.append(branch(rng, lad, name, frac, -d_side, length, (1.0, 1.3), mm))
    marg = [("OM1", (0.25, 0.45)), ("OM2", (0.55, 0.75))]
    if rng.random() < 0.4:
        marg.append(("OM3", (0.78, 0.88)))
    for name, frac in marg:
        length = lcx.length * float(rng.uniform(0.4, 0.6))
        tree.append(branch(rng, lcx, name, frac, m_side, length, (1.8, 2.5), mm))
    return tree


def _rca(rng: np.random.Generator, view: str, mm: float) -> list[Vessel]:
    (ox, oy), heading, bend, length = _RCA_LAYOUT[view]
    ostium = (ox + float(rng.uniform(-8, 8)), oy + float(rng.uniform(-8, 8)))
    pts = curve(
        rng,
        ostium,
        heading + float(rng.uniform(-8, 8)),
        length * float(rng.uniform(0.9, 1.05)),
        bend_deg=bend + float(rng.uniform(-10, 10)),
    )
    rca = Vessel(
        "RCA",
        None,
        pts,
        float(rng.uniform(3.2, 4.2)) / 2 / mm,
        float(rng.uniform(1.8, 2.4)) / 2 / mm,
    )
    out = -1 if bend > 0 else 1
    return [
        rca,
        branch(rng, rca, "CB", (0.03, 0.06), out, float(rng.uniform(60, 100)), (1.0, 1.4), mm),
        branch(rng, rca, "AM1", (0.35, 0.48), out, float(rng.uniform(100, 160)), (1.4, 2.0), mm),
        branch(rng, rca, "AM2", (0.55, 0.7), out, float(rng.uniform(90, 150)), (1.4, 2.0), mm),
        branch(rng, rca, "PDA", (0.82, 0.9), -out, float(rng.uniform(120, 200)), (1.6, 2.2), mm),
    ]


def vessel_artery(name: str) -> str:
    """``"LCA"`` or ``"RCA"`` for a vessel name; ``ValueError`` for an unknown one."""
    if name in RCA_VESSELS:
        return "RCA"
    if name in LCA_VESSELS | {"D3", "OM3"}:
        return "LCA"
    raise ValueError(f"unknown vessel {name!r}")


def artery_of(view: str) -> str:
    """``"LCA"`` or ``"RCA"`` for a view label."""
    return "LCA" if view in _LCA_LAYOUT else "RCA"


def build_tree(
    rng: np.random.Generator,
    view: str,
    *,
    scale: float,
    offset: Point,
    mm_per_px: float,
) -> list[Vessel]:
    """A seeded coronary tree for *view* (one of :data:`LCA_VIEWS` or :data:`RCA_VIEWS`).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the anatomical variation.
    view : str
        View label; picks the artery and the layout.
    scale : float
        Target pixels per reference-frame pixel.
    offset : sequence of float
        Where the reference frame's origin lands in the target, pixels.
    mm_per_px : float
        Target pixel spacing at the isocentre, mm.

    Returns
    -------
    list of Vessel
        Roots first, then branches, in target pixels.
    """
    build = _lca if view in _LCA_LAYOUT else _rca
    ref = build(rng, view, mm_per_px * scale)
    return [v.transformed(scale, offset) for v in ref]


def catheter(rng: np.random.Generator, root: Vessel, diameter_px: float, reach: float) -> Vessel:
    """A guiding catheter engaged at *root*'s ostium, leaving upwards over *reach* pixels."""
    back = math.degrees(root.heading(0.0)) + 180 + float(rng.uniform(-25, 25))
    up = -90 + float(rng.uniform(-20, 20))
    bend = (up - back + 180) % 360 - 180
    pts = curve(rng, root.points[0], back, reach, bend_deg=bend, wiggle_deg=2, step=2.0)
    r = diameter_px / 2
    return Vessel("catheter", None, pts, r, r)
