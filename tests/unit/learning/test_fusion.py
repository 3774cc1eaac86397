"""Fusion of several reviews of one result, with answers worked by hand."""

from __future__ import annotations

import pytest

from cardiogate.learning.fusion import fuse
from cardiogate.learning.labels import NONE, Label
from cardiogate.tasks.calcium.corrections import CalciumCorrections, calcium_labels
from cardiogate.tasks.stenosis.corrections import StenosisCorrections, stenosis_labels

CALCIUM = {
    "lesions": [
        {"artery": "LAD", "area_mm2": 4.0, "slice_index": 10},
        {"artery": "RCA", "area_mm2": 2.0, "slice_index": 12},
        {"artery": "LCX", "area_mm2": 3.0, "slice_index": 14},
    ]
}
# the truth: lesion 1 is bone (not coronary calcium), lesion 2 is in the LM; one missed LAD
TRUTH = {
    "lesions": [{"index": 1, "artery": "none"}, {"index": 2, "artery": "LM"}],
    "added": [{"slice_index": 20, "row": 100.0, "col": 80.0, "artery": "LAD"}],
}


def _calcium(body: dict[str, object] | None) -> list[Label]:
    corrections = None if body is None else CalciumCorrections.model_validate(body)
    return calcium_labels(CALCIUM, corrections)


def _values(labels: list[Label]) -> dict[str, object]:
    return {x.key: x.value for x in labels}


def test_two_right_reviewers_outvote_a_wrong_one() -> None:
    near = {
        **TRUTH,
        "added": [{"slice_index": 20, "row": 102.0, "col": 81.0, "artery": "LAD"}],
    }
    wrong = {"lesions": [{"index": 0, "artery": "none"}], "added": []}
    fused = fuse(
        [("a", _calcium(TRUTH)), ("b", _calcium(near)), ("c", _calcium(wrong))],
        5.0,
        model=_calcium(None),
    )
    values = _values(fused.labels)
    assert values == {
        "lesion/0": "LAD",
        "lesion/1": NONE,
        "lesion/2": "LM",
        "added/0": "LAD",
    }
    added = next(x for x in fused.labels if x.key == "added/0")
    assert added.position == pytest.approx((20.0, 101.0, 80.5))
    assert fused.unresolved == []
    assert fused.changed
    per = {r.reviewer: r for r in fused.agreement.per_reviewer}
    assert per["a"].fraction == 1.0
    # c: right on none of lesion 0, 1, 2 and the added one
    assert per["c"].agreed == 0
    assert per["c"].compared == 4
    # fused present: lesion 0 (4 mm2), 2 (3), added (1); c present: 1 (2), 2 (3)
    assert per["c"].dice == pytest.approx(2 * 3 / (8 + 5))


def test_agreeing_with_the_model_does_not_change_it() -> None:
    fused = fuse([("a", _calcium(None)), ("b", _calcium(None))], 5.0, model=_calcium(None))
    assert not fused.changed
    assert fused.unresolved == []
    assert fused.agreement.fleiss_kappa == 1.0


def test_a_tie_is_unresolved_for_an_adjudicator() -> None:
    lm = {"lesions": [{"index": 0, "artery": "LM"}]}
    fused = fuse([("a", _calcium(None)), ("b", _calcium(lm))], 5.0, model=_calcium(None))
    assert fused.unresolved == ["lesion/0"]


def test_a_tie_on_presence_is_unresolved() -> None:
    gone = {"lesions": [{"index": 1, "artery": "none"}]}
    fused = fuse([("a", _calcium(None)), ("b", _calcium(gone))], 5.0)
    assert fused.unresolved == ["lesion/1"]


def test_a_lone_addition_is_not_a_finding() -> None:
    far = {"added": [{"slice_index": 3, "row": 10.0, "col": 10.0, "artery": "RCA"}]}
    fused = fuse(
        [("a", _calcium(None)), ("b", _calcium(None)), ("c", _calcium(far))],
        5.0,
        model=_calcium(None),
    )
    assert "added/0" not in _values(fused.labels)
    assert not fused.changed


def test_staple_downweights_a_reviewer_who_is_always_wrong() -> None:
    """Ten lesions; three reviewers see the truth with one slip each, d inverts every call.
    d's STAPLE sensitivity and specificity fall to 0, the fused presence is the truth."""
    truth = [i % 3 != 0 for i in range(10)]

    def review(slip: int | None, invert: bool = False) -> list[Label]:
        calls = [(t != invert) != (i == slip) for i, t in enumerate(truth)]
        return [
            Label(f"lesion/{i}", "category", "LAD" if c else NONE, 2.0) for i, c in enumerate(calls)
        ]

    fused = fuse(
        [("a", review(1)), ("b", review(4)), ("c", review(7)), ("d", review(None, True))], 5.0
    )
    assert [x.value != NONE for x in fused.labels] == truth
    per = {r.reviewer: r for r in fused.agreement.per_reviewer}
    assert per["d"].sensitivity is not None
    assert per["d"].sensitivity < 0.1
    assert per["d"].specificity is not None
    assert per["d"].specificity < 0.1
    assert per["a"].sensitivity is not None
    assert per["a"].sensitivity > 0.8


STENOSIS = {
    "lesions": [
        {"vessel": "LAD", "segment": "mid LAD", "percent_stenosis": 55.0},
        {"vessel": "RCA", "segment": "proximal RCA", "percent_stenosis": 72.0},
    ]
}


def _stenosis(body: dict[str, object] | None) -> list[Label]:
    corrections = None if body is None else StenosisCorrections.model_validate(body)
    return stenosis_labels(STENOSIS, corrections)


def test_stenosis_median_percent_and_false_lesion() -> None:
    reviews = [
        ("a", _stenosis({"lesions": [{"index": 0, "percent": 40}, {"index": 1, "real": False}]})),
        ("b", _stenosis({"lesions": [{"index": 0, "percent": 70}, {"index": 1, "real": False}]})),
        ("c", _stenosis({"lesions": [{"index": 0, "vessel": "D1"}]})),
    ]
    fused = fuse(reviews, 5.0, model=_stenosis(None))
    values = _values(fused.labels)
    assert values["lesion/0/percent"] == pytest.approx(55.0)  # median of 40, 70, 55
    assert values["lesion/0/vessel"] == "LAD"
    assert values["lesion/1"] == NONE
    assert "lesion/1/vessel" not in values  # a false lesion has no vessel
    assert fused.changed
    assert fused.as_dict()["labels"][0] == {
        "key": "lesion/0",
        "kind": "category",
        "value": "lesion",
    }
