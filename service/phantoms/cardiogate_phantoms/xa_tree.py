"""Projected coronary trees for the synthetic angiograms: centrelines, lumens, stenoses.

Everything is 2D, in pixels of the image being drawn (x = column, y = row, the
centre of the top-left pixel at 0, 0).  A :class:`Vessel` is a centreline with
a tapering circular lumen; lumen diameters and lesion lengths are given in
millimetres and turned into pixels with ``mm_per_px``, the pixel spacing at the
isocentre.  Whole trees per view come from :mod:`.xa_views`.

A stenosis narrows the lumen *diameter* by its percent with a raised-cosine
profile over its length, so its narrowest point (the minimal lumen) is its
centre, at ``position`` (fraction of the vessel's arc length from its origin).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from ._raster import F64

SIGNIFICANT_PERCENT = 50.0
"""Diameter stenosis from which a lesion counts as significant."""
_TIP = 0.1
Point = Sequence[float] | F64
"""An (x, y) pair, pixels."""
REF_SIZE = 512.0
"""Side of the reference frame the tree layouts are drawn on (pixels)."""


@dataclass(frozen=True)
class StenosisSpec:
    """One stenosis to draw.

    Attributes
    ----------
    vessel : str
        Vessel name (``"LAD"``, ``"LCX"``, ``"D1"``, ``"RCA"`` ... see
        :data:`.xa_views.LCA_VESSELS` and :data:`.xa_views.RCA_VESSELS`).
    position : float
        Centre of the lesion as a fraction of the vessel's length from its origin.
    percent : float
        Diameter stenosis at the centre, 0 to 100 (exclusive).
    length_mm : float
        Length over which the lumen narrows and widens again.
    """

    vessel: str
    position: float = 0.4
    percent: float = 75.0
    length_mm: float = 6.0

    def __post_init__(self) -> None:
        if not self.vessel:
            raise ValueError("stenosis vessel must be named")
        if not 0.0 <= self.position <= 1.0:
            raise ValueError(f"stenosis position must lie in [0, 1], got {self.position}")
        if not 0.0 < self.percent < 100.0:
            raise ValueError(f"stenosis percent must lie in (0, 100), got {self.percent}")
        if not self.length_mm > 0:
            raise ValueError(f"stenosis length_mm must be positive, got {self.length_mm}")


def as_stenosis_spec(spec: StenosisSpec | Mapping[str, Any]) -> StenosisSpec:
    """Accept a :class:`StenosisSpec` or a mapping of its fields."""
    return spec if isinstance(spec, StenosisSpec) else StenosisSpec(**dict(spec))


@dataclass(frozen=True)
class Lesion:
    """A stenosis placed on a vessel, in pixels."""

    position: float
    percent: float
    length_px: float


@dataclass(frozen=True, eq=False)
class Vessel:
    """A projected vessel: centreline polyline, tapering lumen and its lesions.

    Attributes
    ----------
    name, parent : str
        Vessel name and the vessel it branches from (``None`` for a root).
    points : ndarray, shape (n, 2)
        Centreline (x, y) in pixels, roughly evenly spaced.
    r0, r1 : float
        Reference lumen radius at the origin and at the end, pixels.
    origin_arc : float
        Path length from the ostium to this vessel's origin, pixels.
    lesions : tuple of Lesion
        Stenoses on this vessel.
    start : float
        Arc length at which the drawn lumen begins: a side branch starts on its
        parent's centreline but is drawn from the parent's wall, so that it never
        fills a stenosis of its parent.
    """

    name: str
    parent: str | None
    points: F64
    r0: float
    r1: float
    origin_arc: float = 0.0
    lesions: tuple[Lesion, ...] = ()
    start: float = 0.0

    @cached_property
    def arc(self) -> F64:
        """Arc length at each centreline point, pixels."""
        seg = np.linalg.norm(np.diff(self.points, axis=0), axis=1)
        out: F64 = np.concatenate([[0.0], np.cumsum(seg)])
        return out

    @property
    def length(self) -> float:
        """Arc length of the whole vessel, pixels."""
        return float(self.arc[-1])

    def reference_radius(self, s: F64) -> F64:
        """Lumen radius without stenoses at arc lengths *s*; the last tenth tapers to a point."""
        f = np.clip(s / self.length, 0.0, 1.0)
        tip = np.sqrt(np.clip((1 - f) / _TIP, 0.0, 1.0))
        out: F64 = (self.r0 + (self.r1 - self.r0) * f**0.8) * tip
        return out

    def reference_diameter(self, frac: float) -> float:
        """Lumen diameter without stenoses at fraction *frac* of the length, pixels."""
        return 2 * float(self.reference_radius(np.array([frac * self.length]))[0])

    def radius(self, s: F64) -> F64:
        """Lumen radius at arc lengths *s*, narrowed by the lesions."""
        r = self.reference_radius(s)
        for lesion in self.lesions:
            half = lesion.length_px / 2
            t = np.clip((s - lesion.position * self.length) / half, -1.0, 1.0)
            r = r * (1 - lesion.percent / 100 * 0.5 * (1 + np.cos(np.pi * t)))
        return r

    def point(self, frac: float) -> F64:
        """Centreline point at fraction *frac* of the length."""
        s = float(np.clip(frac, 0.0, 1.0)) * self.length
        out: F64 = np.array([np.interp(s, self.arc, self.points[:, i]) for i in (0, 1)])
        return out

    def heading(self, frac: float) -> float:
        """Direction of travel (radians, y down) at fraction *frac*."""
        k = min(int(float(np.clip(frac, 0.0, 1.0)) * (len(self.points) - 1)), len(self.points) - 2)
        dx, dy = self.points[k + 1] - self.points[k]
        return math.atan2(dy, dx)

    def sample(self, step: float | None = None, *, whole: bool = False) -> tuple[F64, F64, F64]:
        """Centreline resampled every *step* pixels, from ``start`` unless *whole*.

        Parameters
        ----------
        step : float, optional
            Spacing of the samples; by default dense enough for
            :func:`.xa_image.project_tubes` (see ``_stations``).
        whole : bool
            Include the stretch inside the parent (for centrelines, not for drawing).

        Returns
        -------
        points, radii, arrival : ndarray
            Points (n, 2), lumen radii (n,) and path length from the ostium (n,).
        """
        if step is None:
            s = self._stations()
        else:
            s = np.linspace(0.0, self.length, max(2, math.ceil(self.length / step) + 1))
        if not whole:
            s = s[s >= min(self.start, self.length)]
        pts = np.stack([np.interp(s, self.arc, self.points[:, i]) for i in (0, 1)], axis=1)
        return pts, self.radius(s), self.origin_arc + s

    def _stations(self) -> F64:
        """Arc lengths a third of the reference radius apart (0.35 to 2 px), plus a
        dense run over each lesion: outside its lesions a vessel is sampled, and so
        drawn, exactly as without them."""
        fine = np.linspace(0.0, self.length, max(2, math.ceil(self.length / 0.25) + 1))
        density = 1 / np.clip(self.reference_radius(fine) / 3, 0.35, 2.0)
        count = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(fine))])
        s = np.interp(np.linspace(0.0, count[-1], math.ceil(count[-1]) + 1), count, fine)
        for les in self.lesions:
            centre, half = les.position * self.length, les.length_px / 2
            narrow = self.reference_diameter(les.position) / 2 * (1 - les.percent / 100)
            lo, hi = max(centre - half, 0.0), min(centre + half, self.length)
            s = np.union1d(s, np.arange(lo, hi, float(np.clip(narrow / 3, 0.35, 2.0))))
        return s

    def transformed(self, scale: float, offset: Point) -> Vessel:
        """This vessel scaled about the origin, then shifted by *offset* (pixels)."""
        lesions = tuple(replace(les, length_px=les.length_px * scale) for les in self.lesions)
        return replace(
            self,
            points=self.points * scale + np.asarray(offset, dtype=np.float64),
            r0=self.r0 * scale,
            r1=self.r1 * scale,
            origin_arc=self.origin_arc * scale,
            lesions=lesions,
            start=self.start * scale,
        )


def curve(
    rng: np.random.Generator,
    start: Point,
    heading_deg: float,
    length: float,
    *,
    bend_deg: float = 0.0,
    wiggle_deg: float = 6.0,
    step: float = 1.0,
) -> F64:
    """A smooth seeded centreline: the heading turns by *bend_deg* plus a small wiggle."""
    n = max(2, math.ceil(length / step) + 1)
    f = np.linspace(0.0, 1.0, n)
    k, ph = rng.uniform(1.0, 3.0, size=2), rng.uniform(0.0, 2 * np.pi, size=2)
    wig = np.sin(2 * np.pi * k[0] * f + ph[0]) - np.sin(ph[0])
    wig += 0.5 * (np.sin(2 * np.pi * k[1] * f + ph[1]) - np.sin(ph[1]))
    h = np.radians(heading_deg + bend_deg * f + wiggle_deg * wig)
    d = np.stack([np.cos(h), np.sin(h)], axis=1) * (length / (n - 1))
    out: F64 = np.asarray(start, dtype=np.float64) + np.concatenate(
        [[[0.0, 0.0]], np.cumsum(d[:-1], axis=0)]
    )
    return out


def branch(
    rng: np.random.Generator,
    parent: Vessel,
    name: str,
    frac: tuple[float, float],
    side: int,
    length: float,
    diam_mm: tuple[float, float],
    mm_per_px: float,
) -> Vessel:
    """A side branch leaving *parent* towards *side* (+1 clockwise on screen)."""
    f = float(rng.uniform(*frac))
    turn = float(rng.uniform(35, 60))
    angle = math.degrees(parent.heading(f)) + side * turn
    pts = curve(rng, parent.point(f), angle, length, bend_deg=-side * float(rng.uniform(0, 25)))
    r0 = float(rng.uniform(*diam_mm)) / 2 / mm_per_px
    wall = parent.reference_diameter(f) / 2
    return Vessel(
        name,
        parent.name,
        pts,
        r0,
        r0 * 0.5,
        parent.origin_arc + f * parent.length,
        start=wall / math.sin(math.radians(turn)),
    )


def place_lesions(
    tree: Sequence[Vessel], specs: Sequence[StenosisSpec], mm_per_px: float
) -> list[Vessel]:
    """Attach each stenosis to its vessel; lengths are capped at half the vessel.

    Raises
    ------
    ValueError
        If a stenosis names a vessel that is not in the tree.
    """
    names = {v.name for v in tree}
    for spec in specs:
        if spec.vessel not in names:
            raise ValueError(f"no vessel {spec.vessel!r} in this tree; it has {sorted(names)}")
    out = []
    for v in tree:
        lesions = tuple(
            Lesion(s.position, s.percent, min(s.length_mm / mm_per_px, v.length / 2))
            for s in specs
            if s.vessel == v.name
        )
        out.append(replace(v, lesions=v.lesions + lesions))
    return out


def _default_weight(v: Vessel) -> float:
    """Lesions mostly on the main vessels, seldom on the left main."""
    if v.name == "LM":
        return 0.15
    return 1.0 if v.parent in (None, "LM") else 0.35


def overlapped(tree: Sequence[Vessel], vessel: Vessel, frac: float, reach: float) -> bool:
    """Whether another drawn vessel comes within *reach* px of *vessel* at *frac*.

    A crossing or a branch origin that close would fill in the narrowing of a
    lesion there in projection.
    """
    return _near(_outlines(tree), vessel, frac, reach)


def _outlines(tree: Sequence[Vessel]) -> list[tuple[Vessel, F64, F64]]:
    """Each vessel with its drawn centreline every 2 px and the lumen radii there."""
    return [(v, *v.sample(2.0)[:2]) for v in tree]


def _near(
    outlines: list[tuple[Vessel, F64, F64]], vessel: Vessel, frac: float, reach: float
) -> bool:
    p = vessel.point(frac)
    return any(
        other is not vessel
        and len(pts) > 0
        and float((np.linalg.norm(pts - p, axis=1) - radii).min()) < reach
        for other, pts, radii in outlines
    )


def random_stenoses(
    rng: np.random.Generator,
    tree: Sequence[Vessel],
    percents: Sequence[float] | F64,
    *,
    mm_per_px: float,
    box: tuple[float, float, float, float],
    weights: Mapping[str, float] | None = None,
    lengths_mm: tuple[float, float] = (4.0, 12.0),
) -> list[StenosisSpec]:
    """Seeded stenoses, one per entry of *percents*, where they can be seen.

    A lesion centre lies inside *box* (``x0, y0, x1, y1``, pixels) on a stretch of
    vessel at least 1.5 mm wide, away from the vessel's ends, from the other
    lesions and from other vessels crossing or branching off (see
    :func:`overlapped`).  Fewer specs come back if no such place is left.

    Parameters
    ----------
    weights : mapping, optional
        Relative chance of each vessel name (default: main vessels favoured).
    lengths_mm : tuple of float
        Range of the lesion lengths.
    """
    x0, y0, x1, y1 = box
    chance = dict(weights) if weights else {v.name: _default_weight(v) for v in tree}
    byname = {v.name: v for v in tree}
    names = [n for n in chance if n in byname and chance[n] > 0]
    p = np.array([chance[n] for n in names], dtype=np.float64)
    outlines = _outlines(tree)
    specs: list[StenosisSpec] = []
    for percent in percents:
        for _ in range(30):
            v = byname[names[int(rng.choice(len(names), p=p / p.sum()))]]
            frac = float(rng.uniform(0.12, 0.8))
            length_mm = float(rng.uniform(*lengths_mm))
            half = min(length_mm / mm_per_px, v.length / 2) / 2
            x, y = v.point(frac)
            wide = v.reference_diameter(frac) * mm_per_px
            apart = all(
                s.vessel != v.name
                or abs(s.position - frac) * v.length > half + s.length_mm / mm_per_px / 2 + 2
                for s in specs
            )
            if (
                x0 <= x <= x1
                and y0 <= y <= y1
                and wide >= 1.5
                and apart
                and not _near(outlines, v, frac, half + 2)
            ):
                spec = StenosisSpec(
                    v.name, round(frac, 4), round(float(percent), 1), round(length_mm, 2)
                )
                specs.append(spec)
                break
    return specs
