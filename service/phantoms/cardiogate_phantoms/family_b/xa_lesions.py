"""Stenoses of family B: smooth, sometimes asymmetric and eccentric lumen narrowings.

A lesion narrows the lumen diameter by ``percent`` at its centre (percent diameter stenosis,
so the minimal lumen diameter is the reference diameter times ``1 - percent / 100``) and
not at all ``length_mm`` apart: the proximal and distal shoulders are raised cosines of
different lengths (``skew``) and sharpness.  An eccentric lesion moves the lumen centre off
the vessel axis, towards the wall the plaque spares, by a fraction of the lost radius.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .xa_heart import F64
from .xa_tree3d import Vessel, artery_of_vessel

SIGNIFICANT_PERCENT = 50.0
_SPEC_KEYS = {"vessel", "position", "percent", "length_mm"}
# seeded lesions: how many (0-3) and where they fall
_COUNT_P = (0.27, 0.35, 0.23, 0.15)
_VESSEL_WEIGHT = {
    "LM": 0.3,
    "LAD": 3.0,
    "LCX": 1.8,
    "D1": 1.0,
    "D2": 0.5,
    "OM1": 1.0,
    "OM2": 0.5,
    "RCA": 3.0,
    "PDA": 0.6,
    "AM1": 0.4,
}
_MIN_REFERENCE_MM = 1.5


@dataclass(frozen=True)
class Lesion:
    """One stenosis and the shape it is drawn with."""

    vessel: str
    position: float  # fraction of the vessel's arc length from its origin
    percent: float  # diameter stenosis
    length_mm: float
    skew: float  # share of the length proximal of the centre (0.3-0.7)
    sharpness: float  # exponent of the shoulders: < 1 blunt, > 1 sharp
    eccentricity: float  # 0 concentric ... 0.6 lumen pushed to one wall
    angle: float  # rad, the direction (about the axis) the lumen is pushed

    @property
    def significant(self) -> bool:
        """Whether the diameter stenosis is at least 50 %."""
        return self.percent >= SIGNIFICANT_PERCENT


def _shape(rng: np.random.Generator) -> dict[str, float]:
    eccentric = rng.random() < 0.45
    return {
        "skew": float(rng.uniform(0.3, 0.7)),
        "sharpness": float(rng.uniform(0.6, 1.6)),
        "eccentricity": float(rng.uniform(0.25, 0.6)) if eccentric else 0.0,
        "angle": float(rng.uniform(0.0, 2 * math.pi)),
    }


def lesion_from_spec(spec: Mapping[str, Any], rng: np.random.Generator) -> Lesion:
    """A :class:`Lesion` from ``{"vessel", "position", "percent", "length_mm"}``.

    ``position`` defaults to 0.4 and ``length_mm`` to 8; the shape is drawn from *rng*.
    ``ValueError`` names the key that is missing, unknown or out of range.
    """
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise ValueError(f"stenosis keys must be among {sorted(_SPEC_KEYS)}: got {sorted(unknown)}")
    if "vessel" not in spec or "percent" not in spec:
        raise ValueError("a stenosis needs at least 'vessel' and 'percent'")
    vessel = str(spec["vessel"])
    artery_of_vessel(vessel)
    position = float(spec.get("position", 0.4))
    percent = float(spec["percent"])
    length = float(spec.get("length_mm", 8.0))
    if not 0.0 < position < 1.0:
        raise ValueError(f"stenosis position must be in (0, 1), got {position} for {vessel}")
    if not 0.0 <= percent < 100.0:
        raise ValueError(f"stenosis percent must be in [0, 100), got {percent} for {vessel}")
    if not 0.5 <= length <= 60.0:
        raise ValueError(f"stenosis length_mm must be in [0.5, 60], got {length} for {vessel}")
    return Lesion(vessel, position, percent, length, **_shape(rng))


def narrowing(vessel: Vessel, lesions: Sequence[Lesion]) -> tuple[F64, F64, F64]:
    """Lumen radius (mm), lumen-centre offset (mm) and offset angle along *vessel*.

    The offset is ``eccentricity * (reference - lumen radius)``, so the lumen stays inside
    the vessel wall.
    """
    factor = np.ones_like(vessel.radius_mm)
    offset = np.zeros_like(vessel.radius_mm)
    angle = np.zeros_like(vessel.radius_mm)
    for les in lesions:
        if les.vessel != vessel.name:
            continue
        bump = _bump(vessel.arc_mm - les.position * vessel.length_mm, les)
        loss = les.percent / 100.0 * bump
        factor *= 1.0 - loss
        shift = les.eccentricity * loss * vessel.radius_mm
        angle = np.where(shift > offset, les.angle, angle)
        offset = np.maximum(offset, shift)
    return vessel.radius_mm * np.maximum(factor, 0.02), offset, angle


def _bump(d: F64, les: Lesion) -> F64:
    """1 at the lesion centre, 0 beyond its ends: raised cosines of unequal length."""
    half = np.where(d < 0, les.skew * les.length_mm, (1 - les.skew) * les.length_mm)
    x = np.clip(np.abs(d) / half, 0.0, 1.0)
    out: F64 = (0.5 * (1 + np.cos(math.pi * x))) ** les.sharpness
    return out


def random_lesions(
    rng: np.random.Generator,
    tree: Sequence[Vessel],
    inside: Callable[[str, float], bool],
) -> list[Lesion]:
    """0-3 seeded lesions of 20-95 %, 3-20 mm long, on vessels at least 1.5 mm wide, apart
    from each other and where *inside(vessel, position)* says they stay in the image."""
    n = int(rng.choice(len(_COUNT_P), p=_COUNT_P))
    names = [v.name for v in tree if v.name in _VESSEL_WEIGHT]
    weights = np.array([_VESSEL_WEIGHT[name] for name in names])
    by_name = {v.name: v for v in tree}
    out: list[Lesion] = []
    for _ in range(n):
        percent = float(rng.uniform(20.0, 95.0))
        length = float(np.exp(rng.uniform(math.log(3.0), math.log(20.0))))
        shape = _shape(rng)
        for _try in range(40):
            vessel = by_name[names[int(rng.choice(len(names), p=weights / weights.sum()))]]
            lo, hi = (0.3, 0.7) if vessel.name == "LM" else (0.08, 0.8)
            position = float(rng.uniform(lo, hi))
            half = 0.5 * length / vessel.length_mm
            if (
                half < min(position, 1 - position)
                and vessel.radius_at(position) * 2 >= _MIN_REFERENCE_MM
                and _apart(out, vessel, position, length)
                and inside(vessel.name, position)
            ):
                out.append(
                    Lesion(vessel.name, position, round(percent, 1), round(length, 2), **shape)
                )
                break
    return out


def _apart(placed: Sequence[Lesion], vessel: Vessel, position: float, length: float) -> bool:
    for les in placed:
        if les.vessel == vessel.name:
            gap = abs(les.position - position) * vessel.length_mm
            if gap < 0.5 * (les.length_mm + length) + 3.0:
                return False
    return True
