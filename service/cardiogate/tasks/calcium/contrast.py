"""Image evidence that a CT series is contrast-enhanced, so not a calcium-scoring exam.

Unenhanced blood measures 30-60 HU; after an iodine bolus the blood pool (ventricles,
atria, aorta, pulmonary trunk) measures 200-600 HU, and Agatston scoring counts every pixel
from 130 HU, so an enhanced series cannot be scored. The header may not say so
(``ContrastBolusAgent`` is Type 2 and often empty; :mod:`cardiogate.pipeline.router` uses
it when it is there), hence this check on the pixels.

Blood pool, in-plane on each slice looked at: a region of 150-700 HU (:data:`POOL_HU`)
thick enough to keep a core after an erosion of :data:`ERODE_MM` (ribs, sternum, the
vertebral arch, calcified plaque and partial volume are thinner), and that is not bone.
Cancellous bone is as dense as enhanced blood and as thick, but cortex rims it, denser than
its inside, while a blood pool's surroundings (myocardium, vessel wall, fat, lung) are
darker than it: a core whose neighbourhood out to :data:`RIM_MM` beyond the region has more
than :data:`MAX_DENSE_RIM` of its pixels :data:`DENSER_HU` over the core's median is bone.
The series is enhanced when the cores add up to :data:`MIN_POOL_ML`: a non-contrast chest
has none, the cores of an enhanced heart and aorta hold tens of mL.

It looks at up to :data:`SAMPLED_SLICES` slices spread over the series, averaged in-plane
to about :data:`PIXEL_MM` pixels (which also averages the noise away): about 10 ms for 64
slices of 512 x 512. Pixels coarser than :data:`MAX_SPACING_MM` blur the cortex away, so
such a series is not judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from cardiogate.analyses.ct_volume import CTVolume
from cardiogate.errors import NotAnalysableError

POOL_HU = (150.0, 700.0)
ERODE_MM = 7.0
RIM_MM = 2.0
DENSER_HU = 100.0
MAX_DENSE_RIM = 0.05
MIN_POOL_ML = 5.0
SAMPLED_SLICES = 16
PIXEL_MM = 2.0
MAX_SPACING_MM = 2.0  # coarser pixels lose the cortex that tells bone from blood

# in-plane neighbours only: the slices looked at are apart
_IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)


@dataclass(frozen=True, slots=True)
class BloodPool:
    """What :func:`measure_blood_pool` found: the volume of the enhanced-looking pool
    (the cores of its regions, so an underestimate) and its median HU (None when none);
    ``measured`` is False when the pixels are too coarse to tell bone from blood."""

    volume_ml: float
    median_hu: float | None
    measured: bool = True

    @property
    def enhanced(self) -> bool:
        return self.volume_ml >= MIN_POOL_ML


def _downsample(volume: CTVolume) -> tuple[np.ndarray[Any, Any], float, float]:
    """The sampled slices averaged in blocks of about ``PIXEL_MM``; with the pixel size
    (mm) and the thickness of series (mm) each sampled slice stands for."""
    hu = volume.hu
    n = hu.shape[0]
    picks = np.unique(np.linspace(0, n - 1, min(n, SAMPLED_SLICES)).round().astype(np.intp))
    slab_mm = n * max(volume.slice_increment_mm, 1e-3) / len(picks)
    spacing = volume.pixel_spacing_mm
    br, bc = (max(1, round(PIXEL_MM / max(s, 1e-3))) for s in spacing)
    rows, cols = hu.shape[1] // br, hu.shape[2] // bc
    sampled = hu[picks]
    low = np.zeros((len(picks), rows, cols), dtype=np.float32)
    for i in range(br):  # strided sums: several times faster than a reshaped mean
        for j in range(bc):
            low += sampled[:, i : rows * br : br, j : cols * bc : bc]
    low /= np.float32(br * bc)
    pixel_mm = float(np.sqrt(spacing[0] * br * spacing[1] * bc))
    return low, pixel_mm, slab_mm


def _disk(radius: int) -> np.ndarray[Any, Any]:
    """An in-plane disk footprint of ``radius`` pixels."""
    r = np.arange(-radius, radius + 1)
    disk: np.ndarray[Any, Any] = (r[:, None] ** 2 + r[None, :] ** 2 <= radius**2)[None]
    return disk


def _medians(values: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], k: int) -> Any:
    """The (lower) median of ``values`` in each label 1..k (every label present)."""
    inside = labels > 0
    lab, val = labels[inside], values[inside]
    order = np.lexsort((val, lab))
    counts = np.bincount(lab, minlength=k + 1)[1:]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return val[order][starts + (counts - 1) // 2]


def measure_blood_pool(volume: CTVolume) -> BloodPool:
    """Find the enhanced-looking blood pool of ``volume`` (see the module docstring)."""
    if max(volume.pixel_spacing_mm) > MAX_SPACING_MM:
        return BloodPool(0.0, None, measured=False)
    low, pixel_mm, slab_mm = _downsample(volume)
    if low.size == 0:
        return BloodPool(0.0, None)
    dense_enough = (low >= POOL_HU[0]) & (low <= POOL_HU[1])
    erode = max(1, round(ERODE_MM / pixel_mm))
    cores = ndimage.binary_erosion(dense_enough, _disk(erode))
    labels, k = ndimage.label(cores, _IN_PLANE)
    if k == 0:
        return BloodPool(0.0, None)
    medians = _medians(low, labels, k)
    reach = 2 * (erode + max(1, round(RIM_MM / pixel_mm))) + 1
    around = ndimage.maximum_filter(labels, size=(1, reach, reach))  # each core and its rim
    denser = low > np.concatenate([[np.inf], medians + DENSER_HU])[around]
    sizes = np.bincount(around.ravel(), minlength=k + 1)
    dense_share = np.bincount(around[denser], minlength=k + 1) / np.maximum(sizes, 1)
    pool = np.flatnonzero(dense_share[1:] <= MAX_DENSE_RIM) + 1
    if pool.size == 0:
        return BloodPool(0.0, None)
    in_pool = np.isin(labels, pool)
    volume_ml = float(in_pool.sum()) * pixel_mm**2 * slab_mm / 1000.0
    return BloodPool(round(volume_ml, 1), round(float(np.median(low[in_pool])), 1))


def check_not_enhanced(volume: CTVolume) -> BloodPool:
    """Raise :class:`NotAnalysableError` when ``volume`` looks contrast-enhanced; else
    return what was measured."""
    pool = measure_blood_pool(volume)
    if pool.enhanced:
        raise NotAnalysableError(
            f"not scored: contrast-enhanced (blood pool median {pool.median_hu:.0f} HU "
            f"over {pool.volume_ml:.0f} mL)"
        )
    return pool
