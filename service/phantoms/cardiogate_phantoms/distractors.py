"""Bright things that are not coronary calcium (ground-truth label 0).

Aortic wall calcification (ascending aorta, arch, descending aorta), aortic
valve and mitral annulus calcification, and isolated noise spikes.  Every one
is kept clear of the coronary tree so that it never touches a plaque's label
footprint; bone (spine, ribs, sternum) is drawn by :mod:`.anatomy`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ._raster import F64, Ellipsoid, frame_from
from .anatomy import Anatomy
from .coronary import Centerline

_CLEARANCE_MM = 6.0
NONCORONARY_CODES: dict[str, int] = {
    "aortic_valve": 1,
    "aortic_wall": 2,
    "mitral_annulus": 3,
    "bone": 4,
    "metal": 5,
    "noise_spike": 6,
}
"""Per-voxel codes of :attr:`.phantom.CardiacPhantom.noncoronary` (0: none), by kind; the
codes the family-B phantom uses.  This family draws no metal, and its bone (drawn by
:mod:`.anatomy`) is not coded."""


@dataclass(frozen=True, eq=False)
class Distractor:
    """A label-0 calcium-like blob: ``kind``, its ellipsoid and intrinsic HU above tissue."""

    kind: str
    blob: Ellipsoid
    delta_hu: float

    @property
    def code(self) -> int:
        """Its code in :data:`NONCORONARY_CODES`."""
        return NONCORONARY_CODES[self.kind]

    def as_dict(self) -> dict[str, object]:
        """JSON-serialisable description."""
        return {
            "kind": self.kind,
            "center_mm": [round(float(v), 3) for v in self.blob.centre],
            "semi_axes_mm": [round(float(v), 3) for v in self.blob.semi],
            "hu": round(self.delta_hu + 40.0, 1),
        }


def _clear(tree_pts: F64, tree_r: F64, blob: Ellipsoid) -> bool:
    d = np.linalg.norm(tree_pts - blob.centre, axis=1)
    return bool(np.all(d > tree_r + 2.5 + float(blob.semi.max()) + _CLEARANCE_MM))


def _aortic_wall(an: Anatomy, rng: np.random.Generator, z_lo: float, z_hi: float) -> Ellipsoid:
    pts, radii = an.aorta.points, an.aorta.radii
    inside = np.flatnonzero((pts[:-1, 2] >= z_lo - 5) & (pts[:-1, 2] <= z_hi + 5))
    k = int(rng.choice(inside)) if inside.size else int(rng.integers(0, len(pts) - 1))
    w = float(rng.random())
    p = (1 - w) * pts[k] + w * pts[k + 1]
    frame = frame_from(pts[k + 1] - pts[k], np.array([1.0, 0.3, 0.0]))
    ang = rng.uniform(0, 2 * np.pi)
    radial = np.cos(ang) * frame[1] + np.sin(ang) * frame[2]
    centre = p + radial * (radii[k] - 1.2)
    axes = np.stack([frame[0], radial, np.cross(frame[0], radial)])
    semi = np.array([rng.uniform(1.5, 6.0), rng.uniform(0.6, 1.4), rng.uniform(1.0, 5.0)])
    return Ellipsoid(centre, axes, semi)


def _valve(an: Anatomy, rng: np.random.Generator) -> tuple[str, Ellipsoid]:
    h = an.heart
    if rng.random() < 0.5:
        ang = rng.uniform(0, 2 * np.pi)
        frame = frame_from(h.frame[0], h.frame[1])
        centre = an.aortic_root + an.aortic_root_radius_mm * 0.55 * (
            np.cos(ang) * frame[1] + np.sin(ang) * frame[2]
        )
        kind = "aortic_valve"
    else:
        ring = h.local(h.t_av + 0.05, -0.3, 0.3)
        ang = rng.uniform(np.pi * 0.6, np.pi * 1.4)
        centre = ring + 14.0 * (np.cos(ang) * h.frame[1] + np.sin(ang) * h.frame[2])
        kind = "mitral_annulus"
    semi = np.array([rng.uniform(1.0, 4.0), rng.uniform(0.8, 2.5), rng.uniform(0.8, 2.0)])
    return kind, Ellipsoid(centre, frame_from(rng.normal(size=3), h.frame[0]), semi)


def _spike(an: Anatomy, rng: np.random.Generator, z_lo: float, z_hi: float) -> Ellipsoid:
    a, b = an.cavity_semi
    r, th = np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
    centre = np.array([a * r * np.cos(th), b * r * np.sin(th), rng.uniform(z_lo, z_hi)])
    return Ellipsoid(centre, np.eye(3), np.full(3, rng.uniform(0.4, 0.9)))


def draw_distractors(
    an: Anatomy,
    tree: Mapping[str, Centerline],
    rng: np.random.Generator,
    z_range: tuple[float, float],
    *,
    aortic_calcium: bool | int | None,
    valve_calcium: bool | None,
    noise_spikes: bool | int | None,
) -> list[Distractor]:
    """Draw the label-0 blobs for a scan covering *z_range* (mm).

    ``None`` lets the seed decide (aortic wall calcium in ~70% of seeds, valve
    calcium in ~30%, up to five noise spikes); ``False``/``0`` disables a kind;
    ``True`` forces it; an int asks for that many blobs.
    """
    z_lo, z_hi = z_range
    pts = np.concatenate([c.points for c in tree.values()])
    rad = np.concatenate([c.radii for c in tree.values()])

    def count(flag: bool | int | None, p_present: float, lo: int, hi: int) -> int:
        present = rng.random() < p_present
        n = int(rng.integers(lo, hi + 1))
        if flag is None:
            return n if present else 0
        if isinstance(flag, bool):
            return n if flag else 0
        return max(0, int(flag))

    out: list[Distractor] = []
    n_aorta = count(aortic_calcium, 0.7, 1, 12)
    n_valve = count(valve_calcium, 0.3, 1, 3)
    n_spike = count(noise_spikes, 0.6, 1, 5)
    draws: list[tuple[str, int, Callable[[], tuple[str, Ellipsoid]]]] = [
        ("aortic_wall", n_aorta, lambda: ("aortic_wall", _aortic_wall(an, rng, z_lo, z_hi))),
        ("valve", n_valve, lambda: _valve(an, rng)),
        ("noise_spike", n_spike, lambda: ("noise_spike", _spike(an, rng, z_lo, z_hi))),
    ]
    for kind, n, draw in draws:
        placed = 0
        for _ in range(n * 20):
            if placed == n:
                break
            name, blob = draw()
            if not _clear(pts, rad, blob):
                continue
            lo, hi = (300.0, 1200.0) if kind != "noise_spike" else (400.0, 1500.0)
            out.append(Distractor(name, blob, float(rng.uniform(lo, hi)) - 40.0))
            placed += 1
    return out
