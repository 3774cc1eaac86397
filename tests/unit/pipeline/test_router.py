"""Routing rules: calcium-scoring CT, angiograms, and the reasons everything else is ignored."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cardiogate.errors import ConfigurationError
from cardiogate.pipeline.router import route
from cardiogate.store.records import SeriesAttributes
from cardiogate.tasks import Route, Tasks, configure_tasks
from cardiogate.tasks.calcium import CT_IMAGE_STORAGE, CalciumTask

CALCIUM_CT = SeriesAttributes(
    SeriesInstanceUID="1.2.3",
    StudyInstanceUID="1.2",
    Modality="CT",
    SOPClassUID=CT_IMAGE_STORAGE,
    SeriesDescription="Calcium Score 3.0",
    ProtocolName="CaScore",
    BodyPartExamined="HEART",
    ImageType="ORIGINAL\\PRIMARY\\AXIAL",
    ContrastBolusAgent=None,
    SliceThickness="3",
    instance_count=64,
)
TASKS = configure_tasks()
LOADED = {"calcium", "stenosis"}


def test_calcium_scoring_ct_is_routed_to_calcium() -> None:
    decision = route(CALCIUM_CT, TASKS, LOADED)
    assert decision.task == "calcium"
    assert "3 mm" in decision.reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"SeriesDescription": "CTA Coronary 0.6"}, "SeriesDescription matches"),
        ({"ProtocolName": "Cardiac angio"}, "ProtocolName matches 'angio'"),
        ({"SliceThickness": "0.625"}, "slice thickness 0.625 mm is outside 2-3.5 mm"),
        ({"SliceThickness": "5"}, "outside"),
        ({"SliceThickness": None}, "SliceThickness is missing"),
        ({"ImageType": "DERIVED\\SECONDARY\\REFORMATTED"}, "not an axial series"),
        ({"instance_count": 3}, "3 slices"),
        ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2.1"}, "is not CT Image Storage"),
        ({"Modality": "MR"}, "modality MR is not analysed"),
        ({"Modality": None}, "modality unknown is not analysed"),
    ],
)
def test_other_series_are_ignored_with_a_reason(change: dict[str, object], reason: str) -> None:
    decision = route(replace(CALCIUM_CT, **change), TASKS, LOADED)
    assert decision.task is None
    assert reason in decision.reason


def test_header_evidence_of_contrast_reads_like_the_image_evidence() -> None:
    given = route(replace(CALCIUM_CT, ContrastBolusAgent="Iomeprol 400"), TASKS, LOADED)
    assert (given.task, given.reason) == (
        None,
        "not scored: contrast-enhanced (ContrastBolusAgent is set)",
    )
    named = route(replace(CALCIUM_CT, SeriesDescription="Coronary CTA"), TASKS, LOADED)
    assert named.reason == (
        "not scored: contrast-enhanced or angiography (SeriesDescription matches '\\bcta\\b')"
    )


@pytest.mark.parametrize(
    ("change", "note"),
    [
        (
            {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7", "Modality": "OT"},
            "secondary capture (Secondary Capture Image): not analysed",
        ),
        (
            {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7.4", "Modality": "CT"},
            "secondary capture (Multi-frame True Color Secondary Capture Image): not analysed",
        ),
        (
            {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.88.67", "Modality": "SR"},
            "dose report (X-Ray Radiation Dose SR): not analysed",
        ),
        (
            {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.88.22", "Modality": "SR"},
            "report (Enhanced SR): not analysed",
        ),
        (
            {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.88.33", "Modality": "SR"},
            "report (Comprehensive SR): not analysed",
        ),
        (
            {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.11.1", "Modality": "PR"},
            "presentation state (Grayscale Softcopy Presentation State): not analysed",
        ),
        (
            {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.66", "Modality": "CT"},
            "raw data (Raw Data): not analysed",
        ),
        (
            {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.104.1", "Modality": "DOC"},
            "document (Encapsulated PDF): not analysed",
        ),
        (
            {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.66.4", "Modality": "SEG"},
            "segmentation (Segmentation): not analysed",
        ),
        (
            {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.88.999", "Modality": "SR"},
            "structured report (1.2.840.10008.5.1.4.1.1.88.999): not analysed",
        ),
        (
            {"ImageType": "ORIGINAL\\PRIMARY\\LOCALIZER"},
            "localizer (ImageType LOCALIZER): not analysed",
        ),
    ],
)
def test_objects_that_are_not_for_us_are_skipped_with_a_note(
    change: dict[str, object], note: str
) -> None:
    decision = route(replace(CALCIUM_CT, **change), TASKS, LOADED)
    assert (decision.task, decision.reason) == (None, note)


def test_a_secondary_capture_sent_as_xa_is_not_an_angiogram() -> None:
    capture = replace(CALCIUM_CT, Modality="XA", SOPClassUID="1.2.840.10008.5.1.4.1.1.7")
    assert route(capture, TASKS, LOADED).reason == (
        "secondary capture (Secondary Capture Image): not analysed"
    )


def test_contrast_agent_none_is_not_contrast() -> None:
    assert route(replace(CALCIUM_CT, ContrastBolusAgent="NONE"), TASKS, LOADED).task == "calcium"


def test_angiogram_goes_to_stenosis_when_its_model_is_loaded() -> None:
    xa = replace(CALCIUM_CT, Modality="XA", SOPClassUID="1.2.840.10008.5.1.4.1.1.12.1")
    assert route(xa, TASKS, LOADED).task == "stenosis"
    assert route(xa, TASKS, {"calcium"}).reason == "no stenosis model is loaded"


def test_no_calcium_model_means_ignored() -> None:
    assert route(CALCIUM_CT, TASKS, set()).reason == "no calcium model is loaded"


def test_rules_are_configurable() -> None:
    rules = configure_tasks(
        routing={
            "calcium_slice_thickness_mm": (0.5, 3.5),
            "calcium_require": [r"ca\s*score|calcium"],
        }
    )
    assert route(replace(CALCIUM_CT, SliceThickness="1"), rules, LOADED).task == "calcium"
    unnamed = replace(CALCIUM_CT, SeriesDescription="Chest", ProtocolName="Routine")
    assert "required calcium-scoring names" in route(unnamed, rules, LOADED).reason


def test_a_routing_key_of_no_installed_task_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="calcum_require belong"):
        configure_tasks(routing={"calcum_require": ["x"]})
    with pytest.raises(ConfigurationError, match="CARDIOGATE_ROUTING calcium_slice_thickness_mm"):
        configure_tasks(routing={"calcium_slice_thickness_mm": "thin"})


def test_a_later_task_that_takes_a_series_wins_over_an_earlier_refusal() -> None:
    class TakesCta(CalciumTask):  # a second task, after calcium, for what calcium refuses
        name = "zcta"

        def route(self, series: SeriesAttributes) -> Route | None:
            refused = super().route(series)
            return None if refused is None or refused.task else Route("zcta", "the CTA rule")

    tasks = Tasks([*configure_tasks().values(), TakesCta()])
    cta = replace(CALCIUM_CT, ContrastBolusAgent="Iomeprol 400")
    assert route(cta, tasks, {"calcium", "zcta"}) == Route("zcta", "the CTA rule")
    # without its model, the first task that knows the series says why it is not analysed
    assert route(cta, tasks, {"calcium"}).reason == (
        "not scored: contrast-enhanced (ContrastBolusAgent is set)"
    )
    assert route(CALCIUM_CT, tasks, {"calcium", "zcta"}).task == "calcium"
