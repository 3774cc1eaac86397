"""Coronary artery calcium scoring arithmetic (Agatston, volume, mass) and risk categories.

Pure functions over arrays, usable without a model: lesions are 2D 8-connected regions of
``hu >= threshold_hu`` on each slice with an area of at least ``min_area_mm2``; each lesion
takes the artery that most of its pixels are labelled with, and a lesion mostly labelled
background (0) is not coronary calcium and is dropped (ties go to background). A lesion
mostly labelled aortic valve (5, from a model that has that class) is aortic valve calcium:
it is scored with the same arithmetic but apart, and never counts in the coronary totals.
Given the model's voxel probabilities, a lesion also carries the mean probability of its
artery over its pixels (how sure the model is of the assignment). Then

- Agatston = sum over lesions of area_mm2 x weight(peak HU) x (slice increment / 3 mm),
  weight 1 for peak HU 130-199, 2 for 200-299, 3 for 300-399, 4 for >= 400;
- volume (mm3) = sum of lesion area_mm2 x slice increment (increment, not thickness, so
  overlapping reconstructions do not count a voxel twice);
- mass (mg) = sum of lesion volume x mean HU x calibration factor, only when a factor is
  known (DICOM Calcium Scoring Mass Factor, (0018,9351)/(0018,9352), or settings).

References: ``shared/reference/sr-and-scoring.md`` section 1 (Siemens syngo manual,
Hecht et al. 2018 for CAC-DRS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy import ndimage

ARTERIES = ("LM", "LAD", "LCX", "RCA")  # labels 1..4; 0 is "not coronary"
AORTIC_VALVE = "AV"  # label 5: aortic valve calcium, scored apart from the arteries
LABEL_NAMES = (*ARTERIES, AORTIC_VALVE)  # the names of labels 1..5
REFERENCE_INCREMENT_MM = 3.0
_EIGHT_CONNECTED = ndimage.generate_binary_structure(2, 2)


@dataclass(frozen=True, slots=True)
class Lesion:
    """One calcified lesion on one slice (pixel coordinates; the caller maps to patient mm)."""

    slice_index: int
    centroid_rc: tuple[float, float]
    area_mm2: float
    peak_hu: float
    mean_hu: float
    artery: str
    agatston: float
    volume_mm3: float
    artery_probability: float | None = None  # mean over its pixels, when probabilities given


@dataclass(frozen=True)
class VoxelProbabilities:
    """A model's class probabilities at some voxels of a volume of ``shape``: ``where``
    indexes them as ``np.nonzero`` does and ``probabilities`` is ``(voxels, 5)`` over
    background, LM, LAD, LCX, RCA, or ``(voxels, 6)`` with AV last."""

    shape: tuple[int, ...]
    where: tuple[np.ndarray[Any, Any], ...]
    probabilities: np.ndarray[Any, Any]

    @cached_property
    def _sorted(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        flat = np.ravel_multi_index(self.where, self.shape)
        order = np.argsort(flat, kind="stable")
        return flat[order], order

    def mean(
        self, z: int, rows: np.ndarray[Any, Any], cols: np.ndarray[Any, Any], label: int
    ) -> float:
        """The mean probability of class ``label`` over the voxels ``(z, rows, cols)``; a
        voxel without a probability counts as 0."""
        flat, order = self._sorted
        if not len(flat) or not len(rows):
            return 0.0
        wanted = np.ravel_multi_index((np.full_like(rows, z), rows, cols), self.shape)
        at = np.minimum(np.searchsorted(flat, wanted), len(flat) - 1)
        found = flat[at] == wanted
        return float(np.where(found, self.probabilities[order[at], label], 0.0).mean())


def lesion_mass_mg(lesion: Lesion, calibration_mg_per_hu_ml: float) -> float:
    """A lesion's calcium mass: volume x mean HU x calibration factor (the factor in
    mg/cm3 per HU as DICOM gives it; the volume converted to cm3)."""
    return lesion.volume_mm3 / 1000.0 * lesion.mean_hu * calibration_mg_per_hu_ml


@dataclass(frozen=True, slots=True)
class CalciumScores:
    """Per-artery and total coronary scores; ``agatston`` and ``volume_mm3`` are keyed by
    ``"total"`` and each of :data:`ARTERIES`. ``valve_lesions`` are the lesions labelled
    :data:`AORTIC_VALVE`, which no coronary score includes."""

    agatston: dict[str, float]
    volume_mm3: dict[str, float]
    lesions: list[Lesion] = field(default_factory=list)
    valve_lesions: list[Lesion] = field(default_factory=list)

    def mass_mg(self, calibration_mg_per_hu_ml: float) -> dict[str, float]:
        """Coronary calcium mass per artery and total (:func:`lesion_mass_mg`)."""
        mass = dict.fromkeys(("total", *ARTERIES), 0.0)
        for lesion in self.lesions:
            m = lesion_mass_mg(lesion, calibration_mg_per_hu_ml)
            mass[lesion.artery] += m
            mass["total"] += m
        return mass

    @property
    def valve_agatston(self) -> float:
        """The Agatston score of the aortic valve calcium."""
        return sum((lesion.agatston for lesion in self.valve_lesions), 0.0)

    @property
    def valve_volume_mm3(self) -> float:
        """The volume of the aortic valve calcium."""
        return sum((lesion.volume_mm3 for lesion in self.valve_lesions), 0.0)

    def valve_mass_mg(self, calibration_mg_per_hu_ml: float) -> float:
        """The mass of the aortic valve calcium (:func:`lesion_mass_mg`)."""
        return sum(
            (lesion_mass_mg(lesion, calibration_mg_per_hu_ml) for lesion in self.valve_lesions),
            0.0,
        )

    def as_dict(self) -> dict[str, Any]:
        return {"agatston": dict(self.agatston), "volume_mm3": dict(self.volume_mm3)}


def density_weight(peak_hu: float) -> int:
    """Agatston density weighting factor of a lesion's peak HU (130-199:1 ... >=400:4)."""
    if peak_hu >= 400:
        return 4
    if peak_hu >= 300:
        return 3
    if peak_hu >= 200:
        return 2
    return 1


