"""The phantom's coronary calcium truth, computed from the published rules.

This is the phantoms' own arithmetic, written apart from the service's scoring (which it
exists to test) and agreeing with it by definition, not by shared code:

- a lesion is a set of 8-connected pixels of one slice at or above 130 HU whose area is
  at least the minimum (1 mm2); it belongs to the artery most of its pixels are labelled
  with, and a lesion mostly unlabelled (ties included) is not coronary calcium;
- Agatston (Agatston et al., JACC 1990) = area x density weight x (slice increment / 3 mm),
  the weight 1, 2, 3, 4 for a peak of 130-199, 200-299, 300-399, >= 400 HU;
- volume = voxel count x voxel volume (pixel area x slice increment);
- the classic categories 0, 1-10, 11-100, 101-400, > 400, and CAC-DRS (Hecht et al.,
  JCCT 2018): A0 = 0, A1 = 1-99, A2 = 100-299, A3 >= 300, with N the number of arteries
  with calcium (``"A2/N3"``); A0 has no vessel modifier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

ARTERIES = ("LM", "LAD", "LCX", "RCA")
"""Labels 1-4 of the phantom; 0 is not coronary."""
THRESHOLD_HU = 130.0
MIN_AREA_MM2 = 1.0
REFERENCE_INCREMENT_MM = 3.0
_WEIGHT_FLOORS_HU = (200.0, 300.0, 400.0)
_CONNECTIVITY = np.ones((3, 3), dtype=bool)  # 8-connected in-plane


@dataclass(frozen=True, slots=True)
class TruthLesion:
    """One lesion on one slice: slice index and pixel centroid (row, column) in the volume."""

    slice_index: int
    centroid_rc: tuple[float, float]
    artery: str
    voxels: int
    area_mm2: float
    peak_hu: float
    agatston: float
    volume_mm3: float


@dataclass(frozen=True)
class CalciumTruth:
    """Agatston score and volume (mm3) keyed by ``"total"`` and each of :data:`ARTERIES`,
    and the lesions they add up."""

    agatston: dict[str, float]
    volume_mm3: dict[str, float]
    lesions: list[TruthLesion] = field(default_factory=list)


class _Component(NamedTuple):
    artery: str
    voxels: int
    peak_hu: float
    centroid_rc: tuple[float, float]


def density_weight(peak_hu: float) -> int:
    """Agatston's weight of a lesion's peak HU: 1 below 200, 2 below 300, 3 below 400, else 4."""
    return 1 + sum(peak_hu >= floor for floor in _WEIGHT_FLOORS_HU)


def _centroid(total: int, count: int, first: int) -> float:
    """Mean of ``count`` pixel indices summing to ``total``, taken from the component's first
    row (or column) ``first`` as the service takes it, so lesions match exactly by place."""
    return (total - count * first) / count + first


def _coronary_components(
    hu: NDArray[np.float32], labels: NDArray[np.uint8], pixel_area_mm2: float
) -> list[_Component]:
    """The coronary lesions of one slice, in the order ``ndimage.label`` numbers them."""
    components, count = ndimage.label(hu >= THRESHOLD_HU, structure=_CONNECTIVITY)
    if count == 0:
        return []
    rows, cols = np.nonzero(components)
    ids = components[rows, cols].astype(np.int64)
    sizes = np.bincount(ids, minlength=count + 1)
    # votes[i, a]: pixels of component i labelled a (0 none, 1-4 the arteries)
    votes = np.zeros((count + 1, len(ARTERIES) + 1), dtype=np.int64)
    np.add.at(votes, (ids, labels[rows, cols].astype(np.int64)), 1)
    peaks = np.full(count + 1, -np.inf)
    np.maximum.at(peaks, ids, hu[rows, cols].astype(np.float64))
    row_sums = np.bincount(ids, weights=rows, minlength=count + 1)  # integers: exact
    col_sums = np.bincount(ids, weights=cols, minlength=count + 1)
    first_rows = np.full(count + 1, hu.shape[0], dtype=np.int64)
    first_cols = np.full(count + 1, hu.shape[1], dtype=np.int64)
    np.minimum.at(first_rows, ids, rows)
    np.minimum.at(first_cols, ids, cols)
    out = []
    for i in range(1, count + 1):
        winner = int(np.argmax(votes[i]))  # the first of equal counts: background wins ties
        n = int(sizes[i])
        if winner == 0 or n * pixel_area_mm2 < MIN_AREA_MM2:
            continue
        centroid = (
            _centroid(int(row_sums[i]), n, int(first_rows[i])),
            _centroid(int(col_sums[i]), n, int(first_cols[i])),
        )
        out.append(_Component(ARTERIES[winner - 1], n, float(peaks[i]), centroid))
    return out


def calcium_truth(
    hu: NDArray[np.float32],
    labels: NDArray[np.uint8],
    pixel_spacing_mm: float,
    slice_increment_mm: float,
) -> CalciumTruth:
    """Per-artery and total Agatston score and volume of ``hu`` (slices, rows, columns)
    where ``labels`` (0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA) marks the coronary calcium."""
    if hu.shape != labels.shape or hu.ndim != 3:
        raise ValueError("hu and labels must be (slices, rows, columns) of one shape")
    pixel_area = pixel_spacing_mm * pixel_spacing_mm
    scale = slice_increment_mm / REFERENCE_INCREMENT_MM
    lesions = []
    for z in np.flatnonzero(labels.any(axis=(1, 2))):  # an unlabelled slice cannot score
        for c in _coronary_components(hu[z], labels[z], pixel_area):
            area = c.voxels * pixel_area
            lesions.append(
                TruthLesion(
                    slice_index=int(z),
                    centroid_rc=c.centroid_rc,
                    artery=c.artery,
                    voxels=c.voxels,
                    area_mm2=area,
                    peak_hu=c.peak_hu,
                    agatston=area * density_weight(c.peak_hu) * scale,
                    volume_mm3=c.voxels * pixel_area * slice_increment_mm,
                )
            )
    agatston, volume = {}, {}
    for key in ("total", *ARTERIES):
        mine = [les for les in lesions if key in ("total", les.artery)]
        agatston[key] = math.fsum(les.agatston for les in mine)
        volume[key] = math.fsum(les.volume_mm3 for les in mine)
    return CalciumTruth(agatston, volume, lesions)


def classic_category(total_agatston: float) -> str:
    """The classic category of a total Agatston score: 0, 1-10, 11-100, 101-400, >400."""
    for ceiling, name in ((0.0, "0"), (10.0, "1-10"), (100.0, "11-100"), (400.0, "101-400")):
        if total_agatston <= ceiling:
            return name
    return ">400"


def cac_drs(agatston: dict[str, float]) -> str:
    """CAC-DRS of per-artery scores: ``"A0"`` or ``"A<band>/N<arteries with calcium>"``."""
    total = agatston["total"]
    if total <= 0:
        return "A0"
    band = 1 + (total >= 100) + (total >= 300)
    arteries = sum(agatston.get(artery, 0.0) > 0 for artery in ARTERIES)
    return f"A{band}/N{arteries}"
