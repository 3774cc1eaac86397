"""Coronary calcium analysis of one CT series: load, label calcium by artery with the
model, score with :func:`~cardiogate.tasks.calcium.scoring.score_lesions`, and describe the result.

The model contract (the card's ``preprocessing``): input ``(batch, 2k + 1, rows, columns)``
float32, the slice and its ``k = context_slices`` neighbours on each side (edges repeated),
HU clipped to ``clip_hu`` then ``(hu - offset_hu) / scale_hu``; output logits
``(batch, 5, rows, columns)`` over ``labels`` = background, LM, LAD, LCX, RCA. With
``pixel_spacing_mm`` the slices are resampled to the spacing the model was trained at; with
``size_multiple`` they are padded (edge values) to a multiple of it and the logits cropped.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict
from pydicom.dataset import Dataset

from cardiogate.analyses.ct_volume import CTVolume, load_ct_series
from cardiogate.analyses.resample import resample_linear
from cardiogate.errors import CardiogateError
from cardiogate.inference import LoadedModel
from cardiogate.tasks.calcium import contrast
from cardiogate.tasks.calcium.review import (
    LOW_PEAK_HU,
    MIN_ARTERY_PROBABILITY,
    calcium_lesion_flags,
    calcium_reason,
)
from cardiogate.tasks.calcium.scoring import (
    ARTERIES,
    CalciumScores,
    VoxelProbabilities,
    cac_drs,
    classic_category,
    score_lesions,
)

NOTICE = (
    "AI-generated research output, not for clinical use. The model was trained on "
    "synthetic phantoms only; every finding needs review by a qualified reader."
)
LABELS = ["background", *ARTERIES]


class CalciumLesion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slice_index: int
    SOPInstanceUID: str
    position_mm: tuple[float, float, float]
    area_mm2: float
    peak_hu: float
    artery: str
    artery_probability: float | None  # the model's mean probability of ``artery``
    agatston: float
    volume_mm3: float
    review_flags: list[str]  # low_peak_hu, artery_in_doubt (cardiogate.tasks.calcium.review)


class ModelUsed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    provider: str


class CalciumResult(BaseModel):
    """What a calcium job reports; ``agatston`` and ``volume_mm3`` have keys total, LM,
    LAD, LCX, RCA (the shape ``truth.json`` of ``cardiogate synth ct`` uses too)."""

    model_config = ConfigDict(extra="forbid")

    task: Literal["calcium"] = "calcium"
    agatston: dict[str, float]
    volume_mm3: dict[str, float]
    mass_mg: dict[str, float] | None
    category: dict[str, str]
    lesions: list[CalciumLesion]
    needs_review: bool
    review_reason: str | None
    model: ModelUsed
    geometry: dict[str, Any]
    parameters: dict[str, float]
    timings_s: dict[str, float]
    notice: str = NOTICE


def model_inputs(
    hu: np.ndarray[Any, Any], indices: np.ndarray[Any, Any], preprocessing: dict[str, Any]
) -> np.ndarray[Any, Any]:
    """The model input for slices ``indices``: neighbours stacked as channels, normalised."""
    k = int(preprocessing.get("context_slices", 1))
    low, high = preprocessing.get("clip_hu", [-1024.0, 3071.0])
    offset = float(preprocessing.get("offset_hu", 0.0))
    scale = float(preprocessing.get("scale_hu", 1000.0))
    neighbours = np.clip(indices[:, None] + np.arange(-k, k + 1)[None, :], 0, len(hu) - 1)
    x: np.ndarray[Any, Any] = np.clip(hu[neighbours], low, high)
    normalised: np.ndarray[Any, Any] = ((x - offset) / scale).astype(np.float32)
    return normalised


def _model_grid(volume: CTVolume, preprocessing: dict[str, Any]) -> tuple[int, int]:
    rows, cols = volume.hu.shape[1:]
    target = preprocessing.get("pixel_spacing_mm")
    if not target:
        return rows, cols
    return (
        max(1, round(rows * volume.pixel_spacing_mm[0] / float(target))),
        max(1, round(cols * volume.pixel_spacing_mm[1] / float(target))),
    )


def pixel_probabilities(
    volume: CTVolume, model: LoadedModel, *, min_hu: float | None = None
) -> tuple[tuple[np.ndarray[Any, Any], ...], np.ndarray[Any, Any]]:
    """The model's class probabilities (softmax over ``labels``) for every voxel of at
    least ``min_hu`` (default: the card's ``candidate_hu``), slice batch by slice batch.

    Returns ``(where, probabilities)``: ``where`` indexes those voxels (as ``np.nonzero``
    does) and ``probabilities`` is ``(len(where[0]), 5)`` float32. When the card names the
    ``pixel_spacing_mm`` the model was trained at, slices are resampled to it (linear) and
    each native voxel reads the model pixel it falls in, so scoring always runs on the
    native pixels. Each slice of a batch and its neighbours is normalised and resampled
    once, then stacked into the model's channels.
    """
    if model.card.labels and model.card.labels != LABELS:
        raise CardiogateError(
            f"calcium model labels must be {LABELS}, card says {model.card.labels}"
        )
    pre = model.card.preprocessing
    batch = max(1, int(pre.get("batch_slices", 8)))
    k = int(pre.get("context_slices", 1))
    input_name = model.card.inputs[0].name
    rows, cols = volume.hu.shape[1:]
    grid = _model_grid(volume, pre)
    multiple = int(pre.get("size_multiple", 1))
    pad_r, pad_c = (-grid[0]) % multiple, (-grid[1]) % multiple
    back_rows = np.minimum(((np.arange(rows) + 0.5) * grid[0] / rows).astype(int), grid[0] - 1)
    back_cols = np.minimum(((np.arange(cols) + 0.5) * grid[1] / cols).astype(int), grid[1] - 1)
    floor = float(pre.get("candidate_hu", 130.0)) if min_hu is None else min_hu
    bright = volume.hu >= floor
    candidates = np.flatnonzero(bright.any(axis=(1, 2)))
    where: list[tuple[np.ndarray[Any, Any], ...]] = []
    chosen: list[np.ndarray[Any, Any]] = []
    for start in range(0, len(candidates), batch):
        indices = candidates[start : start + batch]
        neighbours = np.clip(indices[:, None] + np.arange(-k, k + 1), 0, len(volume.hu) - 1)
        needed = np.unique(neighbours)
        # each needed slice normalised (model_inputs with no context) and resampled once
        flat = model_inputs(volume.hu, needed, {**pre, "context_slices": 0})[:, 0]
        x = resample_linear(flat, grid)[np.searchsorted(needed, neighbours)]
        if pad_r or pad_c:  # the network's strides need sizes divisible by ``multiple``
            x = np.pad(x, ((0, 0), (0, 0), (0, pad_r), (0, pad_c)), mode="edge")
        [logits] = model.run({input_name: np.ascontiguousarray(x, dtype=np.float32)})[:1]
        # only where it is read: the bright native voxels, at their model pixel
        b, r, c = np.nonzero(bright[indices])
        z = logits[b, :, back_rows[r], back_cols[c]].astype(np.float32)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        chosen.append(z / z.sum(axis=1, keepdims=True))
        where.append((indices[b], r, c))
    if not chosen:
        empty = np.zeros(0, dtype=np.intp)
        return (empty, empty, empty), np.zeros((0, len(LABELS)), dtype=np.float32)
    return (
        tuple(np.concatenate([w[i] for w in where]) for i in range(3)),
        np.concatenate(chosen),
    )


def labels_from_probabilities(
    shape: tuple[int, ...],
    where: tuple[np.ndarray[Any, Any], ...],
    probabilities: np.ndarray[Any, Any],
    min_coronary_probability: float | None = None,
) -> np.ndarray[Any, Any]:
    """A label volume: the most likely class of each voxel in ``where`` (0 elsewhere).

    With ``min_coronary_probability``, a voxel is coronary only when the probabilities of
    the four arteries add up to at least that, and then takes the most likely artery.
    """
    labels = np.zeros(shape, dtype=np.uint8)
    if min_coronary_probability is None:
        labels[where] = np.argmax(probabilities, axis=1)
    else:
        coronary = 1.0 - probabilities[:, 0] >= min_coronary_probability
        artery = np.argmax(probabilities[:, 1:], axis=1) + 1
        labels[where] = np.where(coronary, artery, 0)
    return labels


def predict_labels(
    volume: CTVolume, model: LoadedModel, *, min_hu: float | None = None
) -> np.ndarray[Any, Any]:
    """Artery labels (0-4) for every voxel of at least ``min_hu`` (other voxels 0): the
    model's most likely class, or, when the card's ``postprocessing`` sets
    ``min_coronary_probability``, coronary only at that confidence."""
    return predict(volume, model, min_hu=min_hu)[0]


def predict(
    volume: CTVolume, model: LoadedModel, *, min_hu: float | None = None
) -> tuple[np.ndarray[Any, Any], VoxelProbabilities]:
    """:func:`predict_labels` and the probabilities the labels were taken from."""
    where, probabilities = pixel_probabilities(volume, model, min_hu=min_hu)
    threshold = model.card.postprocessing.get("min_coronary_probability")
    labels = labels_from_probabilities(
        volume.hu.shape, where, probabilities, None if threshold is None else float(threshold)
    )
    return labels, VoxelProbabilities(volume.hu.shape, where, probabilities)


def analyze_ct(
    sources: Iterable[Path | Dataset],
    model: LoadedModel,
    *,
    threshold_hu: float = 130.0,
    min_area_mm2: float = 1.0,
    mass_factor: float | None = None,
    review_peak_hu: float = LOW_PEAK_HU,
    min_artery_probability: float = MIN_ARTERY_PROBABILITY,
) -> CalciumResult:
    """Score one calcium-scoring CT series (files or datasets) with ``model``."""
    result, _, _ = analyze_ct_with_labels(
        sources,
        model,
        threshold_hu=threshold_hu,
        min_area_mm2=min_area_mm2,
        mass_factor=mass_factor,
        review_peak_hu=review_peak_hu,
        min_artery_probability=min_artery_probability,
    )
    return result


def analyze_ct_with_labels(
    sources: Iterable[Path | Dataset],
    model: LoadedModel,
    *,
    threshold_hu: float = 130.0,
    min_area_mm2: float = 1.0,
    mass_factor: float | None = None,
    review_peak_hu: float = LOW_PEAK_HU,
    min_artery_probability: float = MIN_ARTERY_PROBABILITY,
) -> tuple[CalciumResult, CTVolume, np.ndarray[Any, np.dtype[np.uint8]]]:
    """:func:`analyze_ct`, also returning the volume and the scored pixels by artery.

    A lesion peaking below ``review_peak_hu``, or whose artery the model gives a mean
    probability below ``min_artery_probability``, flags the result ``needs_review``. A
    contrast-enhanced series raises :class:`~cardiogate.errors.NotAnalysableError` before
    the model runs (:mod:`cardiogate.tasks.calcium.contrast`).

    Returns
    -------
    result : CalciumResult
        As :func:`analyze_ct` returns it.
    volume : CTVolume
        The series as loaded; its ``sop_instance_uids`` give the slice order.
    scored : (slices, rows, columns) uint8 array
        0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA: exactly the pixels the scores count (see
        :func:`cardiogate.tasks.calcium.scoring.score_lesions`), aligned with ``volume``.
    """
    t0 = time.perf_counter()
    volume = load_ct_series(sources)
    contrast.check_not_enhanced(volume)
    t1 = time.perf_counter()
    labels, probabilities = predict(volume, model, min_hu=threshold_hu)
    t2 = time.perf_counter()
    scores, scored = score_lesions(
        volume.hu,
        labels,
        volume.pixel_spacing_mm,
        volume.slice_increment_mm,
        threshold_hu=threshold_hu,
        min_area_mm2=min_area_mm2,
        probabilities=probabilities,
    )
    factor = volume.calcium_mass_factor if volume.calcium_mass_factor is not None else mass_factor
    t3 = time.perf_counter()
    result = describe(
        scores,
        volume,
        model,
        factor,
        threshold_hu,
        min_area_mm2,
        (t0, t1, t2, t3),
        review_peak_hu=review_peak_hu,
        min_artery_probability=min_artery_probability,
    )
    return result, volume, scored


def describe(
    scores: CalciumScores,
    volume: CTVolume,
    model: LoadedModel,
    mass_factor: float | None,
    threshold_hu: float,
    min_area_mm2: float,
    times: tuple[float, float, float, float],
    *,
    review_peak_hu: float = LOW_PEAK_HU,
    min_artery_probability: float = MIN_ARTERY_PROBABILITY,
) -> CalciumResult:
    """The result of ``scores``, its lesions flagged for review as
    :func:`~cardiogate.tasks.calcium.review.calcium_lesion_flags` says."""
    lesions = [
        CalciumLesion(
            slice_index=lesion.slice_index,
            SOPInstanceUID=volume.sop_instance_uids[lesion.slice_index],
            position_mm=volume.to_patient_mm(lesion.slice_index, *lesion.centroid_rc),  # type: ignore[arg-type]
            area_mm2=round(lesion.area_mm2, 3),
            peak_hu=lesion.peak_hu,
            artery=lesion.artery,
            artery_probability=None
            if lesion.artery_probability is None
            else round(lesion.artery_probability, 3),
            agatston=round(lesion.agatston, 3),
            volume_mm3=round(lesion.volume_mm3, 3),
            review_flags=calcium_lesion_flags(
                lesion.peak_hu,
                lesion.artery_probability,
                low_peak_hu=review_peak_hu,
                min_artery_probability=min_artery_probability,
            ),
        )
        for lesion in scores.lesions
    ]
    reason = calcium_reason(
        [lesion.review_flags for lesion in lesions], review_peak_hu, min_artery_probability
    )
    t0, t1, t2, t3 = times
    return CalciumResult(
        agatston={k: round(v, 2) for k, v in scores.agatston.items()},
        volume_mm3={k: round(v, 2) for k, v in scores.volume_mm3.items()},
        mass_mg=(
            {k: round(v, 2) for k, v in scores.mass_mg(mass_factor).items()}
            if mass_factor is not None
            else None
        ),
        category={
            "classic": classic_category(scores.agatston["total"]),
            "cac_drs": cac_drs(scores.agatston),
        },
        lesions=lesions,
        needs_review=reason is not None,
        review_reason=reason,
        model=ModelUsed(name=model.card.name, version=model.card.version, provider=model.provider),
        geometry={
            "slices": int(volume.hu.shape[0]),
            "rows": int(volume.hu.shape[1]),
            "columns": int(volume.hu.shape[2]),
            "pixel_spacing_mm": list(volume.pixel_spacing_mm),
            "slice_increment_mm": round(volume.slice_increment_mm, 4),
            "slice_thickness_mm": volume.slice_thickness_mm,
        },
        parameters={
            "threshold_hu": threshold_hu,
            "min_area_mm2": min_area_mm2,
            "review_peak_hu": review_peak_hu,
            "min_artery_probability": min_artery_probability,
        },
        timings_s={
            "load": round(t1 - t0, 4),
            "model": round(t2 - t1, 4),
            "scoring": round(t3 - t2, 4),
        },
    )
