"""What a calcium job reports (:class:`CalciumResult`, stored as JSON and shown by the API)
and how the scores of one series become it (:func:`describe`).

The coronary scores (``agatston``, ``volume_mm3``, ``mass_mg``) count the four arteries
only. Aortic valve calcium, from a model that labels it, is reported apart in
``aortic_valve``; from a model that does not, ``aortic_valve`` is None: not measured, which
is not the same as none found.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from cardiogate.analyses.ct_volume import CTVolume
from cardiogate.inference import LoadedModel
from cardiogate.tasks.calcium.review import (
    LOW_PEAK_HU,
    MIN_ARTERY_PROBABILITY,
    calcium_lesion_flags,
    calcium_reason,
)
from cardiogate.tasks.calcium.scoring import CalciumScores, Lesion, cac_drs, classic_category

NOTICE = (
    "AI-generated research output, not for clinical use. The model was trained on "
    "synthetic phantoms only; every finding needs review by a qualified reader."
)
AORTIC_VALVE_NOTE = "Aortic valve calcium: reported apart, not part of the coronary score."


class CalciumLesion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slice_index: int
    SOPInstanceUID: str
    position_mm: tuple[float, float, float]
    area_mm2: float
    peak_hu: float
    artery: str  # LM, LAD, LCX, RCA; AV for a lesion of ``AorticValveCalcium.lesions``
    artery_probability: float | None  # the model's mean probability of ``artery``
    agatston: float
    volume_mm3: float
    review_flags: list[str]  # low_peak_hu, artery_in_doubt (cardiogate.tasks.calcium.review)
    row: float | None = None  # centroid on its slice, pixels (None in older results)
    col: float | None = None


class ModelUsed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    provider: str


class AorticValveCalcium(BaseModel):
    """The aortic valve calcium of a model that labels it (card label AV): scored with the
    coronary arithmetic, never counted in the coronary scores."""

    model_config = ConfigDict(extra="forbid")

    agatston: float
    volume_mm3: float
    mass_mg: float | None  # None without a calibration factor
    lesion_count: int
    lesions: list[CalciumLesion]  # each with artery AV
    note: str = AORTIC_VALVE_NOTE


class CalciumResult(BaseModel):
    """What a calcium job reports; ``agatston`` and ``volume_mm3`` have keys total, LM,
    LAD, LCX, RCA (the shape ``truth.json`` of ``cardiogate synth ct`` uses too): the
    coronary arteries only. ``aortic_valve`` is None when the model does not label the
    aortic valve (not measured, which is not 0)."""

    model_config = ConfigDict(extra="forbid")

    task: Literal["calcium"] = "calcium"
    agatston: dict[str, float]
    volume_mm3: dict[str, float]
    mass_mg: dict[str, float] | None
    category: dict[str, str]
    lesions: list[CalciumLesion]  # coronary; the aortic valve's are in ``aortic_valve``
    needs_review: bool
    review_reason: str | None
    model: ModelUsed
    geometry: dict[str, Any]
    parameters: dict[str, float]
    timings_s: dict[str, float]
    notice: str = NOTICE
    aortic_valve: AorticValveCalcium | None = None


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
    aortic_valve: bool = False,
    unlike_training: str | None = None,
) -> CalciumResult:
    """The result of ``scores``, its lesions (the aortic valve's too) flagged for review as
    :func:`~cardiogate.tasks.calcium.review.calcium_lesion_flags` says. ``aortic_valve``:
    whether the model labels aortic valve calcium; without it the result's
    ``aortic_valve`` is None (not measured). ``unlike_training``: why the input is unlike
    the model's training data (its card's out-of-distribution profile), also a reason for
    review."""

    def described(lesion: Lesion) -> CalciumLesion:
        return CalciumLesion(
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
            row=round(lesion.centroid_rc[0], 2),
            col=round(lesion.centroid_rc[1], 2),
        )

    lesions = [described(lesion) for lesion in scores.lesions]
    valve = (
        AorticValveCalcium(
            agatston=round(scores.valve_agatston, 2),
            volume_mm3=round(scores.valve_volume_mm3, 2),
            mass_mg=None if mass_factor is None else round(scores.valve_mass_mg(mass_factor), 2),
            lesion_count=len(scores.valve_lesions),
            lesions=[described(lesion) for lesion in scores.valve_lesions],
        )
        if aortic_valve
        else None
    )
    flags = [lesion.review_flags for lesion in (*lesions, *(valve.lesions if valve else []))]
    reasons = (
        calcium_reason(flags, review_peak_hu, min_artery_probability),
        unlike_training,
    )
    reason = "; ".join(r for r in reasons if r) or None
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
        aortic_valve=valve,
    )
