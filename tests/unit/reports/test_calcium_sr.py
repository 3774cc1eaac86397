"""The calcium SR, read back with highdicom: TID 1500 groups per artery and per lesion."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import highdicom as hd
import numpy as np
import pydicom
import pytest

from cardiogate.analyses.calcium import ARTERIES, score_lesions
from cardiogate.analyses.calcium_ct import describe
from cardiogate.dicom.uids import DEVICE_OBSERVER_UID
from cardiogate.reports import build_calcium_objects
from cardiogate.reports.codes import (
    AGATSTON_METHOD,
    ARTERY_SITES,
    CAC_DRS,
    CALCIFIED_PLAQUE,
    CALCIUM_MASS,
    CALCIUM_SCORE,
    CALCIUM_VOLUME,
    CLASSIC_CATEGORY,
    CORONARY_ARTERY,
    CUBIC_MILLIMETRE,
    NO_UNITS,
)
from reporting_jobs import CalciumInputs, calcium_inputs, texts, write_objects

SITE_KEYS = {ARTERY_SITES[a].value: a for a in ARTERIES} | {CORONARY_ARTERY.value: "total"}


def _groups_by_key(
    sr: hd.sr.Comprehensive3DSR,
) -> dict[str, hd.sr.MeasurementsAndQualitativeEvaluations]:
    groups = sr.content.get_image_measurement_groups()
    return {SITE_KEYS[group.finding_sites[0].value.value]: group for group in groups}


def _value(group: hd.sr.MeasurementsAndQualitativeEvaluations, name: object) -> float:
    [measurement] = group.get_measurements(name=name)
    return float(measurement.value)


def test_scores_per_artery_and_total_equal_the_result(
    calcium: CalciumInputs, calcium_files: dict[str, Path]
) -> None:
    sr = hd.sr.srread(calcium_files["SR"])
    groups = _groups_by_key(sr)
    assert set(groups) == {*ARTERIES, "total"}
    for key, group in groups.items():
        assert group.finding_type == CALCIFIED_PLAQUE
        assert _value(group, CALCIUM_SCORE) == calcium.result.agatston[key]
        assert _value(group, CALCIUM_VOLUME) == calcium.result.volume_mm3[key]
        [score] = group.get_measurements(name=CALCIUM_SCORE)
        assert score.unit == NO_UNITS
        assert score.method == AGATSTON_METHOD
        [volume] = group.get_measurements(name=CALCIUM_VOLUME)
        assert volume.unit == CUBIC_MILLIMETRE
        assert group.get_measurements(name=CALCIUM_MASS) == []  # no calibration factor
    assert calcium.result.agatston["LAD"] > 0  # the rule labels LAD: a real check above


def test_categories_are_on_the_total_group_only(
    calcium: CalciumInputs, calcium_files: dict[str, Path]
) -> None:
    groups = _groups_by_key(hd.sr.srread(calcium_files["SR"]))
    evaluations = {
        (item.name.value, item.value.value)
        for item in groups["total"].get_qualitative_evaluations()
    }
    # the rule calls every bright pixel LAD, bones included: a large score, one vessel
    assert calcium.result.category == {"classic": ">400", "cac_drs": "A3/N1"}
    assert evaluations == {(CLASSIC_CATEGORY.value, "CAC-GT400"), (CAC_DRS.value, "CACDRS-A3/N1")}
    assert all(not groups[a].get_qualitative_evaluations() for a in ARTERIES)


def test_each_lesion_references_its_artery_segment_and_slice(
    calcium: CalciumInputs, calcium_files: dict[str, Path]
) -> None:
    sr = hd.sr.srread(calcium_files["SR"])
    seg = pydicom.dcmread(calcium_files["SEG"])
    segment_of = {
        item.AnatomicRegionSequence[0].CodeValue: int(item.SegmentNumber)
        for item in seg.SegmentSequence
    }
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == len(calcium.result.lesions) > 0
    for group, lesion in zip(groups, calcium.result.lesions, strict=True):
        site = ARTERY_SITES[lesion.artery]
        assert group.finding_sites[0].value == site
        assert _value(group, CALCIUM_SCORE) == pytest.approx(lesion.agatston)
        segment, source = (item.ReferencedSOPSequence[0] for item in group.referenced_segment)
        assert segment.ReferencedSOPInstanceUID == seg.SOPInstanceUID
        assert segment.ReferencedSegmentNumber == segment_of[site.value]
        assert "ReferencedFrameNumber" not in segment  # excluded by a segment number
        assert source.ReferencedSOPInstanceUID == lesion.SOPInstanceUID
        assert calcium.labels[lesion.slice_index].max() == ARTERIES.index(lesion.artery) + 1


def test_algorithm_observer_and_notice_are_in_the_report(
    calcium: CalciumInputs, calcium_files: dict[str, Path]
) -> None:
    ds = pydicom.dcmread(calcium_files["SR"])
    values = texts(ds)
    assert calcium.result.model.name in values
    assert calcium.result.model.version in values
    assert {"threshold_hu=130", "min_area_mm2=1", "connectivity=8"} <= set(values)
    assert DEVICE_OBSERVER_UID in values
    assert calcium.result.notice in values
    assert "not for clinical use" in calcium.result.notice
    assert ds.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert [item.CodingSchemeDesignator for item in ds.CodingSchemeIdentificationSequence] == [
        "99CARDIO"
    ]


def test_mass_is_reported_in_milligrams_when_calibrated(tmp_path: Path) -> None:
    job = calcium_inputs(tmp_path, mass_factor=0.8)
    assert job.result.mass_mg is not None
    [sr_dataset] = [
        ds
        for ds in build_calcium_objects(job.sources, job.result, job.volume, job.labels)
        if ds.Modality == "SR"
    ]
    sr_dataset.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    groups = _groups_by_key(hd.sr.srread(tmp_path / "sr.dcm"))
    for key, group in groups.items():
        [mass] = group.get_measurements(name=CALCIUM_MASS)
        assert float(mass.value) == job.result.mass_mg[key]
        assert mass.unit.value == "mg"


def test_lesions_of_several_arteries_reference_their_own_segments(
    calcium: CalciumInputs, tmp_path: Path
) -> None:
    # the rule's LAD labels split by image half: left of the patient (image right) LCX
    labels = np.where(calcium.labels > 0, 2, 0).astype(np.uint8)
    labels[:, :, 32:][labels[:, :, 32:] > 0] = 3
    volume = calcium.volume
    scores, scored = score_lesions(
        volume.hu, labels, volume.pixel_spacing_mm, volume.slice_increment_mm
    )
    model = SimpleNamespace(card=calcium.result.model, provider="CPUExecutionProvider")
    result = describe(scores, volume, model, None, 130.0, 1.0, (0.0, 0.0, 0.0, 0.0))  # type: ignore[arg-type]
    assert {lesion.artery for lesion in result.lesions} == {"LAD", "LCX"}
    objects = build_calcium_objects(calcium.sources, result, volume, scored)
    paths = write_objects(objects, tmp_path)
    seg = pydicom.dcmread(paths["SEG"])
    segment_of = {
        item.AnatomicRegionSequence[0].CodeValue: int(item.SegmentNumber)
        for item in seg.SegmentSequence
    }
    assert len(segment_of) == 2
    groups = hd.sr.srread(paths["SR"]).content.get_volumetric_roi_measurement_groups()
    for group, lesion in zip(groups, result.lesions, strict=True):
        site = ARTERY_SITES[lesion.artery].value
        [segment, _] = (item.ReferencedSOPSequence[0] for item in group.referenced_segment)
        assert segment.ReferencedSegmentNumber == segment_of[site]
    by_key = _groups_by_key(hd.sr.srread(paths["SR"]))
    assert _value(by_key["LCX"], CALCIUM_SCORE) == result.agatston["LCX"] > 0
    assert by_key["total"].get_qualitative_evaluations()[1].value.value.endswith("/N2")
