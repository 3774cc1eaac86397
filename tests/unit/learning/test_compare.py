"""Shadow comparisons: calcium by CAC-DRS category and Agatston differences, stenosis by
the significant vessels and the largest %DS, the default by the result without timings."""

from __future__ import annotations

from typing import Any

import pytest

from cardiogate.tasks import configure_tasks
from cardiogate.tasks.calcium.compare import compare as compare_calcium
from cardiogate.tasks.stenosis.compare import compare as compare_stenosis
from task_doubles import function_task


def _calcium(lm: float, lad: float, lcx: float = 0.0, rca: float = 0.0) -> dict[str, Any]:
    scores = {"LM": lm, "LAD": lad, "LCX": lcx, "RCA": rca}
    return {"task": "calcium", "agatston": {**scores, "total": sum(scores.values())}}


def test_calcium_agrees_within_a_category_and_reports_each_difference() -> None:
    c = compare_calcium(_calcium(10.0, 40.0), _calcium(12.0, 45.5, rca=3.0))
    assert c.agree  # A1 both: 50 and 60.5
    assert c.difference["agatston_total"] == pytest.approx(10.5)
    assert c.difference["agatston_LAD"] == pytest.approx(5.5)
    assert c.difference["agatston_RCA"] == pytest.approx(3.0)
    assert c.difference["agatston_LCX"] == 0.0
    assert c.summary == "same category A1; Agatston 50.0 -> 60.5 (+10.5)"


@pytest.mark.parametrize(
    ("serving", "candidate", "summary"),
    [
        (_calcium(0, 0), _calcium(0, 2.0), "category A0 -> A1; Agatston 0.0 -> 2.0"),
        (_calcium(0, 99.0), _calcium(0, 100.0), "category A1 -> A2; Agatston 99.0 -> 100.0"),
        (_calcium(0, 350.0), _calcium(0, 250.0), "category A3 -> A2; Agatston 350.0 -> 250.0"),
    ],
)
def test_calcium_disagrees_across_a_category_boundary(
    serving: dict[str, Any], candidate: dict[str, Any], summary: str
) -> None:
    c = compare_calcium(serving, candidate)
    assert not c.agree
    assert c.summary == summary


def _stenosis(*lesions: tuple[str | None, float]) -> dict[str, Any]:
    return {
        "task": "stenosis",
        "lesions": [{"vessel": v, "percent_stenosis": p} for v, p in lesions],
    }


def test_stenosis_agrees_on_the_same_significant_vessels() -> None:
    c = compare_stenosis(_stenosis(("LAD", 62.0), ("RCA", 30.0)), _stenosis(("LAD", 55.0)))
    assert c.agree  # a 30% lesion is not significant: missing it changes nothing
    assert c.difference == {"max_percent_stenosis": pytest.approx(-7.0)}
    assert c.summary == "same significant vessels (LAD); max %DS -7.0"


def test_stenosis_disagrees_on_a_lesion_crossing_50_percent_or_another_vessel() -> None:
    crossing = compare_stenosis(_stenosis(("LAD", 48.0)), _stenosis(("LAD", 51.0)))
    assert not crossing.agree
    assert crossing.summary == "significant vessels none -> LAD; max %DS +3.0"
    moved = compare_stenosis(_stenosis(("LAD", 70.0)), _stenosis(("D1", 70.0)))
    assert not moved.agree
    unnamed = compare_stenosis(_stenosis((None, 70.0)), _stenosis((None, 75.0)))
    assert unnamed.agree


def test_the_tasks_compare_with_their_own_rules() -> None:
    tasks = configure_tasks()
    assert not tasks["calcium"].compare(_calcium(0, 0), _calcium(0, 5.0)).agree
    assert tasks["stenosis"].compare(_stenosis(("LAD", 60.0)), _stenosis(("LAD", 90.0))).agree


def test_the_default_compares_results_without_timings_and_model() -> None:
    task = function_task("plain", lambda paths, model, needed: None)  # type: ignore[arg-type,return-value]
    serving = {"total": 3, "timings_s": {"all": 1.0}, "model": {"version": "1"}}
    assert task.compare(
        serving, {"total": 3, "timings_s": {"all": 2.0}, "model": {"version": "2"}}
    ).agree
    assert not task.compare(serving, {"total": 4, "timings_s": {}, "model": {}}).agree
