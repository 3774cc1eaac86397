"""One reconstruction per study: the rule that picks the series the calcium task scores,
and what happens to the others as series complete one after another."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cardiogate.pipeline import reconstructions
from cardiogate.store.records import SeriesAttributes, StudySeries
from cardiogate.tasks.calcium import CT_IMAGE_STORAGE, CalciumTask

STUDY = "1.2.9"
CALCIUM = CalciumTask()


def choose(candidates: list[StudySeries]) -> StudySeries:
    return reconstructions.choose(CALCIUM, candidates)


def settle(new: str, study: list[StudySeries]) -> reconstructions.Settlement:
    return reconstructions.settle(CALCIUM, new, study)


other_reason = CALCIUM.chosen_reason


def _series(
    uid: str,
    thickness: str | None = "3",
    *,
    number: int | None = 2,
    slices: int = 64,
    description: str = "Calcium Score",
    task: str | None = "calcium",
    state: str | None = "queued",
) -> StudySeries:
    attributes = SeriesAttributes(
        SeriesInstanceUID=uid,
        StudyInstanceUID=STUDY,
        Modality="CT",
        SOPClassUID=CT_IMAGE_STORAGE,
        SeriesDescription=description,
        ProtocolName="Cardiac Calcium Score",
        BodyPartExamined="HEART",
        ImageType="ORIGINAL\\PRIMARY\\AXIAL",
        ContrastBolusAgent=None,
        SliceThickness=thickness,
        instance_count=slices,
    )
    return StudySeries(attributes, number, task, state)


def _uid(series: StudySeries) -> str:
    return series.attributes.SeriesInstanceUID


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (_series("1.1", "3"), _series("1.2", "2.5", number=1)),  # thickness first
        (_series("1.1", "3", number=5), _series("1.2", "0.6", number=1, slices=400)),
        (_series("1.2", "3.5", slices=77), _series("1.1", "2.5", slices=55)),  # equally off
        (_series("1.1", "3", slices=60), _series("1.2", "3", slices=60, description="Ca B70f")),
        (_series("1.1", "3", slices=60), _series("1.2", "3", slices=60, description="bone")),
        (_series("1.1", "3", slices=70), _series("1.2", "3", slices=60)),  # more slices
        (_series("1.1", "3", number=2), _series("1.2", "3", number=3)),  # lower SeriesNumber
        (_series("1.1", "3", number=9), _series("1.2", "3", number=None)),
        (_series("1.1", "3"), _series("1.2", "3")),  # all equal: the lower UID
    ],
)
def test_the_rule_prefers_the_agatston_standard_then_soft_kernel_then_coverage(
    first: StudySeries, second: StudySeries
) -> None:
    assert _uid(choose([first, second])) == _uid(first)
    assert _uid(choose([second, first])) == _uid(first)


def test_the_reason_names_the_chosen_series() -> None:
    assert other_reason(_series("1.1", "3", number=3)) == (
        "another reconstruction of this study is scored: series 3, 3 mm"
    )
    assert other_reason(_series("1.1", "2.50", number=None)) == (
        "another reconstruction of this study is scored: series 1.1, 2.5 mm"
    )


def test_the_first_candidate_of_a_study_is_scored() -> None:
    study = [_series("1.1", state=None, task=None), _series("1.5", task=None, state="ignored")]
    assert settle("1.1", study).scored


def test_a_better_reconstruction_takes_the_place_of_a_queued_one() -> None:
    thin = _series("1.2", "2.5", number=4, state="queued")
    new = _series("1.1", "3", number=3, state=None, task=None)
    settled = settle("1.1", [thin, new])
    assert settled.scored
    assert settled.withdraw == ("1.2",)
    assert settled.reason == "another reconstruction of this study is scored: series 3, 3 mm"


@pytest.mark.parametrize("state", ["running", "reported", "delivered"])
def test_a_rival_that_ran_already_is_left_alone(state: str) -> None:
    thin = _series("1.2", "2.5", number=4, state=state)
    settled = settle("1.1", [thin, _series("1.1", "3", number=3, state=None, task=None)])
    assert (settled.scored, settled.withdraw) == (True, ())


def test_a_worse_reconstruction_is_not_scored() -> None:
    chosen = _series("1.1", "3", number=3, state="reported")
    settled = settle("1.2", [chosen, _series("1.2", "2.5", number=4, state=None, task=None)])
    assert not settled.scored
    assert settled.withdraw == ()
    assert settled.reason == "another reconstruction of this study is scored: series 3, 3 mm"


@pytest.mark.parametrize(
    "rival",
    [
        _series("1.1", "3", state="failed"),  # a failed job does not hold the place
        _series("1.1", "3", task=None, state="ignored"),  # lost, or ignored by routing
        _series("1.1", "3", state="ignored"),  # not analysable (contrast-enhanced)
        _series("1.1", "3", task="stenosis", state="queued"),
    ],
)
def test_only_routed_calcium_jobs_are_rivals(rival: StudySeries) -> None:
    assert settle("1.2", [rival, _series("1.2", "2.5", state=None, task=None)]).scored


def test_a_series_completed_again_is_not_its_own_rival() -> None:
    again = _series("1.2", "2.5", state="reported")
    assert settle("1.2", [again]).scored
    assert settle("1.2", [replace(again, job_state="queued")]).withdraw == ()
