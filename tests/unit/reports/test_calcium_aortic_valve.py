"""Aortic valve calcium from a model that labels it (card label AV): scored apart, never in
the coronary totals, and reported in the SR, the SEG and the summary page as not coronary;
from a 5-class model, not measured (None, never 0). The models are real ONNX models with a
fixed rule over a hand-drawn CT (``valve_jobs``), so the expected scores are known by hand.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from valve_jobs import (
    FIVE,
    SIX,
    drawn_labels,
    rule_scores,
    valve_ct,
    valve_mass_mg,
    write_valve_model,
)

from cardiogate.analyses.ct_volume import CTVolume
from cardiogate.inference.engine import load_model
from cardiogate.reports.codes import (
    AGATSTON_METHOD,
    CALCIFIED_PLAQUE,
    CALCIUM_MASS,
    CALCIUM_SCORE,
    CALCIUM_VOLUME,
    NO_UNITS,
)
from cardiogate.tasks.calcium import CalciumTask
from cardiogate.tasks.calcium.analysis import analyze_ct_with_labels
from cardiogate.tasks.calcium.objects import build_calcium_objects
from cardiogate.tasks.calcium.result import AORTIC_VALVE_NOTE, CalciumResult
from cardiogate.tasks.calcium.summary_page import calcium_page
from peers import dciodvfy, dcmtk
from reporting_jobs import texts, write_objects

PROVIDERS = ["CPUExecutionProvider"]
AORTIC_VALVE = codes.SCT.AorticValve  # SCT 34202007
VALVE_SCORE = codes.DCM.CalciumScore  # DCM 112058
ABSENT = codes.SCT.Absent.value
VALVE_ABSENT = (codes.SCT.PathologicCalcification.value, ABSENT, AORTIC_VALVE.value)
Group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations


@dataclass(frozen=True)
class Job:
    sources: list[Dataset]
    result: CalciumResult
    volume: CTVolume
    scored: np.ndarray[Any, Any]
    files: dict[str, Path]


def _job(folder: Path, labels: list[str], *, coronary: bool = True, valve: bool = True) -> Job:
    sources = valve_ct(valve=valve)
    model = load_model(write_valve_model(folder / "model", labels, coronary=coronary), PROVIDERS)
    result, volume, scored = analyze_ct_with_labels(sources, model)
    files = write_objects(build_calcium_objects(sources, result, volume, scored), folder / "out")
    return Job(sources, result, volume, scored, files)


@pytest.fixture(scope="module")
def six(tmp_path_factory: pytest.TempPathFactory) -> Job:
    return _job(tmp_path_factory.mktemp("six"), SIX)


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory) -> Job:
    return _job(tmp_path_factory.mktemp("five"), FIVE)


def test_valve_calcium_is_scored_apart_and_never_in_the_coronary_totals(six: Job) -> None:
    lad, lad_volume, valve, valve_volume = rule_scores()
    result = six.result
    assert result.agatston == {"total": lad, "LM": 0.0, "LAD": lad, "LCX": 0.0, "RCA": 0.0}
    assert result.volume_mm3["total"] == pytest.approx(lad_volume)
    assert result.mass_mg is not None
    assert result.mass_mg["total"] == pytest.approx(lad_volume / 1000 * 300.0 * 0.8, abs=0.01)
    assert result.category == {"classic": "11-100", "cac_drs": "A1/N1"}  # 72, not 396
    assert {lesion.artery for lesion in result.lesions} == {"LAD"}
    assert result.aortic_valve is not None
    assert result.aortic_valve.agatston == pytest.approx(valve, abs=0.01)
    assert result.aortic_valve.volume_mm3 == pytest.approx(valve_volume, abs=0.01)
    assert result.aortic_valve.mass_mg == pytest.approx(valve_mass_mg(), abs=0.01)
    assert result.aortic_valve.lesion_count == len(result.aortic_valve.lesions) == 4
    assert {lesion.artery for lesion in result.aortic_valve.lesions} == {"AV"}
    assert result.aortic_valve.note == AORTIC_VALVE_NOTE
    assert "not part of the coronary score" in result.aortic_valve.note
    # the scored pixels are the drawn regions: LAD as 2, the valve as 5
    expected = drawn_labels(six.sources, six.volume.sop_instance_uids)
    np.testing.assert_array_equal(six.scored, expected)


def test_the_order_of_the_cards_labels_does_not_matter(six: Job, tmp_path: Path) -> None:
    shuffled = ["background", "AV", "RCA", "LCX", "LAD", "LM"]
    model = load_model(write_valve_model(tmp_path, shuffled), PROVIDERS)
    result, _, scored = analyze_ct_with_labels(six.sources, model)
    assert result.model_copy(update={"timings_s": {}}) == six.result.model_copy(
        update={"timings_s": {}}
    )
    np.testing.assert_array_equal(scored, six.scored)


def test_a_five_class_model_does_not_measure_the_valve(five: Job) -> None:
    lad, _, valve, _ = rule_scores()
    assert five.result.aortic_valve is None
    assert json.loads(five.result.model_dump_json())["aortic_valve"] is None  # null, not 0
    # which is why a 6-class model matters: this model calls the valve LAD
    assert five.result.agatston["LAD"] == pytest.approx(lad + valve)
    lines = CalciumTask().report_lines(five.result.model_dump(mode="json"))
    assert "aortic valve: not measured by this model" in lines
    assert "Aortic valve calcium: not measured by this model." in texts(
        pydicom.dcmread(five.files["SR"])
    )
    assert not [g for g in _groups(five) if _at_valve(g)]
    assert VALVE_ABSENT not in _statements(five)  # not measured is not absent


def test_a_result_stored_before_the_valve_section_still_validates(five: Job) -> None:
    stored = five.result.model_dump(mode="json")
    del stored["aortic_valve"]
    assert CalciumResult.model_validate(stored).aortic_valve is None


def _groups(job: Job) -> list[Group]:
    return list(hd.sr.srread(job.files["SR"]).content.get_planar_roi_measurement_groups())


def _at_valve(group: Group) -> bool:
    return bool(group.finding_sites) and group.finding_sites[0].value == AORTIC_VALVE


def _value(group: Group, name: Any) -> float:
    [measurement] = group.get_measurements(name=name)
    return float(measurement.value)


def _pixel(group: Group, job: Job) -> tuple[int, int, int]:
    """(slice, row, column) of a POINT group's point."""
    [source] = group.roi.ContentSequence[0].ReferencedSOPSequence
    [(x, y)] = group.roi.value
    return job.volume.sop_instance_uids.index(source.ReferencedSOPInstanceUID), int(y), int(x)


