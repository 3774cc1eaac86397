"""Coronary stenosis analysis of one XA cine: load, pick frames, run the model, describe.

The model contract (the card's ``preprocessing``): input ``(batch, 1, size, size)``
float32, each selected frame resampled (bilinear) to ``input_size`` pixels square and
scaled by ``1 / (2**BitsStored - 1)`` (vessels dark, 0-1); outputs at 1/``output_stride``
of the input: ``heatmap`` logits of "a significant stenosis is centred here" and
``percent``, the % diameter stenosis the network reads there.

A model may also output ``vessel`` (logits over the card's
``postprocessing.vessel_classes``, the first being background) and ``position`` (the
fraction of the vessel's length from its origin, 0-1): each lesion then names its vessel
and its SCCT segment (:mod:`.coronary_segments`), read where the model put the lesion.
Without them a lesion's vessel is ``None`` ("not identified by this model").

The model says where lesions are (and how sure it is); the rest does not rely on its
habits. The sightings of one lesion on several frames (the heart moves) are grouped by
motion-compensated position (:mod:`.tracking`) and the lesion is reported once, on the
frame where the model is surest, with the frames it was seen on. Its % diameter stenosis
is measured QCA-style (:mod:`.qca`) on the frames of its surest sightings; the network's
reading is kept only where the lumen cannot be measured, and each lesion says which it
carries. Positions are in the frame's pixels and, when the geometry gives the pixel size at
the isocentre, in mm.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pydicom.dataset import Dataset

from cardiogate.analyses.resample import resample_linear
from cardiogate.analyses.xa_cine import XACine, load_xa_cine, score_frames, select_frames
from cardiogate.analyses.xa_frames import MIN_OPACIFICATION
from cardiogate.errors import CardiogateError
from cardiogate.inference import LoadedModel
from cardiogate.tasks.stenosis.geometry import (
    GRADING_CONVENTION,
    grade,
    heatmap_peaks,
    vessel_course,
)
from cardiogate.tasks.stenosis.ood_features import ood_review_reason
from cardiogate.tasks.stenosis.qca import (
    NOMINAL_FIELD_MM,
    NotMeasured,
    QCAMeasurement,
    logarithmic_values,
    measure_lesion,
)
from cardiogate.tasks.stenosis.segments import TERRITORY, segment_of, site_label
from cardiogate.tasks.stenosis.tracking import Sighting, Track, track_lesions

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
    percent_stenosis: float  # measured (percent_method "qca") or the network's ("network")
    grade: str  # of percent_stenosis
    cad_rads: str
    probability: float  # the model's heatmap at the lesion, on its frame
    percent_method: str = "network"  # "qca" or "network"
    percent_note: str | None = None  # why the lumen could not be measured (network)
    network_percent_stenosis: float | None = None  # the network's reading there, for review
    reference_diameter_mm: float | None = None  # interpolated reference at the MLD (qca)
    minimal_lumen_diameter_mm: float | None = None  # (qca)
    lesion_length_mm: float | None = None  # lumen below 85% of the reference (qca)
    frames_seen: list[int] = Field(default_factory=list)  # 1-based, the frames it was seen on
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


QCA_SIGHTINGS = 5  # a lesion's %DS: the median over this many of its surest sightings
PERCENT_METHOD = (
    "measured QCA-style on the frames where the model saw the lesion (the median of its "
    f"{QCA_SIGHTINGS} surest sightings): the vessel traced through the lesion, the lumen "
    "read across it by videodensitometry (its area from the integrated attenuation; edges "
    "at half maximum for the size in mm) and compared with the interpolated reference "
    "diameter (a robust line through the healthy segments on both sides); the network's "
    "estimate where the lumen could not be measured (each lesion's percent_method says "
    "which)"
)


def analyze_xa(
    sources: Iterable[Path | Dataset],
    model: LoadedModel,
    *,
    max_frames: int = 8,
    review_band: tuple[float, float] = (0.3, 0.7),
    merge_distance_mm: float = 3.0,
    merge_distance_px: float = 16.0,
) -> StenosisResult:
    """Find significant stenoses in one XA cine (files or datasets) with ``model``.

    Sightings of one lesion on several frames are one lesion when, carried back to the
    reference frame, they lie within ``merge_distance_mm`` (``merge_distance_px`` when the
    geometry gives no pixel size).
    """
    pre, post = model.card.preprocessing, model.card.postprocessing
    size = int(pre.get("input_size", 256))
    stride_in = float(pre.get("output_stride", 4))
    threshold = float(post.get("lesion_threshold", 0.5))
    t0 = time.perf_counter()
    sources = list(sources)
    cine = load_xa_cine(sources)
    logarithmic = logarithmic_values(sources[0])
    t1 = time.perf_counter()
    scores = score_frames(cine)
    chosen = select_frames(cine, max_frames=max_frames, scores=scores)
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
    sightings = [
        Sighting(
            index=int(index),
            row=(peak.row + 0.5) * stride_r - 0.5,
            column=(peak.column + 0.5) * stride_c - 0.5,
            probability=peak.probability,
            percent=_sample(percent[k], peak.row, peak.column),
            named={} if vessels is None else vessels.at(k, peak.row, peak.column),
        )
        for k, index in enumerate(chosen)
        for peak in heatmap_peaks(heat[k], 1.0, threshold)
    ]
    mm = cine.mm_per_px
    px_mm = 1.0 / mm if mm else min(rows, cols) / NOMINAL_FIELD_MM
    merge_px = merge_distance_mm * px_mm if mm else merge_distance_px
    reference = max(chosen, key=lambda i: float(scores.opacification[i]))
    tracks = track_lesions(cine.frames, sightings, reference, merge_px, px_mm)
    lesions = [_lesion(cine, track, logarithmic) for track in tracks]
    probability = float(heat.max()) if heat.size else 0.0
    low, high = review_band
    uncertain = low <= probability < high
    t4 = time.perf_counter()
    reasons = [
        f"model probability {probability:.2f} is within the review band {low}-{high}"
        if uncertain
        else None,
        "geometry incomplete: " + "; ".join(cine.geometry_flags)
        if cine.geometry_flags and lesions
        else None,
        ood_review_reason(cine, model.card),  # an input unlike the model's training data
    ]
    reason = "; ".join(r for r in reasons if r) or None
    return StenosisResult(
        significant=probability >= threshold,
        probability=round(probability, 4),
        needs_review=reason is not None,
        review_reason=reason,
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
        percent_method=PERCENT_METHOD,
        model={"name": model.card.name, "version": model.card.version, "provider": model.provider},
        parameters={
            "max_frames": max_frames,
            "lesion_threshold": threshold,
            "review_band": [low, high],
            "merge_distance_mm": merge_distance_mm if mm else None,
            "merge_distance_px": round(merge_px, 1),
            "reference_frame": reference + 1,
            "min_relative_opacification": MIN_OPACIFICATION,
            "frames_poorly_opacified": scores.poorly_opacified,
            "frames_blurred": scores.blurred,
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


def _lesion(cine: XACine, track: Track, logarithmic: bool) -> StenosisLesion:
    """The lesion on its surest sighting's frame. Its %DS is measured on the frames of its
    ``QCA_SIGHTINGS`` surest sightings and the median kept (the frames differ by noise and
    by the heart's phase); the reference diameter and the lesion length likewise, and the
    MLD follows."""
    best = track.best
    mm = cine.mm_per_px
    network = float(np.clip(best.percent, 0, 100))
    readings = [
        measure_lesion(cine.frames[s.index], s.row, s.column, mm, logarithmic=logarithmic)
        for s in track.sightings[:QCA_SIGHTINGS]
    ]
    measured = [r for r in readings if isinstance(r, QCAMeasurement)]
    row, col = best.row, best.column
    qca: dict[str, Any] = {"network_percent_stenosis": round(network, 1)}
    value = network
    if not measured:
        reason = next(r.reason for r in readings if isinstance(r, NotMeasured))
        qca |= {"percent_method": "network", "percent_note": reason}
    else:
        value = float(np.median([m.percent_stenosis for m in measured]))
        reference = float(np.median([m.reference_diameter_px for m in measured]))
        if isinstance(readings[0], QCAMeasurement):  # where the lumen is narrowest
            row, col = readings[0].row, readings[0].column
        qca |= {
            "percent_method": "qca",
            "reference_diameter_mm": _mm(reference, mm),
            "minimal_lumen_diameter_mm": _mm(reference * (1 - value / 100), mm),
            "lesion_length_mm": _mm(float(np.median([m.lesion_length_px for m in measured])), mm),
        }
    course = vessel_course(cine.frames[best.index], row, col)
    polyline = [(round(c, 1), round(r, 1)) for r, c in course]
    value = round(float(np.clip(value, 0, 100)), 1)
    category, label = grade(value)
    sop, frame_number = cine.frame_sources[best.index]
    return StenosisLesion(
        frame=best.index + 1,
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
        percent_stenosis=value,
        grade=label,
        cad_rads=category,
        probability=round(best.probability, 4),
        frames_seen=track.frames_seen,
        **qca,
        **best.named,
    )


def _mm(length_px: float, mm: float | None) -> float | None:
    return None if mm is None else round(length_px * mm, 2)
