"""Review rules: what flags a calcium lesion, what a result's reason says, and that results
stored before calcium results carried ``needs_review`` are still judged by peak HU."""

from __future__ import annotations

import pytest

from cardiogate.tasks.calcium import CalciumTask
from cardiogate.tasks.calcium.review import calcium_lesion_flags

CALCIUM = CalciumTask()


@pytest.mark.parametrize(
    ("peak_hu", "probability", "flags"),
    [
        (149.9, 0.99, ["low_peak_hu"]),
        (150.0, 0.6, []),
        (400.0, 0.59, ["artery_in_doubt"]),
        (140.0, 0.3, ["low_peak_hu", "artery_in_doubt"]),
        (400.0, None, []),  # no probability recorded: nothing to doubt
    ],
)
def test_calcium_lesion_flags(peak_hu: float, probability: float | None, flags: list[str]) -> None:
    assert calcium_lesion_flags(peak_hu, probability) == flags


def test_the_limits_are_the_callers() -> None:
    assert calcium_lesion_flags(300.0, 0.7, low_peak_hu=301.0, min_artery_probability=0.8) == [
        "low_peak_hu",
        "artery_in_doubt",
    ]


def test_the_analysis_decides_when_it_says() -> None:
    clear = {"task": "calcium", "needs_review": False, "lesions": [{"peak_hu": 131.0}]}
    assert CALCIUM.review_reason(clear) is None
    doubt = {"needs_review": True, "review_reason": "1 lesion(s) whose artery is in doubt"}
    assert CALCIUM.review_reason(doubt) == "1 lesion(s) whose artery is in doubt"
    assert CALCIUM.review_reason({"needs_review": True}) == "flagged for review by the analysis"


def test_an_older_calcium_result_is_judged_by_peak_hu() -> None:
    old = {"lesions": [{"peak_hu": 140.0, "artery": "LAD"}, {"peak_hu": 600.0, "artery": "RCA"}]}
    assert CALCIUM.review_reason(old) == ("1 lesion(s) with a peak below 150 HU (threshold 130 HU)")
    assert CALCIUM.review_reason({"lesions": [{"peak_hu": 600.0}]}) is None
    flagged = CALCIUM.review_summary(old)["flagged_lesions"]
    assert [lesion["artery"] for lesion in flagged] == ["LAD"]


def test_a_flagged_valve_lesion_is_shown_to_the_reviewer() -> None:
    valve_lesion = {"artery": "AV", "peak_hu": 140.0, "review_flags": ["low_peak_hu"]}
    result = {
        "needs_review": True,
        "review_reason": "1 lesion(s) with a peak below 150 HU (threshold 130 HU)",
        "lesions": [{"artery": "LAD", "peak_hu": 600.0, "review_flags": []}],
        "aortic_valve": {"lesions": [valve_lesion]},
    }
    assert CALCIUM.review_summary(result)["flagged_lesions"] == [
        {
            "artery": "AV",
            "artery_probability": None,
            "peak_hu": 140.0,
            "agatston": None,
            "area_mm2": None,
            "review_flags": ["low_peak_hu"],
        }
    ]
    not_measured = {**result, "aortic_valve": None}  # a 5-class model's result
    assert CALCIUM.review_summary(not_measured)["flagged_lesions"] == []