def agatston_scores(
    hu: np.ndarray[Any, Any],
    artery_labels: np.ndarray[Any, Any],
    pixel_spacing_mm: tuple[float, float],
    slice_increment_mm: float,
    *,
    threshold_hu: float = 130.0,
    min_area_mm2: float = 1.0,
) -> CalciumScores:
    """Agatston score and calcium volume per artery and in total (see :func:`score_lesions`,
    whose parameters these are)."""
    scores, _ = score_lesions(
        hu,
        artery_labels,
        pixel_spacing_mm,
        slice_increment_mm,
        threshold_hu=threshold_hu,
        min_area_mm2=min_area_mm2,
    )
    return scores


def score_lesions(
    hu: np.ndarray[Any, Any],
    artery_labels: np.ndarray[Any, Any],
    pixel_spacing_mm: tuple[float, float],
    slice_increment_mm: float,
    *,
    threshold_hu: float = 130.0,
    min_area_mm2: float = 1.0,
    probabilities: VoxelProbabilities | None = None,
) -> tuple[CalciumScores, np.ndarray[Any, np.dtype[np.uint8]]]:
    """Agatston score and calcium volume per artery and in total, the aortic valve
    lesions, and the pixels scored.

    Parameters
    ----------
    hu : (slices, rows, columns) array
        Hounsfield units.
    artery_labels : (slices, rows, columns) integer array
        0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA, 5 AV (e.g. a model's argmax).
    pixel_spacing_mm : (row spacing, column spacing)
        PixelSpacing of the slices.
    slice_increment_mm : float
        Distance between slice centres; the Agatston sum is scaled by increment / 3 mm.
    threshold_hu, min_area_mm2 : float
        Candidate threshold and the smallest lesion area kept.
    probabilities : VoxelProbabilities, optional
        The model's probabilities behind ``artery_labels``; each lesion then carries the
        mean probability of its artery (or AV) over its pixels
        (``Lesion.artery_probability``).

    Returns
    -------
    scores : CalciumScores
        Per-artery and total scores and the lesions they add up; the aortic valve
        lesions (``artery`` AV) apart, in ``valve_lesions``.
    scored : (slices, rows, columns) uint8 array
        The pixels that were counted, labelled with their lesion's artery (1 LM .. 4 RCA,
        5 AV; 0 elsewhere): every pixel at or above ``threshold_hu`` of a kept lesion. A
        lesion takes one label by majority, so a pixel may differ from ``artery_labels``.
    """
    if hu.shape != artery_labels.shape or hu.ndim != 3:
        raise ValueError("hu and artery_labels must be (slices, rows, columns) of one shape")
    if slice_increment_mm <= 0 or min(pixel_spacing_mm) <= 0:
        raise ValueError("pixel spacing and slice increment must be positive")
    pixel_area = float(pixel_spacing_mm[0]) * float(pixel_spacing_mm[1])
    scale = slice_increment_mm / REFERENCE_INCREMENT_MM
    agatston = dict.fromkeys(("total", *ARTERIES), 0.0)
    volume = dict.fromkeys(("total", *ARTERIES), 0.0)
    lesions: list[Lesion] = []
    valve_lesions: list[Lesion] = []
    scored = np.zeros(hu.shape, dtype=np.uint8)
    classes = len(LABEL_NAMES) + 1

    for z in np.flatnonzero((hu >= threshold_hu).any(axis=(1, 2))):
        mask = hu[z] >= threshold_hu
        components, _ = ndimage.label(mask, structure=_EIGHT_CONNECTED)
        slices = ndimage.find_objects(components)
        for index, window in enumerate(slices, start=1):
            if window is None:
                continue
            inside = components[window] == index
            area = float(inside.sum()) * pixel_area
            if area < min_area_mm2:
                continue
            votes = np.bincount(artery_labels[z][window][inside].ravel(), minlength=classes)
            label = int(np.argmax(votes[:classes]))
            if label == 0:
                continue
            values = hu[z][window][inside]
            peak = float(values.max())
            artery = LABEL_NAMES[label - 1]
            score = area * density_weight(peak) * scale
            lesion_volume = area * slice_increment_mm
            scored[z][window][inside] = label
            rows, cols = np.nonzero(inside)
            sure = (
                None
                if probabilities is None
                else probabilities.mean(
                    int(z), rows + window[0].start, cols + window[1].start, label
                )
            )
            lesion = Lesion(
                slice_index=int(z),
                centroid_rc=(
                    float(rows.mean() + window[0].start),
                    float(cols.mean() + window[1].start),
                ),
                area_mm2=area,
                peak_hu=peak,
                mean_hu=float(values.mean()),
                artery=artery,
                agatston=score,
                volume_mm3=lesion_volume,
                artery_probability=sure,
            )
            if artery == AORTIC_VALVE:
                valve_lesions.append(lesion)
                continue
            lesions.append(lesion)
            for key in (artery, "total"):
                agatston[key] += score
                volume[key] += lesion_volume
    return CalciumScores(agatston, volume, lesions, valve_lesions), scored


def classic_category(total_agatston: float) -> str:
    """Classic risk category: 0, 1-10, 11-100, 101-400, >400."""
    if total_agatston <= 0:
        return "0"
    if total_agatston <= 10:
        return "1-10"
    if total_agatston <= 100:
        return "11-100"
    if total_agatston <= 400:
        return "101-400"
    return ">400"


def cac_drs(agatston: dict[str, float]) -> str:
    """CAC-DRS (Hecht et al., JCCT 2018): A0 = 0, A1 = 1-99, A2 = 100-299, A3 >= 300, with
    N = the number of vessels with calcium, e.g. ``"A2/N3"``; A0 has no vessel modifier."""
    total = agatston["total"]
    if total <= 0:
        return "A0"
    band = "A1" if total < 100 else "A2" if total < 300 else "A3"
    vessels = sum(1 for artery in ARTERIES if agatston.get(artery, 0.0) > 0)
    return f"{band}/N{vessels}"
