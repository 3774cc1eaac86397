"""Family B's calcium truth: the published Agatston arithmetic, written for this family.

A lesion is one 8-connected region of pixels at or above 130 HU on one slice whose area is
at least 1 mm2; it belongs to the class most of its pixels carry in a label map, a tie
going to the lower class (so a lesion tied with, or mostly of, class 0 belongs to none).
Its Agatston score is area x density weight x (slice increment / 3 mm), the weight 1, 2,
3, 4 for a peak of 130-199, 200-299, 300-399, >= 400 HU (Agatston et al., JACC 1990);
its volume is area x increment.  The centroid is the mean row and column of its pixels,
computed as the component's bounding-box corner plus the mean offset from it.  All
components of a slice are measured at once (bincount over the component image) rather
than one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

ARTERIES = ("LM", "LAD", "LCX", "RCA")
THRESHOLD_HU = 130.0
MIN_AREA_MM2 = 1.0
_REFERENCE_MM = 3.0
_NEIGHBOURS = np.ones((3, 3), dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class LesionB:
    """One scored lesion: its slice and pixel centroid in the volume, and its scores."""

    slice_index: int
    centroid_rc: tuple[float, float]
    artery: str
    voxels: int
    area_mm2: float
    peak_hu: float
    agatston: float
    volume_mm3: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "slice_index": self.slice_index,
            "centroid_rc": list(self.centroid_rc),
            "artery": self.artery,
            "voxels": self.voxels,
            "area_mm2": self.area_mm2,
            "peak_hu": self.peak_hu,
            "agatston": self.agatston,
            "volume_mm3": self.volume_mm3,
        }


@dataclass(frozen=True)
class CalciumTruthB:
    """Per-artery and total Agatston score and volume, keyed ``"total"`` and each artery."""

    agatston: dict[str, float]
    volume_mm3: dict[str, float]
    lesions: list[LesionB] = field(default_factory=list)


def weight(peak_hu: float) -> int:
    """Agatston density weight of a lesion's peak."""
    return 1 + sum(peak_hu >= floor for floor in (200.0, 300.0, 400.0))


def components(
    hu_slice: NDArray[Any], classes: NDArray[Any], pixel_area: float, n_classes: int
) -> list[tuple[tuple[float, float], int, int, float, float]]:
    """Each kept component of one slice: centroid (row, col), majority class (0 none),
    pixel count, area mm2 and peak HU."""
    image, count = ndimage.label(hu_slice >= THRESHOLD_HU, structure=_NEIGHBOURS)
    if not count:
        return []
    rows, cols = np.nonzero(image)
    ids = image[rows, cols]
    n = np.bincount(ids, minlength=count + 1)
    first_row = np.full(count + 1, np.iinfo(np.int64).max)
    first_col = np.full(count + 1, np.iinfo(np.int64).max)
    np.minimum.at(first_row, ids, rows)
    np.minimum.at(first_col, ids, cols)
    off_r = np.bincount(ids, weights=rows - first_row[ids], minlength=count + 1)
    off_c = np.bincount(ids, weights=cols - first_col[ids], minlength=count + 1)
    votes = np.zeros((count + 1, n_classes), dtype=np.int64)
    np.add.at(votes, (ids, classes[rows, cols].astype(np.int64)), 1)
    peaks = np.full(count + 1, -np.inf)
    np.maximum.at(peaks, ids, hu_slice[rows, cols].astype(np.float64))
    out = []
    for k in range(1, count + 1):
        area = float(n[k]) * pixel_area
        if area < MIN_AREA_MM2:
            continue
        winner = int(np.argmax(votes[k]))  # a tie goes to the lower class, so 0 beats all
        centroid = (
            float(off_r[k] / n[k] + first_row[k]),
            float(off_c[k] / n[k] + first_col[k]),
        )
        out.append((centroid, winner, int(n[k]), area, float(peaks[k])))
    return out


def score(
    hu: NDArray[Any],
    classes: NDArray[Any],
    spacing_mm: float,
    increment_mm: float,
    names: tuple[str, ...] = ARTERIES,
) -> CalciumTruthB:
    """Agatston score, volume and lesions of ``hu`` (slices, rows, columns) by the classes
    ``classes`` (0 none, 1.. the ``names``), square pixels of ``spacing_mm``."""
    pixel_area = float(spacing_mm) * float(spacing_mm)
    scale = increment_mm / _REFERENCE_MM
    agatston = dict.fromkeys(("total", *names), 0.0)
    volume = dict.fromkeys(("total", *names), 0.0)
    lesions = []
    # a lesion of a class holds pixels of it: only slices with both can have one
    hot = np.flatnonzero(classes.any(axis=(1, 2)) & (hu >= THRESHOLD_HU).any(axis=(1, 2)))
    for z in hot:
        for centroid, winner, voxels, area, peak in components(
            hu[z], classes[z], pixel_area, len(names) + 1
        ):
            if winner == 0:
                continue
            name = names[winner - 1]
            lesion = LesionB(
                slice_index=int(z),
                centroid_rc=centroid,
                artery=name,
                voxels=voxels,
                area_mm2=area,
                peak_hu=peak,
                agatston=area * weight(peak) * scale,
                volume_mm3=area * increment_mm,
            )
            lesions.append(lesion)
            for key in ("total", name):
                agatston[key] += lesion.agatston
                volume[key] += lesion.volume_mm3
    return CalciumTruthB(agatston, volume, lesions)


def category(total: float) -> str:
    """Classic risk category of a total Agatston score: 0, 1-10, 11-100, 101-400, >400."""
    for upper, name in ((0.0, "0"), (10.0, "1-10"), (100.0, "11-100"), (400.0, "101-400")):
        if total <= upper:
            return name
    return ">400"
