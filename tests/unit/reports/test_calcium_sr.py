"""The calcium SR, read back with highdicom: a TID 1410 group per lesion (its outline on a
slice), per artery with calcium and for the whole tree (a point on the key slice), and the
report-level statements that have no place on an image."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sr._cid_dict import cid_concepts
from pydicom.sr.codedict import codes
from scipy import ndimage

from cardiogate.dicom.uids import DEVICE_OBSERVER_UID
from cardiogate.reports.codes import (
    ABSENT,
    AGATSTON_METHOD,
    ARTERY_SITES,
    CAC_DRS,
    CALCIFIED_PLAQUE,
    CALCIUM_MASS,
    CALCIUM_SCORE,
    CALCIUM_VOLUME,
    CLASSIC_CATEGORY,
    CORONARY_ARTERY,
    CT_PERFORMED,
    CT_PROCEDURE,
    CUBIC_MILLIMETRE,
    NO_UNITS,
    REPRESENTATIVE_POINT,
)
from cardiogate.tasks.calcium.objects import build_calcium_objects
from cardiogate.tasks.calcium.scoring import ARTERIES
from reporting_jobs import CalciumInputs, calcium_inputs, content_items, texts, write_objects

SITE_KEYS = {ARTERY_SITES[a].value: a for a in ARTERIES} | {CORONARY_ARTERY.value: "total"}
Group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations


@pytest.fixture(scope="module")
def arteries_files(
    calcium_arteries: CalciumInputs, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """LAD, LCX and RCA calcium with a mass factor, as files (LM has none)."""
    job = calcium_arteries
    objects = build_calcium_objects(job.sources, job.result, job.volume, job.labels)
    return write_objects(objects, tmp_path_factory.mktemp("arteries"))


def _split(sr: hd.sr.ComprehensiveSR) -> tuple[dict[str, Group], list[Group]]:
    """The summary groups by artery (or "total"), and the lesion groups in order."""
    summaries: dict[str, Group] = {}
    lesions = []
    for group in sr.content.get_planar_roi_measurement_groups():
        if str(group.tracking_identifier).startswith("Coronary calcium "):
            summaries[SITE_KEYS[group.finding_sites[0].value.value]] = group
        else:
            lesions.append(group)
    return summaries, lesions


def _value(group: Group, name: object) -> float:
    [measurement] = group.get_measurements(name=name)
    return float(measurement.value)


def _slice_of(group: Group, job: CalciumInputs) -> int:
    [source] = group.roi.ContentSequence[0].ReferencedSOPSequence
    assert "ReferencedFrameNumber" not in source  # single-frame CT
    return job.volume.sop_instance_uids.index(source.ReferencedSOPInstanceUID)


def _purpose(group: Group) -> str | None:
    for item in group[0].ContentSequence:
        if item.ConceptNameCodeSequence[0].CodeValue == "130400":  # Geometric purpose
            return str(item.ConceptCodeSequence[0].CodeValue)
    return None


def test_each_artery_with_calcium_and_the_total_are_points_with_their_scores(
    calcium_arteries: CalciumInputs, arteries_files: dict[str, Path]
) -> None:
    job = calcium_arteries
    summaries, _ = _split(hd.sr.srread(arteries_files["SR"]))
    assert set(summaries) == {"LAD", "LCX", "RCA", "total"}  # LM has no calcium: no point
    assert job.result.mass_mg is not None
    for key, group in summaries.items():
        assert group.finding_type == CALCIFIED_PLAQUE
        assert _value(group, CALCIUM_SCORE) == job.result.agatston[key]
        assert _value(group, CALCIUM_VOLUME) == job.result.volume_mm3[key]
        assert _value(group, CALCIUM_MASS) == job.result.mass_mg[key]
        [score] = group.get_measurements(name=CALCIUM_SCORE)
        assert (score.unit, score.method) == (NO_UNITS, AGATSTON_METHOD)
        [volume] = group.get_measurements(name=CALCIUM_VOLUME)
        assert volume.unit == CUBIC_MILLIMETRE
        [mass] = group.get_measurements(name=CALCIUM_MASS)
        assert (mass.unit.value, mass.unit.scheme_designator) == ("mg", "UCUM")
        assert group.roi.graphic_type == hd.sr.GraphicTypeValues.POINT
        assert _purpose(group) == REPRESENTATIVE_POINT.value
        # the point is on a scored pixel of that artery (of any artery for the total)
        z = _slice_of(group, job)
        [(x, y)] = group.roi.value
        label = int(job.labels[z, int(y), int(x)])
        assert label > 0
        if key != "total":
            assert label == ARTERIES.index(key) + 1


def test_the_total_is_drawn_on_the_slice_that_scores_most(
    calcium_arteries: CalciumInputs, arteries_files: dict[str, Path]
) -> None:
    summaries, _ = _split(hd.sr.srread(arteries_files["SR"]))
    per_slice: dict[int, float] = {}
    for lesion in calcium_arteries.result.lesions:
        per_slice[lesion.slice_index] = per_slice.get(lesion.slice_index, 0.0) + lesion.agatston
    assert _slice_of(summaries["total"], calcium_arteries) == max(per_slice, key=per_slice.get)  # type: ignore[arg-type]


def test_categories_are_on_the_total_and_arteries_without_calcium_are_absent(
    calcium_arteries: CalciumInputs, arteries_files: dict[str, Path]
) -> None:
    sr = hd.sr.srread(arteries_files["SR"])
    summaries, _ = _split(sr)
    evaluations = {
        (item.name.value, item.value.value)
        for item in summaries["total"].get_qualitative_evaluations()
        if item.name.value != "130400"  # the geometric purpose is read as one
    }
    category = calcium_arteries.result.category
    assert evaluations == {
        (CLASSIC_CATEGORY.value, "CAC-GT400"),
        (CAC_DRS.value, f"CACDRS-{category['cac_drs']}"),
    }
    assert category["cac_drs"].endswith("/N3")
    assert statements(pydicom.dcmread(arteries_files["SR"])) == [
        (CALCIFIED_PLAQUE.value, ABSENT.value, ARTERY_SITES["LM"].value)
    ]


def statements(ds: Dataset) -> list[tuple[str, str, str | None]]:
    """The CODE items of the report's Qualitative Evaluations container: (concept, value,
    finding site)."""
    [container] = [
        item
        for item in ds.ContentSequence
        if item.ConceptNameCodeSequence[0].CodeValue == "C0034375"
    ]
    found = []
    for item in container.ContentSequence:
        if item.ValueType != "CODE":
            continue
        sites = [
            child.ConceptCodeSequence[0].CodeValue for child in item.get("ContentSequence", [])
        ]
        found.append(
            (
                str(item.ConceptNameCodeSequence[0].CodeValue),
                str(item.ConceptCodeSequence[0].CodeValue),
                sites[0] if sites else None,
            )
        )
    return found


def _inside(polygon: np.ndarray[Any, Any], rows: int, columns: int) -> np.ndarray[Any, Any]:
    """The pixels whose centres a closed polygon (SCOORD column, row) encloses (even-odd)."""
    y, x = np.mgrid[0:rows, 0:columns] + 0.5
    inside = np.zeros((rows, columns), dtype=bool)
    for (x0, y0), (x1, y1) in itertools.pairwise(polygon):
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < at)
    return inside


def test_each_lesion_is_outlined_exactly_on_the_slice_where_it_is_largest(
    calcium_arteries: CalciumInputs, arteries_files: dict[str, Path]
) -> None:
    job = calcium_arteries
    _, lesions = _split(hd.sr.srread(arteries_files["SR"]))
    assert 0 < len(lesions) <= len(job.result.lesions)  # slice regions join into lesions
    totals = dict.fromkeys(ARTERIES, 0.0)
    for group in lesions:
        artery = SITE_KEYS[group.finding_sites[0].value.value]
        assert group.finding_type == CALCIFIED_PLAQUE
        assert group.roi.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
        outline = np.asarray(group.roi.value)
        np.testing.assert_array_equal(outline[0], outline[-1])  # closed
        np.testing.assert_array_equal(outline, np.round(outline))  # along pixel edges
        z = _slice_of(group, job)
        pixels = _inside(outline, *job.labels.shape[1:])
        # the outline holds exactly one 8-connected region of the artery's scored pixels
        # (with its holes: only the outer boundary is traced)
        regions, _ = ndimage.label(job.labels[z] == ARTERIES.index(artery) + 1, np.ones((3, 3)))
        [region] = set(np.unique(regions[pixels])) - {0}
        np.testing.assert_array_equal(pixels, ndimage.binary_fill_holes(regions == region))
        # ... of the size of one of the result's regions there, and the lesion's largest
        area = float((regions == region).sum()) * np.prod(job.volume.pixel_spacing_mm)
        drawn = [
            x
            for x in job.result.lesions
            if (x.slice_index, x.artery) == (z, artery) and abs(x.area_mm2 - area) < 1e-2
        ]
        assert drawn
        score = _value(group, CALCIUM_SCORE)
        assert score >= max(x.agatston for x in drawn)
        totals[artery] += score
        assert group.get_measurements(name=CALCIUM_MASS) == []  # no mean HU per lesion
    for artery in ARTERIES:  # the lesions add up to each artery's score
        assert totals[artery] == pytest.approx(job.result.agatston[artery], abs=0.01)


def test_algorithm_observer_procedures_and_notice_are_in_the_report(
    calcium: CalciumInputs, calcium_files: dict[str, Path]
) -> None:
    ds = pydicom.dcmread(calcium_files["SR"])
    values = texts(ds)
    assert calcium.result.model.name in values
    assert calcium.result.model.version in values
    [parameters] = [v for v in values if v.startswith("threshold_hu=")]
    assert {"threshold_hu=130", "min_area_mm2=1", "connectivity=8"} <= set(parameters.split("; "))
    assert DEVICE_OBSERVER_UID in values
    assert calcium.result.notice in values
    assert "not for clinical use" in calcium.result.notice
    assert ds.SOPClassUID == pydicom.uid.ComprehensiveSRStorage  # no SCOORD3D in it
    assert [item.CodingSchemeDesignator for item in ds.CodingSchemeIdentificationSequence] == [
        "99CARDIO"
    ]
    [procedure] = [
        item for item in ds.ContentSequence if item.ConceptNameCodeSequence[0].CodeValue == "121058"
    ]
    assert procedure.ConceptCodeSequence[0].CodeValue == CT_PROCEDURE.value == "25045-6"
    assert "CTUnspecifiedBodyRegion" in cid_concepts[100]["LN"]  # TID 1500 row 4: CID 100
    [performed] = ds.PerformedProcedureCodeSequence
    assert performed.CodeValue == CT_PERFORMED.value == "426005005"
    assert "CardiacCTForCalciumScoring" in cid_concepts[3757]["SCT"]


def test_a_study_without_calcium_states_it_without_drawing(tmp_path: Path) -> None:
    job = calcium_inputs(tmp_path, above_hu=5000.0)  # the rule calls nothing coronary
    assert not job.result.lesions
    paths = write_objects(
        build_calcium_objects(job.sources, job.result, job.volume, job.labels), tmp_path / "out"
    )
    assert "SEG" not in paths
    ds = pydicom.dcmread(paths["SR"])
    parts = {item.ConceptNameCodeSequence[0].CodeValue: item for item in ds.ContentSequence}
    assert "111028" in parts  # Image Library
    assert "126010" not in parts  # no Imaging Measurements: nothing to measure
    assert set(statements(ds)) == {
        (CLASSIC_CATEGORY.value, "CAC-0", None),
        (CAC_DRS.value, "CACDRS-A0", None),
        *((CALCIFIED_PLAQUE.value, ABSENT.value, ARTERY_SITES[a].value) for a in ARTERIES),
        (CALCIFIED_PLAQUE.value, ABSENT.value, CORONARY_ARTERY.value),
    }
    listed = [
        str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
        for item in content_items(ds)
        if item.ValueType == "IMAGE"
    ]
    assert sorted(listed) == sorted(job.volume.sop_instance_uids)  # nothing drawn: all


def test_tracking_uids_stay_from_one_version_to_the_next(
    calcium_arteries: CalciumInputs, tmp_path: Path
) -> None:
    job = calcium_arteries
    uids = []
    for version in (0, 1):
        objects = build_calcium_objects(
            job.sources, job.result, job.volume, job.labels, version_index=version
        )
        paths = write_objects(objects, tmp_path / str(version))
        groups = hd.sr.srread(paths["SR"]).content.get_planar_roi_measurement_groups()
        uids.append([(g.tracking_identifier, g.tracking_uid) for g in groups])
    assert uids[0] == uids[1]
    assert len({uid for _, uid in uids[0]}) == len(uids[0])


def test_the_finding_sites_are_major_coronary_arteries() -> None:
    major = {getattr(codes.SCT, keyword).value for keyword in cid_concepts[3016]["SCT"]}
    assert {code.value for code in ARTERY_SITES.values()} <= major
