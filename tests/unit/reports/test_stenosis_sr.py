"""The stenosis SR, read back with highdicom: one planar ROI per lesion on its frame, and a
summary drawn as a point on the most severe one."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr._cid_dict import cid_concepts

from cardiogate.analyses.xa_cine import load_xa_cine
from cardiogate.inference.engine import load_model
from cardiogate.reports.codes import (
    CERTAINTY,
    CORONARY_ARTERY,
    DIAMETER_METHOD,
    DIAMETER_STENOSIS,
    LESION_LENGTH,
    LUMEN_DIAMETER,
    MILLIMETRE,
    MINIMUM,
    NEEDS_REVIEW,
    NO,
    PERCENT,
    REPRESENTATIVE_POINT,
    SIGNIFICANT_STENOSIS,
    STENOSIS,
    STENOSIS_GRADE,
    XA_PERFORMED,
    XA_PROCEDURE,
    YES,
)
from cardiogate.tasks.stenosis.analysis import analyze_xa
from cardiogate.tasks.stenosis.objects import build_stenosis_objects
from cardiogate.tasks.stenosis.segments import segment_of
from reporting_jobs import StenosisInputs, content_items, texts, write_objects
from tiny_model import write_dark_spot_model
from xa_datasets import single_frame_xa

Group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
SUMMARY = "Stenosis series summary"


def _measurement(group: Group, name: object) -> hd.sr.Measurement:
    [measurement] = group.get_measurements(name=name)
    return measurement


def _split(path: Path) -> tuple[Group | None, list[Group]]:
    groups = hd.sr.srread(path).content.get_planar_roi_measurement_groups()
    summaries = [g for g in groups if g.tracking_identifier == SUMMARY]
    return (summaries[0] if summaries else None), [g for g in groups if g not in summaries]


def test_percent_stenosis_and_grade_per_lesion_equal_the_result(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    _, groups = _split(stenosis_files["SR"])
    assert len(groups) == len(stenosis.result.lesions) > 0
    for group, lesion in zip(groups, stenosis.result.lesions, strict=True):
        assert group.finding_type == STENOSIS
        assert group.finding_sites[0].value == CORONARY_ARTERY  # the rule names no vessel
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


def test_a_measured_lesion_carries_its_qca_in_mm_and_an_estimated_one_none(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    _, groups = _split(stenosis_files["SR"])
    kinds = {lesion.percent_method for lesion in stenosis.result.lesions}
    assert kinds == {"qca", "network"}, "the fixture should hold both kinds of lesion"
    for group, lesion in zip(groups, stenosis.result.lesions, strict=True):
        diameters = group.get_measurements(name=LUMEN_DIAMETER)
        lengths = group.get_measurements(name=LESION_LENGTH)
        if lesion.percent_method != "qca":
            assert diameters == []
            assert lengths == []
            continue
        by_derivation = {d.derivation.value: d for d in diameters}
        minimal = by_derivation[MINIMUM.value]
        reference = by_derivation["QCA-REF"]
        assert minimal.unit == reference.unit == MILLIMETRE
        assert float(minimal.value) == pytest.approx(lesion.minimal_lumen_diameter_mm)
        assert float(reference.value) == pytest.approx(lesion.reference_diameter_mm)
        # the %DS reported is the QCA arithmetic on the two diameters, within rounding of
        # the median over sightings
        assert 0 < float(minimal.value) < float(reference.value)
        [length] = lengths
        assert float(length.value) == pytest.approx(lesion.lesion_length_mm)


def test_polylines_are_on_the_lesion_frame_in_dicom_image_coordinates(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    _, groups = _split(stenosis_files["SR"])
    for group, lesion in zip(groups, stenosis.result.lesions, strict=True):
        region = group.roi
        assert region.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
        # SCOORD (0, 0) is the top left corner of the top left pixel; the result's is its centre
        expected = np.asarray(lesion.polyline_px) + 0.5
        np.testing.assert_allclose(region.value, expected, atol=1e-3)
        [source] = region.ContentSequence[0].ReferencedSOPSequence
        assert source.ReferencedSOPInstanceUID == lesion.SOPInstanceUID
        assert source.ReferencedFrameNumber == lesion.referenced_frame
        assert source.ReferencedSOPClassUID == pydicom.uid.XRayAngiographicImageStorage


def test_the_summary_is_a_point_on_the_most_severe_lesion_with_the_run_flags(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    summary, _ = _split(stenosis_files["SR"])
    assert summary is not None
    [significant] = summary.get_qualitative_evaluations(name=SIGNIFICANT_STENOSIS)
    [review] = summary.get_qualitative_evaluations(name=NEEDS_REVIEW)
    assert significant.value == (YES if stenosis.result.significant else NO)
    assert review.value == (YES if stenosis.result.needs_review else NO)
    assert stenosis.result.significant
    assert float(_measurement(summary, CERTAINTY).value) == pytest.approx(
        stenosis.result.probability * 100, abs=0.01
    )
    worst = stenosis.result.most_severe
    assert summary.roi.graphic_type == hd.sr.GraphicTypeValues.POINT
    np.testing.assert_allclose(summary.roi.value, [[worst.x_px + 0.5, worst.y_px + 0.5]])
    [source] = summary.roi.ContentSequence[0].ReferencedSOPSequence
    assert (source.ReferencedSOPInstanceUID, source.ReferencedFrameNumber) == (
        worst.SOPInstanceUID,
        worst.referenced_frame,
    )
    purposes = [
        item.ConceptCodeSequence[0].CodeValue
        for item in summary[0].ContentSequence
        if item.ConceptNameCodeSequence[0].CodeValue == "130400"
    ]
    assert purposes == [REPRESENTATIVE_POINT.value]
    frames = ", ".join(map(str, stenosis.result.frames_used))  # one instance: its frames
    assert f"Frames analysed: {frames}." in texts(pydicom.dcmread(stenosis_files["SR"]))


def test_notice_convention_algorithm_and_procedures_are_in_the_report(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    ds = pydicom.dcmread(stenosis_files["SR"])
    values = texts(ds)
    assert stenosis.result.notice in values
    assert any(stenosis.result.grading_convention in text for text in values)
    assert {"dark-spot-rule", "0.0.1"} <= set(values)
    [parameters] = {v for v in values if v.startswith("max_frames=")}  # the same in each group
    assert "max_frames=8" in parameters.split("; ")
    assert ds.SOPClassUID == pydicom.uid.ComprehensiveSRStorage
    [procedure] = [
        item for item in ds.ContentSequence if item.ConceptNameCodeSequence[0].CodeValue == "121058"
    ]
    # in CID 100 of every edition (SCT 77343006 Angiography joined it late)
    assert procedure.ConceptCodeSequence[0].CodeValue == XA_PROCEDURE.value == "363679005"
    assert "ImagingProcedure" in cid_concepts[100]["SCT"]
    [performed] = ds.PerformedProcedureCodeSequence
    assert performed.CodeValue == XA_PERFORMED.value == "419416005"
    assert "CardiacCatheterizationCoronaryAngiogram" in cid_concepts[3757]["SCT"]


def test_the_image_library_and_evidence_are_the_frames_drawn_on(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    ds = pydicom.dcmread(stenosis_files["SR"])
    [library] = [
        i for i in ds.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "111028"
    ]
    [group] = library.ContentSequence
    [image] = [i for i in group.ContentSequence if i.ValueType == "IMAGE"]  # one multi-frame
    [reference] = image.ReferencedSOPSequence
    assert reference.ReferencedSOPInstanceUID == stenosis.sources[0].SOPInstanceUID
    frames = [int(f) for f in np.atleast_1d(reference.ReferencedFrameNumber)]
    assert frames == sorted({lesion.referenced_frame for lesion in stenosis.result.lesions})
    [study] = ds.CurrentRequestedProcedureEvidenceSequence
    [series] = study.ReferencedSeriesSequence
    assert [i.ReferencedSOPInstanceUID for i in series.ReferencedSOPSequence] == [
        stenosis.sources[0].SOPInstanceUID
    ]


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
    _, [group] = _split(tmp_path / "sr.dcm")
    [source] = group.roi.ContentSequence[0].ReferencedSOPSequence
    assert source.ReferencedSOPInstanceUID == lesion.SOPInstanceUID
    assert source.ReferencedSOPInstanceUID == sources[lesion.frame - 1].SOPInstanceUID
    assert source.ReferencedFrameNumber == 1
    key = objects[1]
    assert key.SourceImageSequence[0].ReferencedSOPInstanceUID == lesion.SOPInstanceUID
    assert "ReferencedFrameNumber" not in key.SourceImageSequence[0]
    frames_note = next(t for t in texts(objects[0]) if t.startswith("Frames analysed"))
    assert "cine order" in frames_note  # one frame per instance


def statements(ds: pydicom.Dataset) -> set[tuple[str, str]]:
    """(concept, value) of the CODE items in the report's Qualitative Evaluations."""
    [container] = [
        item
        for item in ds.ContentSequence
        if item.ConceptNameCodeSequence[0].CodeValue == "C0034375"
    ]
    return {
        (item.ConceptNameCodeSequence[0].CodeValue, item.ConceptCodeSequence[0].CodeValue)
        for item in container.ContentSequence
        if item.ValueType == "CODE"
    }


