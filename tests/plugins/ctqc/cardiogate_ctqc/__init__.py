"""``ctqc``: an image-quality check of contrast-enhanced cardiac CT (CTA), a cardiogate task
shipped as its own wheel (``[project.entry-points."cardiogate.tasks"] ctqc``).

Routing (the ``ctqc_`` keys of ``CARDIOGATE_ROUTING``): an axial CT Image Storage series that
is contrast-enhanced by its header (``ContrastBolusAgent`` set, or a series description or
protocol name matching ``include``) with at least ``min_instances`` slices: the series the
calcium task refuses. Settings (``CARDIOGATE_CTQC_*``): ``max_noise_hu``, above which the
series is noisy and its result needs review.

The model folder ships in the package (:data:`MODEL_FOLDER`): copy it into the models
directory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydicom.uid import CTImageStorage

from cardiogate.store.records import SeriesAttributes
from cardiogate.tasks import Analysed, OutputSeries, Route, Task
from cardiogate_ctqc.analysis import CTQualityResult, measure
from cardiogate_ctqc.report import SR_SERIES, build_ctqc_objects

if TYPE_CHECKING:
    from cardiogate.inference import LoadedModel

__all__ = ["MODEL_FOLDER", "CTQualityResult", "CTQualitySettings", "CTQualityTask"]

MODEL_FOLDER = Path(__file__).resolve().parent / "model"
NO_AGENT = ("", "NONE", "NO", "N/A")


class CTQualitySettings(BaseSettings):
    """``CARDIOGATE_CTQC_*``."""

    model_config = SettingsConfigDict(env_prefix="CARDIOGATE_CTQC_", extra="forbid")

    max_noise_hu: float = Field(default=40.0, gt=0)


class CTQualityRouting(BaseModel):
    """The ``ctqc_`` keys of ``CARDIOGATE_ROUTING``."""

    model_config = ConfigDict(extra="forbid")

    min_instances: int = Field(default=5, ge=1)
    # series description / protocol name hints of a CTA (case-insensitive regular expressions)
    include: list[str] = Field(default_factory=lambda: [r"\bcta\b", r"angio"])


def _contrast(series: SeriesAttributes, patterns: Sequence[str]) -> str | None:
    """What says the series is contrast-enhanced, or None."""
    if (series.ContrastBolusAgent or "").strip().upper() not in NO_AGENT:
        return "ContrastBolusAgent is set"
    for pattern in patterns:
        for keyword in ("SeriesDescription", "ProtocolName"):
            if re.search(pattern, getattr(series, keyword) or "", re.IGNORECASE):
                return f"{keyword} matches '{pattern}'"
    return None


class CTQualityTask(Task):
    name = "ctqc"
    title = "CT angiography image quality"
    result_model = CTQualityResult
    settings_model = CTQualitySettings
    routing_model = CTQualityRouting
    output_series: ClassVar[Mapping[str, OutputSeries]] = {"sr": OutputSeries(*SR_SERIES)}
    settings: CTQualitySettings
    routing: CTQualityRouting

    def route(self, series: SeriesAttributes) -> Route | None:
        if series.Modality != "CT" or series.SOPClassUID != CTImageStorage:
            return None
        evidence = _contrast(series, self.routing.include)
        if evidence is None:
            return None  # not a CTA: not this task's kind
        image_type = (series.ImageType or "").upper().split("\\")
        if "AXIAL" not in image_type or "LOCALIZER" in image_type:
            return Route(None, f"CTA that is not an axial series (ImageType {series.ImageType})")
        if series.instance_count < self.routing.min_instances:
            return Route(
                None,
                f"CTA of {series.instance_count} slice(s); an image-quality check needs at "
                f"least {self.routing.min_instances}",
            )
        return Route(self.name, f"contrast-enhanced axial CT ({evidence})")

    def analyse(
        self, paths: Sequence[Path], model: LoadedModel, needed: Mapping[str, BaseModel]
    ) -> Analysed:
        measured = measure(paths, model, self.settings.max_noise_hu)

        def objects(**version: Any) -> list[Any]:
            return build_ctqc_objects(paths, measured, **version)

        return Analysed(measured.result, objects)

    def summary(self, result: Mapping[str, Any]) -> str:
        noise = result.get("noise_hu")
        if noise is None:
            return "no noise measured"
        return (
            f"image noise {float(noise):.1f} HU: {result.get('verdict', '?')} "
            f"(limit {float(result.get('max_noise_hu') or 0.0):g} HU)"
        )

    def review_summary(self, result: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "noise_hu": result.get("noise_hu"),
            "max_noise_hu": result.get("max_noise_hu"),
            "verdict": result.get("verdict"),
        }

    def report_lines(self, result: Mapping[str, Any]) -> list[str]:
        per_slice = [float(v) for v in result.get("slice_noise_hu") or []]
        lines = [self.summary(result)]
        if per_slice:
            lines.append(
                f"{len(per_slice)} slices: noise {min(per_slice):.1f}-{max(per_slice):.1f} HU"
            )
        if result.get("needs_review"):
            lines.append(f"needs review ({result.get('review_reason')})")
        return lines
