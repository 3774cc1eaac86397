"""Coronary calcium analysis of one CT series: load, label calcium by artery with the
model, score with :func:`~cardiogate.tasks.calcium.scoring.score_lesions`, and describe the result
(:mod:`cardiogate.tasks.calcium.result`).

The model contract (the card's ``preprocessing``): input ``(batch, 2k + 1, rows, columns)``
float32, the slice and its ``k = context_slices`` neighbours on each side (edges repeated),
HU clipped to ``clip_hu`` then ``(hu - offset_hu) / scale_hu``; output logits
``(batch, classes, rows, columns)`` over the card's ``labels``: background first, then LM,
LAD, LCX, RCA and optionally AV (aortic valve calcium), each once (:func:`model_labels`).
A model with AV has its valve calcium scored apart (``CalciumResult.aortic_valve``); one
without it leaves ``aortic_valve`` None: not measured. With
``pixel_spacing_mm`` the slices are resampled to the spacing the model was trained at; with
``size_multiple`` they are padded (edge values) to a multiple of it and the logits cropped.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from cardiogate.analyses.ct_volume import CTVolume, load_ct_series
from cardiogate.analyses.resample import resample_linear
from cardiogate.errors import CardiogateError
from cardiogate.inference import LoadedModel, ModelCard
from cardiogate.tasks.calcium import contrast
from cardiogate.tasks.calcium.ood_features import ood_review_reason
from cardiogate.tasks.calcium.result import (
    AorticValveCalcium,
    CalciumLesion,
    CalciumResult,
    ModelUsed,
    describe,
)
from cardiogate.tasks.calcium.review import LOW_PEAK_HU, MIN_ARTERY_PROBABILITY
from cardiogate.tasks.calcium.scoring import (
    AORTIC_VALVE,
    ARTERIES,
    LABEL_NAMES,
    VoxelProbabilities,
    score_lesions,
)

__all__ = [  # the result's parts are in cardiogate.tasks.calcium.result, and here
    "LABELS",
    "AorticValveCalcium",
    "CalciumLesion",
    "CalciumResult",
    "ModelUsed",
    "analyze_ct",
    "analyze_ct_with_labels",
    "describe",
    "labels_from_probabilities",
    "measures_aortic_valve",
    "model_inputs",
    "model_labels",
    "pixel_probabilities",
    "predict",
    "predict_labels",
]

LABELS = ["background", *ARTERIES]  # a model's labels when its card names none


def model_labels(card: ModelCard) -> list[str]:
    """The classes of a calcium model's output channels, in the card's order: background
    first, then LM, LAD, LCX, RCA and optionally AV, each once (an empty ``labels``:
    :data:`LABELS`).

    Raises
    ------
    CardiogateError
        Naming the card's ``labels`` and what is wrong with them.
    """
    labels = list(card.labels) or LABELS
    named = f"calcium model {card.name} {card.version}: card labels {labels}"
    unknown = [name for name in labels if name not in ("background", *LABEL_NAMES)]
    if unknown:
        raise CardiogateError(
            f"{named} name unknown label(s) {unknown}; known: background, {', '.join(LABEL_NAMES)}"
        )
    missing = [name for name in ARTERIES if name not in labels]
    if labels[0] != "background" or len(set(labels)) != len(labels) or missing:
        raise CardiogateError(
            f"{named} must be background, then each of {', '.join(ARTERIES)} and optionally "
            f"{AORTIC_VALVE}, once each" + (f" (missing {missing})" if missing else "")
        )
    channels = card.outputs[0].shape[1] if len(card.outputs[0].shape) > 1 else None
    if isinstance(channels, int) and channels != len(labels):
        raise CardiogateError(f"{named} name {len(labels)} classes, its output has {channels}")
    return labels


def measures_aortic_valve(card: ModelCard) -> bool:
    """Whether the model labels aortic valve calcium (its card's labels have AV)."""
    return AORTIC_VALVE in model_labels(card)


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


def model_grid(volume: CTVolume, preprocessing: dict[str, Any]) -> tuple[int, int]:
    """The slice size at the card's ``pixel_spacing_mm``, as the analysis resamples (the
    fine-tune builds its targets on the same grid)."""
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
    does) and ``probabilities`` is ``(len(where[0]), classes)`` float32 over background,
    LM, LAD, LCX, RCA and, when the model has it, AV (in that order, whatever the order of
    the card's labels, :func:`model_labels`). When the card names the
    ``pixel_spacing_mm`` the model was trained at, slices are resampled to it (linear) and
    each native voxel reads the model pixel it falls in, so scoring always runs on the
    native pixels. Each slice of a batch and its neighbours is normalised and resampled
    once, then stacked into the model's channels.
    """
    labels = model_labels(model.card)
    order = [labels.index(name) for name in ("background", *LABEL_NAMES) if name in labels]
    pre = model.card.preprocessing
    batch = max(1, int(pre.get("batch_slices", 8)))
    k = int(pre.get("context_slices", 1))
    input_name = model.card.inputs[0].name
    rows, cols = volume.hu.shape[1:]
    grid = model_grid(volume, pre)
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
        if logits.ndim != 4 or logits.shape[1] != len(labels):
            raise CardiogateError(
                f"calcium model {model.card.name} {model.card.version}: output shape "
                f"{logits.shape} does not have the {len(labels)} classes of its card's labels"
            )
        # only where it is read: the bright native voxels, at their model pixel
        b, r, c = np.nonzero(bright[indices])
        z = logits[b, :, back_rows[r], back_cols[c]].astype(np.float32)
        if order != sorted(order):  # the card's classes in the order scoring numbers them
            z = z[:, order]
        z = np.exp(z - z.max(axis=1, keepdims=True))
        chosen.append(z / z.sum(axis=1, keepdims=True))
        where.append((indices[b], r, c))
    if not chosen:
        empty = np.zeros(0, dtype=np.intp)
        return (empty, empty, empty), np.zeros((0, len(labels)), dtype=np.float32)
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
    """A label volume: the most likely class of each voxel in ``where`` (0 elsewhere;
    ``probabilities`` over background, LM, LAD, LCX, RCA and maybe AV, as
    :func:`pixel_probabilities` gives them).

    With ``min_coronary_probability``, a voxel is coronary only when the probabilities of
    the four arteries add up to at least that, and then takes the most likely artery;
    any other voxel is AV where that is the most likely class, else background.
    """
    labels = np.zeros(shape, dtype=np.uint8)
    if min_coronary_probability is None:
        labels[where] = np.argmax(probabilities, axis=1)
        return labels
    valve = len(LABEL_NAMES)  # the AV label, and its column when there is one
    not_coronary = probabilities[:, 0]
    other: Any = 0
    if probabilities.shape[1] > valve:
        not_coronary = not_coronary + probabilities[:, valve]
        other = np.where(np.argmax(probabilities, axis=1) == valve, valve, 0)
    coronary = 1.0 - not_coronary >= min_coronary_probability
    artery = np.argmax(probabilities[:, 1 : len(ARTERIES) + 1], axis=1) + 1
    labels[where] = np.where(coronary, artery, other)
    return labels


def predict_labels(
    volume: CTVolume, model: LoadedModel, *, min_hu: float | None = None
) -> np.ndarray[Any, Any]:
    """Labels (0-4, and 5 AV from a model with it) for every voxel of at least ``min_hu``
    (other voxels 0): the
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
        0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA, 5 AV: exactly the pixels the scores count (see
        :func:`cardiogate.tasks.calcium.scoring.score_lesions`), aligned with ``volume``.
    """
    t0 = time.perf_counter()
    volume = load_ct_series(sources)
    contrast.check_not_enhanced(volume)
    t1 = time.perf_counter()
    labels, probabilities = predict(volume, model, min_hu=threshold_hu)
    valve = measures_aortic_valve(model.card)
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
        aortic_valve=valve,
        unlike_training=ood_review_reason(volume, model.card),
    )
    return result, volume, scored
