"""Coronary tree and calcified plaques of the synthetic cardiac CT phantom.

The left main (LM) leaves the left aortic sinus and splits into the left
anterior descending (LAD, down the anterior interventricular groove towards the
apex) and the left circumflex (LCX, along the left atrioventricular groove);
the right coronary artery (RCA) leaves the right sinus and follows the right
atrioventricular groove round to the inferior surface.  Centrelines are 3D
curves over the heart ellipsoid, varied by the seed, resampled every 0.5 mm.

Plaques are oriented ellipsoids in the vessel wall at a fraction of the
artery's length; :class:`PlaqueSpec` describes one and
:func:`random_plaque_specs` draws the default set for a seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._raster import F64, Ellipsoid, Tube, TubeSet, frame_from
from .anatomy import FAT_HU, Anatomy, Heart

ARTERY_IDS: dict[str, int] = {"LM": 1, "LAD": 2, "LCX": 3, "RCA": 4}
"""Label value of each artery in the ground-truth label map (0 = not coronary)."""
_ARTERY_P = {"LM": 0.12, "LAD": 0.42, "LCX": 0.2, "RCA": 0.26}
_STEP_MM = 0.5


@dataclass(frozen=True)
class PlaqueSpec:
    """One calcified plaque to place on a coronary artery.

    Attributes
    ----------
    artery : str
        ``"LM"``, ``"LAD"``, ``"LCX"`` or ``"RCA"``.
    position : float
        Fraction of the artery's length from its origin, 0 to 1.
    radius_mm : float
        Semi-axis across the vessel (0.5 to 4 mm is sensible).
    peak_hu : float
        Peak HU of the plaque after partial-volume blur, before noise (>= 130
        to be scored).  In contrast series the plaque keeps the density it
        would have unenhanced.
    length_mm : float, optional
        Semi-axis along the vessel; 1.5 x ``radius_mm`` when omitted.
    angle_deg : float, optional
        Side of the vessel wall the plaque sits on; seeded when omitted.
    """

    artery: str
    position: float = 0.3
    radius_mm: float = 1.5
    peak_hu: float = 400.0
    length_mm: float | None = None
    angle_deg: float | None = None

    def __post_init__(self) -> None:
        if self.artery not in ARTERY_IDS:
            raise ValueError(f"artery must be one of {sorted(ARTERY_IDS)}, got {self.artery!r}")
        if not 0.0 <= self.position <= 1.0:
            raise ValueError("position must lie in [0, 1]")
        if self.radius_mm <= 0 or (self.length_mm is not None and self.length_mm <= 0):
            raise ValueError("plaque radius and length must be positive")
        if not self.peak_hu > 0:
            raise ValueError("peak_hu must be positive")


def as_plaque_spec(spec: PlaqueSpec | Mapping[str, Any]) -> PlaqueSpec:
    """Accept a :class:`PlaqueSpec` or a mapping of its fields."""
    return spec if isinstance(spec, PlaqueSpec) else PlaqueSpec(**dict(spec))


@dataclass(frozen=True, eq=False)
class Centerline:
    """A vessel centreline sampled every 0.5 mm with the lumen radius at each point."""

    points: F64
    radii: F64

    @property
    def length_mm(self) -> float:
        """Arc length."""
        return float(np.linalg.norm(np.diff(self.points, axis=0), axis=1).sum())

    def at(self, frac: float) -> tuple[F64, F64, float]:
        """Point, unit tangent and radius at fraction *frac* of the length."""
        i = float(np.clip(frac, 0.0, 1.0)) * (len(self.points) - 1)
        k = min(int(i), len(self.points) - 2)
        w = i - k
        p = (1 - w) * self.points[k] + w * self.points[k + 1]
        tangent = self.points[k + 1] - self.points[k]
        return (
            p,
            tangent / np.linalg.norm(tangent),
            float((1 - w) * self.radii[k] + w * self.radii[k + 1]),
        )


def _resample(points: F64, r_start: float, r_end: float) -> Centerline:
    """Resample a polyline every 0.5 mm with a linear radius taper."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(np.ceil(s[-1] / _STEP_MM)) + 1)
    q = np.linspace(0.0, s[-1], n)
    pts = np.stack([np.interp(q, s, points[:, i]) for i in range(3)], axis=1)
    return Centerline(pts, np.linspace(r_start, r_end, n))