def test_the_sr_has_a_valve_group_apart_from_the_coronary_tree(six: Job) -> None:
    groups = _groups(six)
    [valve] = [g for g in groups if _at_valve(g) and g.roi.graphic_type.value == "POINT"]
    result = six.result
    assert result.aortic_valve is not None
    assert result.aortic_valve.mass_mg is not None
    assert "not in the coronary score" in str(valve.tracking_identifier)
    assert valve.finding_type == codes.SCT.PathologicCalcification
    assert valve.get_measurements(name=CALCIUM_SCORE) == []  # not the coronary score
    assert _value(valve, VALVE_SCORE) == result.aortic_valve.agatston
    [score] = valve.get_measurements(name=VALVE_SCORE)
    assert (score.unit, score.method) == (NO_UNITS, AGATSTON_METHOD)
    assert _value(valve, CALCIUM_VOLUME) == result.aortic_valve.volume_mm3
    assert _value(valve, CALCIUM_MASS) == result.aortic_valve.mass_mg
    assert six.scored[_pixel(valve, six)] == 5  # drawn on valve calcium
    # the tree's total is the coronary score alone
    [tree] = [g for g in groups if str(g.tracking_identifier) == "Coronary calcium total"]
    assert _value(tree, CALCIUM_SCORE) == result.agatston["total"] == rule_scores()[0]
    assert six.scored[_pixel(tree, six)] == 2


