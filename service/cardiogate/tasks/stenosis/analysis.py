"""Coronary stenosis analysis of one XA cine: load, pick frames, run the model, describe.

The model contract (the card's ``preprocessing``): input ``(batch, 1, size, size)``
float32, each selected frame resampled (bilinear) to ``input_size`` pixels square and
scaled by ``1 / (2**BitsStored - 1)`` (vessels dark, 0-1); outputs at 1/``output_stride``
of the input: ``heatmap`` logits of "a significant stenosis is centred here" and
``percent``, the % diameter stenosis the network reads there. The % diameter stenosis is
the network's (not a QCA measurement); the card says so.

A model may also output ``vessel`` (logits over the card's
``postprocessing.vessel_classes``, the first being background) and ``position`` (the
fraction of the vessel's length from its origin, 0-1): each lesion then names its vessel
and its SCCT segment (:mod:`.coronary_segments`), read where the model put the lesion.
Without them a lesion's vessel is ``None`` ("not identified by this model").

A lesion seen on several frames (the heart moves) is reported once, on the frame where the
model is surest. Positions are in the frame's pixels and, when the geometry gives the
pixel size at the isocentre, in mm.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict
from pydicom.dataset import Dataset

from cardiogate.analyses.resample import resample_linear
from cardiogate.analyses.xa_cine import XACine, load_xa_cine, select_frames
from cardiogate.errors import CardiogateError
from cardiogate.inference import LoadedModel
from cardiogate.tasks.stenosis.geometry import (
    GRADING_CONVENTION,
    grade,
    heatmap_peaks,
    vessel_course,
)
from cardiogate.tasks.stenosis.segments import TERRITORY, segment_of, site_label

NOTICE = (
    "AI-generated research output, not for clinical use. The model was trained on "
    "synthetic angiograms only; every finding needs review by a qualified reader."
)


class StenosisLesion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frame: int  # 1-based frame number within the cine
    SOPInstanceUID: str
    referenced_frame: int  # 1-based frame number within that instance
    x_px: float
    y_px: float
    x_mm: float | None
    y_mm: float | None
    polyline_px: list[tuple[float, float]]  # (x, y) along the vessel through the lesion
    polyline_mm: list[tuple[float, float]] | None
    percent_stenosis: float
    grade: str
    cad_rads: str
    probability: float
    # the vessel and segment, when the model identifies vessels (else all None)
    vessel: str | None = None  # "LAD", "D1", "OM2" ... (the card's vessel_classes)
    artery: str | None = None  # its main artery: LM, LAD, LCX or RCA
    vessel_probability: float | None = None  # of that vessel, given a vessel is there
    position_along_vessel: float | None = None  # 0 at its origin, 1 at its end
    segment: str | None = None  # "mid LAD"
    segment_short: str | None = None  # "mLAD"
    scct_segment: int | None = None  # 7 (SCCT 2014); None for an unnumbered branch
    segment_code: str | None = None  # SNOMED CT, CID 3014: "91748002"
    segment_meaning: str | None = None  # "Mid Left Anterior Descending Coronary Artery"

    @property
    def site(self) -> str:
        """``"mid LAD (segment 7)"``, or that the model named no vessel."""
        return site_label(self.segment, self.scct_segment)


class StenosisResult(BaseModel):
    """What a stenosis job reports."""

    model_config = ConfigDict(extra="forbid")

    task: Literal["stenosis"] = "stenosis"
    significant: bool
    probability: float  # the model's: a significant stenosis somewhere in the run
    needs_review: bool
    review_reason: str | None
    lesions: list[StenosisLesion]
    most_severe: StenosisLesion | None
    frames_used: list[int]  # 1-based frame numbers
    projection: str | None
    geometry: dict[str, Any]
    grading_convention: str = GRADING_CONVENTION
    percent_method: str
    model: dict[str, str]
    parameters: dict[str, Any]
    timings_s: dict[str, float]
    notice: str = NOTICE


def model_input(frames: np.ndarray[Any, Any], bits_stored: int, size: int) -> np.ndarray[Any, Any]:
    """``(n, 1, size, size)`` float32: frames scaled to 0-1 by their bit depth, resampled."""
    scale = np.float32(1.0 / (2 ** max(1, bits_stored) - 1))
    scaled = np.asarray(frames, dtype=np.float32) * scale
    resampled = resample_linear(scaled, (size, size))
    return np.ascontiguousarray(resampled[:, None], dtype=np.float32)


def _sigmoid(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out: np.ndarray[Any, Any] = 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))
    return out


def _sample(grid: np.ndarray[Any, Any], row: float, col: float) -> float:
    """Bilinear value of a model-resolution map at (sub-)cell coordinates."""
    r = float(np.clip(row, 0, grid.shape[0] - 1))
    c = float(np.clip(col, 0, grid.shape[1] - 1))
    r0, c0 = int(r), int(c)
    r1, c1 = min(r0 + 1, grid.shape[0] - 1), min(c0 + 1, grid.shape[1] - 1)
    fr, fc = r - r0, c - c0
    top = grid[r0, c0] * (1 - fc) + grid[r0, c1] * fc
    bottom = grid[r1, c0] * (1 - fc) + grid[r1, c1] * fc
    return float(top * (1 - fr) + bottom * fr)


def analyze_xa(
    sources: Iterable[Path | Dataset],
    model: LoadedModel,
    *,
    max_frames: int = 8,
    review_band: tuple[float, float] = (0.3, 0.7),
    merge_distance_px: float = 24.0,
) -> StenosisResult:
    """Find significant stenoses in one XA cine (files or datasets) with ``model``."""
    pre, post = model.card.preprocessing, model.card.postprocessing
    size = int(pre.get("input_size", 256))
    stride_in = float(pre.get("output_stride", 4))
    threshold = float(post.get("lesion_threshold", 0.5))
    t0 = time.perf_counter()
    cine = load_xa_cine(sources)
    t1 = time.perf_counter()
    chosen = select_frames(cine, max_frames=max_frames)
    t2 = time.perf_counter()
    x = model_input(cine.frames[chosen], cine.bits_stored, size)
    names = [o.name for o in model.card.outputs]
    if "heatmap" not in names or "percent" not in names:
        raise CardiogateError(f"stenosis model outputs must include heatmap and percent: {names}")
    outputs = dict(zip(names, model.run({model.card.inputs[0].name: x}), strict=True))
    t3 = time.perf_counter()
    heat = _sigmoid(outputs["heatmap"][:, 0].astype(np.float32))
    percent = outputs["percent"][:, 0].astype(np.float32)
    vessels = vessel_maps(outputs, post)
    rows, cols = cine.frames.shape[1:]
    # the map's cells in frame pixels (the frame was resampled to size x size)
    stride_r, stride_c = stride_in * rows / size, stride_in * cols / size
    found = []
    for k, index in enumerate(chosen):
        for peak in heatmap_peaks(heat[k], 1.0, threshold):
            row = (peak.row + 0.5) * stride_r - 0.5
            col = (peak.column + 0.5) * stride_c - 0.5
            reading = _sample(percent[k], peak.row, peak.column)
            named = {} if vessels is None else vessels.at(k, peak.row, peak.column)
            found.append((peak.probability, int(index), row, col, reading, named))
    found.sort(key=lambda f: -f[0])
    kept: list[tuple[float, int, float, float, float, dict[str, Any]]] = []
    for item in found:  # the same lesion on other frames: keep the surest sighting
        if all(np.hypot(item[2] - o[2], item[3] - o[3]) > merge_distance_px for o in kept):
            kept.append(item)
    lesions = [_lesion(cine, *item) for item in kept]
    probability = float(heat.max()) if heat.size else 0.0
    low, high = review_band
    uncertain = low <= probability < high
    t4 = time.perf_counter()
    return StenosisResult(
        significant=probability >= threshold,
        probability=round(probability, 4),
        needs_review=uncertain or bool(cine.geometry_flags and lesions),
        review_reason=(
            f"model probability {probability:.2f} is within the review band {low}-{high}"
            if uncertain
            else ("geometry incomplete: " + "; ".join(cine.geometry_flags))
            if cine.geometry_flags and lesions
            else None
        ),
        lesions=lesions,
        most_severe=max(lesions, key=lambda lesion: lesion.percent_stenosis, default=None),
        frames_used=[int(i) + 1 for i in chosen],
        projection=cine.projection,
        geometry={
            "mm_per_px": cine.mm_per_px,
            "flags": cine.geometry_flags,
            "rows": int(rows),
            "columns": int(cols),
            "frames": cine.n_frames,
        },
        percent_method=str(
            post.get("percent_method", "estimated by the network (not a QCA measurement)")
        ),
        model={"name": model.card.name, "version": model.card.version, "provider": model.provider},
        parameters={
            "max_frames": max_frames,
            "lesion_threshold": threshold,
            "review_band": [low, high],
        },
        timings_s={
            "decode": round(t1 - t0, 4),
            "frame_selection": round(t2 - t1, 4),
            "model": round(t3 - t2, 4),
            "post_processing": round(t4 - t3, 4),
        },
    )


@dataclass(frozen=True)
class VesselMaps:
    """The model's vessel identity (softmax over ``classes``, the first background) and
    position along the vessel, for each frame it saw, at its output resolution."""

    classes: tuple[str, ...]
    probability: np.ndarray[Any, Any]  # (frames, classes, rows, columns)
    position: np.ndarray[Any, Any] | None  # (frames, rows, columns), 0-1

    def at(self, k: int, row: float, column: float) -> dict[str, Any]:
        """The lesion's vessel, segment and position, read over the 3x3 cells around a
        heatmap peak of frame ``k`` (a narrowed lumen is thin: its own cell may read as
        background). The vessel is the likeliest non-background class there."""
        r, c = round(row), round(column)
        window = (slice(max(0, r - 1), r + 2), slice(max(0, c - 1), c + 2))
        cells = self.probability[k][(slice(1, None), *window)]  # (classes - 1, 3, 3)
        scores = cells.reshape(cells.shape[0], -1).sum(axis=1)
        best = int(np.argmax(scores))
        vessel = self.classes[best + 1]
        share = float(scores[best] / max(float(scores.sum()), 1e-12))
        position = None
        if self.position is not None:
            weights = cells[best]
            values = self.position[k][window]
            position = float(np.sum(values * weights) / max(float(weights.sum()), 1e-12))
            position = round(float(np.clip(position, 0.0, 1.0)), 3)
        segment = segment_of(vessel, position)
        return {
            "vessel": vessel,
            "artery": TERRITORY[vessel],
            "vessel_probability": round(share, 4),
            "position_along_vessel": position,
            "segment": segment.name,
            "segment_short": segment.short,
            "scct_segment": segment.scct,
            "segment_code": segment.code,
            "segment_meaning": segment.meaning,
        }


def vessel_maps(outputs: dict[str, Any], post: dict[str, Any]) -> VesselMaps | None:
    """The vessel outputs as :class:`VesselMaps`, None when the model has none; a card
    whose ``vessel_classes`` do not match the output, or name a vessel this service does
    not know, is refused by name."""
    if "vessel" not in outputs:
        return None
    logits = np.asarray(outputs["vessel"], dtype=np.float32)
    classes = tuple(str(name) for name in post.get("vessel_classes") or ())
    if logits.ndim != 4 or len(classes) != logits.shape[1]:
        raise CardiogateError(
            f"the model's vessel output has shape {tuple(logits.shape)}, but its card names "
            f"{len(classes)} classes (postprocessing.vessel_classes)"
        )
    unknown = [name for name in classes[1:] if name not in TERRITORY]
    if unknown:
        raise CardiogateError(
            f"postprocessing.vessel_classes names vessels this service does not know: "
            f"{', '.join(unknown)} (known: {', '.join(TERRITORY)}; the first is background)"
        )
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probability = shifted / shifted.sum(axis=1, keepdims=True)
    position = None
    if "position" in outputs:
        position = np.asarray(outputs["position"], dtype=np.float32)[:, 0]
    return VesselMaps(classes, probability, position)


def _lesion(
    cine: XACine,
    probability: float,
    index: int,
    row: float,
    col: float,
    percent: float,
    named: dict[str, Any],
) -> StenosisLesion:
    mm = cine.mm_per_px
    course = vessel_course(cine.frames[index], row, col)
    polyline = [(round(c, 1), round(r, 1)) for r, c in course]
    category, label = grade(percent)
    sop, frame_number = cine.frame_sources[index]
    return StenosisLesion(
        frame=index + 1,
        SOPInstanceUID=sop,
        referenced_frame=frame_number,
        x_px=round(col, 1),
        y_px=round(row, 1),
        x_mm=None if mm is None else round(col * mm, 2),
        y_mm=None if mm is None else round(row * mm, 2),
        polyline_px=polyline,
        polyline_mm=None
        if mm is None
        else [(round(x * mm, 2), round(y * mm, 2)) for x, y in polyline],
        percent_stenosis=round(float(np.clip(percent, 0, 100)), 1),
        grade=label,
        cad_rads=category,
        probability=round(probability, 4),
        **named,
    )