def _wiggle(rng: np.random.Generator, n: int, amp: float) -> F64:
    """Smooth seeded perturbation of length *n* (two random sinusoids)."""
    x = np.linspace(0.0, 1.0, n)
    k, ph = rng.uniform(1.5, 4.0, size=2), rng.uniform(0, 2 * np.pi, size=2)
    out: F64 = amp * (
        np.sin(2 * np.pi * k[0] * x + ph[0]) + 0.5 * np.sin(2 * np.pi * k[1] * x + ph[1])
    )
    return out


def _quad(p0: F64, p1: F64, bulge: F64, n: int = 20) -> F64:
    """Quadratic Bezier from *p0* to *p1* whose control point is the midpoint + *bulge*."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    c = (p0 + p1) / 2 + bulge
    out: F64 = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t**2 * p1
    return out


def build_coronary_tree(an: Anatomy, rng: np.random.Generator) -> dict[str, Centerline]:
    """Centrelines of the four scored arteries.

    Parameters
    ----------
    an : Anatomy
        Provides the heart frame, the aortic sinus ostia and the LM bifurcation.
    rng : numpy.random.Generator
        Varies calibres, groove wiggles and how far LCX and RCA reach.

    Returns
    -------
    dict of str to Centerline
        Keyed ``"LM"``, ``"LAD"``, ``"LCX"``, ``"RCA"``; points run from the origin.
    """
    h = an.heart
    n = 160
    r_lm = float(rng.uniform(1.8, 2.2))
    r_lad, r_lcx, r_rca = (float(rng.uniform(1.5, 2.0)) for _ in range(3))
    outward = h.centre - an.aortic_root
    lm = _quad(an.lm_ostium, an.bifurcation, -0.1 * outward)
    phi_b = float(np.arctan2(*_angles(h, an.bifurcation)))
    # LAD: anterior interventricular groove from the bifurcation to just past the apex
    t = np.linspace(h.t_av, 0.97, n)
    phi = (
        h.phi_lad
        + _wiggle(rng, n, np.radians(4))
        + (phi_b - h.phi_lad) * np.exp(-(t - h.t_av) * 12)
    )
    lad = h.surface(phi, t, np.linspace(r_lad, 0.8, n) + 0.3)
    lad = np.concatenate([an.bifurcation[None], lad[1:]])
    # LCX: left AV groove round the obtuse margin to the posterior surface
    end = np.radians(rng.uniform(150, 200))
    phi = np.linspace(phi_b, end, n)
    t = h.t_av + _wiggle(rng, n, 0.03) * np.linspace(0, 1, n)
    lcx = h.surface(phi, t, np.linspace(r_lcx, 0.9, n) + 0.3)
    # RCA: right sinus to the right AV groove, round the acute margin to the crux
    phi0, end = np.radians(rng.uniform(-50, -30)), np.radians(rng.uniform(-200, -160))
    phi = np.linspace(phi0, end, n)
    t = h.t_av + _wiggle(rng, n, 0.03) * np.linspace(0, 1, n)
    rca = h.surface(phi, t, np.linspace(r_rca, 1.0, n) + 0.3)
    prox = _quad(an.rca_ostium, rca[0], 0.15 * (rca[0] - h.centre))
    return {
        "LM": _resample(lm, r_lm, 0.95 * r_lm),
        "LAD": _resample(lad, r_lad, 0.8),
        "LCX": _resample(lcx, r_lcx, 0.9),
        "RCA": _resample(np.concatenate([prox, rca[1:]]), r_rca, 1.0),
    }


def _angles(h: Heart, p: F64) -> tuple[float, float]:
    """(sin-part, cos-part) of the heart-frame angle of point *p* (for ``arctan2``)."""
    d = p - h.centre
    return float(d @ h.frame[2] / h.semi[2]), float(d @ h.frame[1] / h.semi[1])


def vessel_tubes(tree: Mapping[str, Centerline], contrast_blood: float | None) -> TubeSet:
    """Tubes for the tree: a 2.5 mm epicardial fat sheath around a blood-filled lumen.

    Parameters
    ----------
    tree : mapping of str to Centerline
        From :func:`build_coronary_tree`.
    contrast_blood : float or None
        Lumen HU of a contrast series; None for unenhanced blood (40 HU).

    Returns
    -------
    TubeSet
    """
    lumen = 40.0 if contrast_blood is None else contrast_blood
    layers = ((1.0, 2.5, FAT_HU), (1.0, 0.0, lumen))
    tubes = []
    for c in tree.values():
        keep = np.unique(np.r_[0 : len(c.points) : 2, len(c.points) - 1])  # 1 mm segments
        tubes.append(Tube(c.points[keep], c.radii[keep], layers))
    return TubeSet(tubes)


def random_plaque_specs(rng: np.random.Generator) -> list[PlaqueSpec]:
    """Default plaques for a seed.

    None in about 20% of seeds, else 1 to 8 plaques (fewer more likely) on
    arteries drawn LAD > RCA > LCX > LM, mostly proximal, radius 0.5-3 mm
    (log-uniform), peak 130-300 HU (25%) or 300-1200 HU.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    list of PlaqueSpec
    """
    if rng.random() < 0.2:
        return []
    count = int(rng.choice(np.arange(1, 9), p=np.array([8, 7, 6, 5, 4, 3, 2, 1]) / 36))
    names = list(_ARTERY_P)
    specs = []
    for _ in range(count):
        artery = names[int(rng.choice(4, p=list(_ARTERY_P.values())))]
        pos = rng.uniform(0.15, 0.85) if artery == "LM" else rng.beta(1.4, 2.6)
        radius = float(np.exp(rng.uniform(np.log(0.5), np.log(3.0))))
        peak = rng.uniform(130, 300) if rng.random() < 0.25 else rng.uniform(300, 1200)
        specs.append(
            PlaqueSpec(
                artery=artery,
                position=round(float(pos), 3),
                radius_mm=round(radius, 2),
                peak_hu=float(round(peak)),
                length_mm=round(radius * float(rng.uniform(1.0, 2.5)), 2),
                angle_deg=round(float(rng.uniform(0, 360)), 1),
            )
        )
    return specs


def plaque_ellipsoid(
    spec: PlaqueSpec, tree: Mapping[str, Centerline], rng: np.random.Generator
) -> Ellipsoid:
    """The plaque's ellipsoid: in the wall, eccentric to the lumen, long axis along the vessel.

    Parameters
    ----------
    spec : PlaqueSpec
        What to place.
    tree : mapping of str to Centerline
        The coronary tree.
    rng : numpy.random.Generator
        Chooses the eccentricity (and the wall side when ``spec.angle_deg`` is None).

    Returns
    -------
    Ellipsoid
        Semi-axes: length along the vessel, 0.85 x radius radially, radius around.
    """
    p, tangent, r = tree[spec.artery].at(spec.position)
    frame = frame_from(tangent, np.array([0.0, 0.0, 1.0]))
    angle = np.radians(spec.angle_deg if spec.angle_deg is not None else rng.uniform(0, 360))
    radial = np.cos(angle) * frame[1] + np.sin(angle) * frame[2]
    centre = p + radial * r * float(rng.uniform(0.4, 0.9))
    length = spec.length_mm if spec.length_mm is not None else 1.5 * spec.radius_mm
    axes = np.stack([tangent, radial, np.cross(tangent, radial)])
    return Ellipsoid(centre, axes, np.array([length, 0.85 * spec.radius_mm, spec.radius_mm]))
