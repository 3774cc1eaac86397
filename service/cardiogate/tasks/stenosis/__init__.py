"""The coronary stenosis task: significant stenoses in an X-ray angiography cine, each with
its % diameter stenosis, grade, vessel and segment, reported as a TID 1500 SR with a key
image and a summary page.

Routing (the ``stenosis_`` keys of ``CARDIOGATE_ROUTING``): a series of one of
``modalities`` (XA) whose SOP class is X-Ray Angiographic Image Storage (or its enhanced
form). Settings (``CARDIOGATE_STENOSIS_*``): how many frames the model reads and the band
of model probabilities that needs review.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cardiogate.analyses.pixels import read_file
from cardiogate.analyses.xa_cine import XACineError, load_xa_cine
from cardiogate.learning.labels import Label
from cardiogate.store.records import SeriesAttributes
from cardiogate.tasks.contract import Analysed, DemoCase, OutputSeries, Route, Task
from cardiogate.tasks.stenosis import demo
from cardiogate.tasks.stenosis.analysis import StenosisResult, analyze_xa
from cardiogate.tasks.stenosis.corrections import (
    StenosisCorrections,
    check_indices,
    stenosis_labels,
)
from cardiogate.tasks.stenosis.objects import build_stenosis_objects
from cardiogate.tasks.stenosis.segments import site_label
from cardiogate.tasks.stenosis.series import OUTPUT_SERIES

if TYPE_CHECKING:
    from cardiogate.inference import LoadedModel
    from cardiogate.tasks.contract import Comparison

XA_STORAGE = ("1.2.840.10008.5.1.4.1.1.12.1", "1.2.840.10008.5.1.4.1.1.12.1.1")


class StenosisSettings(BaseSettings):
    """``CARDIOGATE_STENOSIS_*``."""

    model_config = SettingsConfigDict(env_prefix="CARDIOGATE_STENOSIS_", extra="forbid")

    max_frames: int = Field(
        default=8, ge=1, le=64, description="Frames of a cine the stenosis model reads"
    )
    review_band: tuple[float, float] = Field(
        default=(0.3, 0.7),
        description="A run whose model probability falls in [low, high) is flagged needs_review",
    )

    @field_validator("review_band")
    @classmethod
    def _check_band(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError("the review band must be two probabilities, low <= high")
        return value


class StenosisRouting(BaseModel):
    """The ``stenosis_`` keys of ``CARDIOGATE_ROUTING``."""

    model_config = ConfigDict(extra="forbid")

    modalities: list[str] = Field(
        default_factory=lambda: ["XA"],
        description="Modalities whose X-Ray Angiographic series go to the stenosis task",
    )


def _site(lesion: Mapping[str, Any]) -> str:
    """A stored lesion's place (JSON), as :func:`.segments.site_label` words it."""
    return site_label(lesion.get("segment") or None, lesion.get("scct_segment") or None)


class StenosisTask(Task):
    name = "stenosis"
    title = "coronary stenosis"
    result_model = StenosisResult
    settings_model = StenosisSettings
    routing_model = StenosisRouting
    output_series: ClassVar[Mapping[str, OutputSeries]] = OUTPUT_SERIES
    priority = 50  # before CT tasks, as the router always did
    correction_model = StenosisCorrections
    settings: StenosisSettings
    routing: StenosisRouting

    def route(self, series: SeriesAttributes) -> Route | None:
        modality = series.Modality or "unknown"
        if modality not in self.routing.modalities:
            return None
        if series.SOPClassUID not in XA_STORAGE:
            return Route(
                None, f"{modality} series of SOP class {series.SOPClassUID} is not an angiogram"
            )
        return Route(self.name, "X-ray angiography")

    def analyse(
        self, paths: Sequence[Path], model: LoadedModel, needed: Mapping[str, BaseModel]
    ) -> Analysed:
        datasets = [read_file(p, i, XACineError) for i, p in enumerate(paths)]
        result = analyze_xa(
            datasets,
            model,
            max_frames=self.settings.max_frames,
            review_band=self.settings.review_band,
        )

        def objects(**version: Any) -> list[Any]:
            return build_stenosis_objects(datasets, result, load_xa_cine(datasets), **version)

        return Analysed(result, objects)

    def summary(self, result: Mapping[str, Any]) -> str:
        worst = result.get("most_severe")
        if not worst:
            return f"no stenosis found (p = {float(result.get('probability') or 0.0):.2f})"
        where = f" in the {worst['segment']}" if worst.get("segment") else ""
        return (
            f"max {float(worst.get('percent_stenosis') or 0.0):.0f}% DS{where}, grade "
            f"{worst.get('grade', '?')}, CAD-RADS {worst.get('cad_rads', '?')}"
        )

    def lesion_lines(self, result: Mapping[str, Any]) -> list[str]:
        lesions = [x for x in result.get("lesions") or [] if isinstance(x, Mapping)]
        lesions.sort(key=lambda x: -float(x.get("percent_stenosis") or 0.0))
        return [
            f"{_site(x)}, frame {x.get('frame', '?')}: "
            f"{float(x.get('percent_stenosis') or 0.0):.0f}% DS, grade {x.get('grade', '?')}, "
            f"CAD-RADS {x.get('cad_rads', '?')}"
            for x in lesions
        ]

    def compare(self, serving: Mapping[str, Any], candidate: Mapping[str, Any]) -> Comparison:
        from cardiogate.tasks.stenosis.compare import compare

        return compare(serving, candidate)

    def review_summary(self, result: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "probability": result.get("probability"),
            "lesions": [
                {"percent_stenosis": lesion.get("percent_stenosis"), "grade": lesion.get("grade")}
                for lesion in result.get("lesions") or []
            ],
        }

    def report_lines(self, result: Mapping[str, Any]) -> list[str]:
        verdict = "significant stenosis" if result["significant"] else "no significant stenosis"
        review = f"; needs review ({result['review_reason']})" if result["needs_review"] else ""
        lines = [
            f"{verdict} (probability {result['probability']:.2f}){review}; "
            f"view {result['projection'] or 'unknown'}; frames {result['frames_used']}"
        ]
        for lesion in result["lesions"]:
            where = f"x {lesion['x_px']:.0f} y {lesion['y_px']:.0f} px"
            lines.append(
                f"frame {lesion['frame']}: {_site(lesion)}, {where}, "
                f"{lesion['percent_stenosis']:.0f}% ({lesion['grade']}), "
                f"probability {lesion['probability']:.2f}"
            )
        return lines

    def review_labels(
        self, result: Mapping[str, Any], corrections: BaseModel | None
    ) -> list[Label]:
        return stenosis_labels(result, corrections)

    def correction_problem(self, result: Mapping[str, Any], corrections: BaseModel) -> str | None:
        return (
            check_indices(result, corrections)
            if isinstance(corrections, StenosisCorrections)
            else None
        )

    # -- the demo ------------------------------------------------------------------------

    def demo_case(self) -> DemoCase | None:
        return demo.case()

    def demo_summary(self, result: Mapping[str, Any], truth: Mapping[str, Any]) -> dict[str, Any]:
        return demo.summary(result, truth)

    def demo_lines(self, summary: Mapping[str, Any]) -> list[str]:
        return demo.lines(summary)