def test_the_valve_lesions_are_outlined_apart_and_add_up_to_the_valve(six: Job) -> None:
    lesions = [g for g in _groups(six) if g.roi.graphic_type.value == "POLYLINE"]
    valve = [g for g in lesions if _at_valve(g)]
    coronary = [g for g in lesions if not _at_valve(g)]
    # the 900 HU region on three slices is one lesion, the 700 HU region another
    assert len(valve) == 2
    assert all(g.finding_type == codes.SCT.PathologicCalcification for g in valve)
    assert all(g.finding_type == CALCIFIED_PLAQUE for g in coronary)
    assert six.result.aortic_valve is not None
    assert sum(_value(g, VALVE_SCORE) for g in valve) == pytest.approx(
        six.result.aortic_valve.agatston
    )
    assert sum(_value(g, CALCIUM_SCORE) for g in coronary) == pytest.approx(
        six.result.agatston["total"]
    )
    identifiers = [str(g.tracking_identifier) for g in valve]
    assert all(name.startswith("Aortic valve calcium lesion") for name in identifiers)
    assert len({g.tracking_uid for g in lesions}) == len(lesions)


@pytest.mark.parametrize("kind", ["SR", "SEG"])
def test_dciodvfy_finds_no_error_in_the_valve_objects(six: Job, kind: str) -> None:
    lines = dciodvfy(six.files[kind])
    assert not [line for line in lines if line.startswith("Error")], lines
    warnings = [line for line in lines if line.startswith("Warning")]
    assert all("99CARDIO" in line for line in warnings), warnings  # only the local scheme


def test_dsrdump_reads_the_valve_sr_without_a_warning(six: Job) -> None:
    proc = subprocess.run(
        [dcmtk("dsrdump"), "-v", str(six.files["SR"])],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert not [line for line in proc.stderr.splitlines() if line.startswith(("W:", "E:"))]
    assert "Aortic Valve" in proc.stdout


def test_the_seg_has_a_valve_segment_of_the_scored_valve_pixels(six: Job) -> None:
    seg = hd.seg.segread(six.files["SEG"])
    uids = six.volume.sop_instance_uids
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, assert_missing_frames_are_empty=True
    )
    by_label = {
        seg.get_segment_description(number).segment_label: index
        for index, number in enumerate(seg.segment_numbers)
    }
    assert set(by_label) == {"LAD calcium", "Aortic valve calcium"}
    valve = seg.get_segment_description(seg.segment_numbers[by_label["Aortic valve calcium"]])
    assert valve.anatomic_regions == [AORTIC_VALVE]
    assert valve.segmented_property_type == codes.SCT.PathologicCalcification
    np.testing.assert_array_equal(
        pixels[..., by_label["Aortic valve calcium"]] > 0, six.scored == 5
    )
    np.testing.assert_array_equal(pixels[..., by_label["LAD calcium"]] > 0, six.scored == 2)


def _rows(job: Job) -> list[str]:
    by_uid = {str(ds.SOPInstanceUID): ds for ds in job.sources}
    slices = [by_uid[uid] for uid in job.volume.sop_instance_uids]
    return [line.text for line in calcium_page(slices, job.result).lines]


def test_the_summary_page_shows_the_valve_apart_or_says_it_was_not_measured(
    six: Job, five: Job
) -> None:
    shown = _rows(six)
    assert "Aortic valve calcium (not part of the coronary score): Agatston 324.0" in shown
    assert "AV" in shown  # its images are listed
    assert "Aortic valve calcium: not measured by this model" in _rows(five)
    assert not any("Aortic valve calcium (not part" in text for text in _rows(five))


def test_the_task_lines_list_the_valve_as_not_coronary(six: Job) -> None:
    task, stored = CalciumTask(), six.result.model_dump(mode="json")
    assert task.summary(stored) == (
        "Agatston 72.0 (classic 11-100, CAC-DRS A1/N1); aortic valve Agatston 324.0, not coronary"
    )
    assert (
        "aortic valve: Agatston 324.0, volume 243.0 mm3, 4 lesions (not part of the "
        in " ".join(task.report_lines(stored))
    )
    lines = task.lesion_lines(stored)
    assert lines[:2] == ["LAD: Agatston 36.0, peak 300 HU"] * 2
    assert lines[2:] == [
        "AV (aortic valve, not coronary): Agatston 100.0, peak 900 HU",
        "AV (aortic valve, not coronary): Agatston 100.0, peak 900 HU",
        "AV (aortic valve, not coronary): Agatston 100.0, peak 900 HU",
        "AV (aortic valve, not coronary): Agatston 24.0, peak 700 HU",
    ]


