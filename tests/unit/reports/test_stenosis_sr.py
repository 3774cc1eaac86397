"""The stenosis SR, read back with highdicom: one planar ROI per lesion and a summary."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from cardiogate.analyses.stenosis import analyze_xa
from cardiogate.analyses.xa_cine import load_xa_cine
from cardiogate.inference.engine import load_model
from cardiogate.reports import build_stenosis_objects
from cardiogate.reports.codes import (
    CERTAINTY,
    CORONARY_ARTERY,
    DIAMETER_METHOD,
    DIAMETER_STENOSIS,
    NEEDS_REVIEW,
    NO,
    PERCENT,
    SIGNIFICANT_STENOSIS,
    STENOSIS,
    STENOSIS_GRADE,
    YES,
)
from reporting_jobs import StenosisInputs, texts
from tiny_model import write_dark_spot_model
from xa_datasets import single_frame_xa


def _measurement(group: object, name: object) -> hd.sr.Measurement:
    [measurement] = group.get_measurements(name=name)  # type: ignore[attr-defined]
    return measurement


def test_percent_stenosis_and_grade_per_lesion_equal_the_result(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    sr = hd.sr.srread(stenosis_files["SR"])
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(stenosis.result.lesions) > 0
    for group, lesion in zip(groups, stenosis.result.lesions, strict=True):
        assert group.finding_type == STENOSIS
        assert group.finding_sites[0].value == CORONARY_ARTERY
        percent = _measurement(group, DIAMETER_STENOSIS)
        assert float(percent.value) == lesion.percent_stenosis
        assert percent.unit == PERCENT
        assert percent.method == DIAMETER_METHOD
        certainty = _measurement(group, CERTAINTY)
        assert float(certainty.value) == pytest.approx(lesion.probability * 100, abs=0.01)
        [evaluation] = group.get_qualitative_evaluations(name=STENOSIS_GRADE)
        assert evaluation.value.value == f"XAGRADE-{lesion.cad_rads}"
        assert "convention" in evaluation.name.meaning
    # the synthetic cine's explicit 75% stenosis, read as 75% by the rule, is a 4A
    assert stenosis.truth["lesions"][0]["percent_stenosis"] == 75.0
    assert (stenosis.result.most_severe.percent_stenosis, stenosis.result.most_severe.cad_rads) == (
        75.0,
        "4A",
    )


def test_polylines_are_on_the_lesion_frame_in_dicom_image_coordinates(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    sr = hd.sr.srread(stenosis_files["SR"])
    for group, lesion in zip(
        sr.content.get_planar_roi_measurement_groups(), stenosis.result.lesions, strict=True
    ):
        region = group.roi
        assert region.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
        # SCOORD (0, 0) is the top left corner of the top left pixel; the result's is its centre
        expected = np.asarray(lesion.polyline_px) + 0.5
        np.testing.assert_allclose(region.value, expected, atol=1e-3)
        [source] = region.ContentSequence[0].ReferencedSOPSequence
        assert source.ReferencedSOPInstanceUID == lesion.SOPInstanceUID
        assert source.ReferencedFrameNumber == lesion.referenced_frame
        assert source.ReferencedSOPClassUID == pydicom.uid.XRayAngiographicImageStorage


def test_the_series_summary_says_significant_and_whether_to_review(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    sr = hd.sr.srread(stenosis_files["SR"])
    [summary] = sr.content.get_image_measurement_groups()
    [significant] = summary.get_qualitative_evaluations(name=SIGNIFICANT_STENOSIS)
    [review] = summary.get_qualitative_evaluations(name=NEEDS_REVIEW)
    assert significant.value == (YES if stenosis.result.significant else NO)
    assert review.value == (YES if stenosis.result.needs_review else NO)
    assert stenosis.result.significant
    assert float(_measurement(summary, CERTAINTY).value) == pytest.approx(
        stenosis.result.probability * 100, abs=0.01
    )
    [source] = summary.source_images
    assert source.referenced_frame_numbers == stenosis.result.frames_used


def test_notice_convention_and_algorithm_are_in_the_report(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    ds = pydicom.dcmread(stenosis_files["SR"])
    values = texts(ds)
    assert stenosis.result.notice in values
    assert any(stenosis.result.grading_convention in text for text in values)
    assert {"dark-spot-rule", "0.0.1", "max_frames=8"} <= set(values)
    assert ds.SOPClassUID == pydicom.uid.ComprehensiveSRStorage


def test_single_frame_instances_are_referenced_by_instance(tmp_path: Path) -> None:
    frames = np.full((6, 256, 256), 200, dtype=np.uint8)
    frames[:, 40:220, 128] = 120  # a vessel
    frames[3:, 100:112, 150:162] = 30  # a dark spot from frame 4 on
    sources = single_frame_xa(frames)
    model = load_model(write_dark_spot_model(tmp_path / "dark"), ["CPUExecutionProvider"])
    result = analyze_xa(sources, model)
    [lesion] = result.lesions
    objects = build_stenosis_objects(sources, result, load_xa_cine(sources))
    objects[0].save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    [group] = hd.sr.srread(tmp_path / "sr.dcm").content.get_planar_roi_measurement_groups()
    [source] = group.roi.ContentSequence[0].ReferencedSOPSequence
    assert source.ReferencedSOPInstanceUID == lesion.SOPInstanceUID
    assert source.ReferencedSOPInstanceUID == sources[lesion.frame - 1].SOPInstanceUID
    assert source.ReferencedFrameNumber == 1
    key = objects[1]
    assert key.SourceImageSequence[0].ReferencedSOPInstanceUID == lesion.SOPInstanceUID
    assert "ReferencedFrameNumber" not in key.SourceImageSequence[0]