def test_a_run_without_a_lesion_states_its_flags_without_drawing(tmp_path: Path) -> None:
    frames = np.full((6, 256, 256), 200, dtype=np.uint8)
    frames[:, 40:220, 128] = 120  # a vessel, no dark spot
    sources = single_frame_xa(frames)
    model = load_model(write_dark_spot_model(tmp_path / "dark"), ["CPUExecutionProvider"])
    result = analyze_xa(sources, model)
    assert not result.lesions
    assert not result.significant
    [sr] = [
        o
        for o in build_stenosis_objects(sources, result, load_xa_cine(sources))
        if o.Modality == "SR"
    ]
    sr.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    ds = pydicom.dcmread(tmp_path / "sr.dcm")
    parts = {item.ConceptNameCodeSequence[0].CodeValue: item for item in ds.ContentSequence}
    assert "126010" not in parts  # no Imaging Measurements: nothing for a viewer to trip on
    assert statements(ds) == {
        (SIGNIFICANT_STENOSIS.value, NO.value),
        (NEEDS_REVIEW.value, YES.value if result.needs_review else NO.value),
    }
    listed = {
        str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
        for item in content_items(ds)
        if item.ValueType == "IMAGE"
    }
    assert listed == {str(s.SOPInstanceUID) for s in sources}  # nothing drawn: every instance


def test_a_named_segment_is_the_finding_site_and_in_the_label(
    stenosis: StenosisInputs, tmp_path: Path
) -> None:
    lesion = stenosis.result.lesions[0]
    segment = segment_of("LAD", 0.4)
    named = lesion.model_copy(
        update={
            "vessel": "LAD",
            "artery": "LAD",
            "segment": segment.name,
            "segment_short": segment.short,
            "scct_segment": segment.scct,
            "segment_code": segment.code,
            "segment_meaning": segment.meaning,
        }
    )
    result = stenosis.result.model_copy(update={"lesions": [named], "most_severe": named})
    files = write_objects(build_stenosis_objects(stenosis.sources, result, stenosis.cine), tmp_path)
    summary, [group] = _split(files["SR"])
    assert summary is not None
    for found in (group, summary):
        [site] = found.finding_sites
        code = site.value
        assert (code.value, code.scheme_designator, code.meaning) == (
            "91748002",
            "SCT",
            "Mid Left Anterior Descending Coronary Artery",
        )
    assert group.tracking_identifier == f"Stenosis 1 mid LAD (segment 7) frame {named.frame}"