def _statements(job: Job) -> list[tuple[str, str, str | None]]:
    """The CODE items of the SR's Qualitative Evaluations container: (concept, value,
    finding site)."""
    ds = pydicom.dcmread(job.files["SR"])
    [container] = [
        item
        for item in ds.ContentSequence
        if item.ConceptNameCodeSequence[0].CodeValue == "C0034375"
    ]
    return [
        (
            item.ConceptNameCodeSequence[0].CodeValue,
            item.ConceptCodeSequence[0].CodeValue,
            item.ContentSequence[0].ConceptCodeSequence[0].CodeValue
            if "ContentSequence" in item
            else None,
        )
        for item in container.ContentSequence
        if item.ValueType == "CODE"
    ]


def test_valve_calcium_without_coronary_calcium_is_reported_alone(tmp_path: Path) -> None:
    job = _job(tmp_path, SIX, coronary=False)  # the model calls the plaque background
    assert job.result.lesions == []
    assert job.result.agatston["total"] == 0.0
    assert job.result.category == {"classic": "0", "cac_drs": "A0"}
    assert job.result.aortic_valve is not None
    assert job.result.aortic_valve.agatston == pytest.approx(rule_scores()[2])
    assert "KEY" not in job.files  # key images are per artery
    for kind in ("SR", "SEG"):
        assert not [line for line in dciodvfy(job.files[kind]) if line.startswith("Error")]
    groups = _groups(job)
    assert groups
    assert all(_at_valve(g) for g in groups)  # no artery, no tree: only the valve
    absent = [site for _, value, site in _statements(job) if value == ABSENT]
    assert len(absent) == 5  # each artery and the whole tree: no coronary calcium
    assert AORTIC_VALVE.value not in absent
    shown = _rows(job)
    assert "No coronary calcium found: Agatston 0." in shown
    assert "AV" in shown
    seg = hd.seg.segread(job.files["SEG"])
    assert [d.segment_label for d in seg.SegmentSequence] == ["Aortic valve calcium"]


def test_a_measured_valve_without_calcium_is_0_and_said_absent(tmp_path: Path) -> None:
    job = _job(tmp_path, SIX, valve=False)
    valve = job.result.aortic_valve
    assert valve is not None  # measured: 0, not None
    assert (valve.agatston, valve.volume_mm3, valve.lesion_count) == (0.0, 0.0, 0)
    assert VALVE_ABSENT in _statements(job)
    assert not [g for g in _groups(job) if _at_valve(g)]
    assert "Aortic valve calcium (not part of the coronary score): Agatston 0.0" in _rows(job)
    lines = CalciumTask().report_lines(job.result.model_dump(mode="json"))
    assert (
        "aortic valve: Agatston 0.0, volume 0.0 mm3, 0 lesions (not part of the coronary score)"
        in lines
    )


def test_a_valve_lesion_the_model_is_unsure_of_flags_the_result(six: Job, tmp_path: Path) -> None:
    model = load_model(write_valve_model(tmp_path), PROVIDERS)
    result, _, _ = analyze_ct_with_labels(six.sources, model, min_artery_probability=0.9)
    assert result.aortic_valve is not None
    doubtful = [x for x in result.aortic_valve.lesions if x.review_flags]
    # the 700 HU region: AV logit 16 against LAD 14, a probability of 0.88
    assert [(x.peak_hu, x.review_flags) for x in doubtful] == [(700.0, ["artery_in_doubt"])]
    assert result.needs_review
    assert result.review_reason is not None
    assert result.review_reason.startswith("1 lesion(s) whose artery is in doubt")
    flagged = CalciumTask().review_summary(result.model_dump(mode="json"))["flagged_lesions"]
    assert [x["artery"] for x in flagged] == ["AV"]
