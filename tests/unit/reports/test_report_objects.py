"""What every output object must be: valid for dicom3tools and dcmtk, in the source study,
labelled as AI output, deterministically named, and free of patient data in logs and errors."""

from __future__ import annotations

import copy
import logging
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from cardiogate.dicom.uids import UID_PREFIX
from cardiogate.reports import NOT_FOR_DIAGNOSTIC_USE, Predecessor, ReportError
from cardiogate.tasks.calcium.objects import build_calcium_objects
from cardiogate.tasks.stenosis.objects import build_stenosis_objects
from peers import dciodvfy, dcmtk
from reporting_jobs import CalciumInputs, StenosisInputs, calcium_inputs

PATIENT_AND_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)
OBJECTS = [("calcium", "SEG"), ("calcium", "SR"), ("calcium", "KEY"), ("calcium", "SUMMARY")]
OBJECTS += [("stenosis", "SR"), ("stenosis", "KEY"), ("stenosis", "SUMMARY")]


@pytest.fixture
def files(
    calcium_files: dict[str, Path],
    stenosis_files: dict[str, Path],
) -> dict[str, dict[str, Path]]:
    return {"calcium": calcium_files, "stenosis": stenosis_files}


@pytest.mark.parametrize(("task", "modality"), OBJECTS)
def test_dciodvfy_finds_no_error(
    files: dict[str, dict[str, Path]], task: str, modality: str
) -> None:
    lines = dciodvfy(files[task][modality])
    errors = [line for line in lines if line.startswith("Error")]
    warnings = sorted({line for line in lines if line.startswith("Warning")})
    print(f"{task} {modality}: {len(warnings)} kinds of warning", *warnings, sep="\n  ")
    assert not errors, lines
    # the local coding scheme is the only thing dciodvfy may not know
    assert all("99CARDIO" in line for line in warnings), warnings


@pytest.mark.parametrize("task", ["calcium", "stenosis"])
def test_dsrdump_reads_every_sr_without_complaint(
    files: dict[str, dict[str, Path]], task: str
) -> None:
    proc = subprocess.run(
        [dcmtk("dsrdump"), "-v", str(files[task]["SR"])],
        capture_output=True,
        text=True,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    complaints = [line for line in output.splitlines() if line.startswith(("E:", "W:", "F:"))]
    assert not complaints, complaints
    assert "Imaging Measurement Report" in output


@pytest.mark.parametrize(("task", "modality"), OBJECTS)
def test_each_object_joins_the_source_study_as_ai_output(
    calcium: CalciumInputs,
    stenosis: StenosisInputs,
    files: dict[str, dict[str, Path]],
    task: str,
    modality: str,
) -> None:
    ds = pydicom.dcmread(files[task][modality])
    source = (calcium if task == "calcium" else stenosis).sources[0]
    for keyword in PATIENT_AND_STUDY:
        assert ds.get(keyword) == source.get(keyword), keyword
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID
    assert ds.SeriesDescription.endswith(NOT_FOR_DIAGNOSTIC_USE)
    assert len(ds.SeriesDescription) <= 64
    assert ds.Manufacturer == "cardiogate"
    assert ds.SOPInstanceUID.startswith(UID_PREFIX)
    assert ds.SeriesInstanceUID.startswith(UID_PREFIX)
    if modality == "SR":
        assert ds.VerificationFlag == "UNVERIFIED"
        assert ds.PreliminaryFlag == "PRELIMINARY"
        assert "PredecessorDocumentsSequence" not in ds


def test_objects_have_their_own_series_and_never_reuse_a_source_uid(
    calcium: CalciumInputs, files: dict[str, dict[str, Path]]
) -> None:
    outputs = [pydicom.dcmread(path) for path in files["calcium"].values()]
    series = {ds.SeriesInstanceUID for ds in outputs}
    assert len(series) == len(outputs)
    ours = series | {ds.SOPInstanceUID for ds in outputs}
    theirs = {ds.SOPInstanceUID for ds in calcium.sources} | {
        calcium.sources[0].SeriesInstanceUID,
        calcium.sources[0].StudyInstanceUID,
        calcium.sources[0].FrameOfReferenceUID,
    }
    assert not ours & theirs


def _uids(objects: list[Dataset]) -> list[tuple[str, str, str]]:
    return [(str(ds.Modality), ds.SeriesInstanceUID, ds.SOPInstanceUID) for ds in objects]


def test_the_same_input_gives_the_same_uids(
    calcium: CalciumInputs, files: dict[str, dict[str, Path]]
) -> None:
    again = build_calcium_objects(calcium.sources, calcium.result, calcium.volume, calcium.labels)
    first = [pydicom.dcmread(files["calcium"][kind]) for kind in ("SEG", "SR", "KEY", "SUMMARY")]
    assert _uids(again) == _uids(first)


def test_a_new_model_version_or_report_version_changes_the_uids(
    stenosis: StenosisInputs,
) -> None:
    job = (stenosis.sources, stenosis.result, stenosis.cine)
    first = _uids(build_stenosis_objects(*job))
    newer_model = stenosis.result.model_copy(
        update={"model": {**stenosis.result.model, "version": "0.0.2"}}
    )
    other_model = _uids(build_stenosis_objects(stenosis.sources, newer_model, stenosis.cine))
    revised = build_stenosis_objects(*job, version_index=1)
    assert not {u for o in first for u in o[1:]} & {u for o in other_model for u in o[1:]}
    assert [o[1] for o in _uids(revised)] == [o[1] for o in first]  # same series
    assert not {o[2] for o in _uids(revised)} & {o[2] for o in first}  # new instances
    assert [ds.InstanceNumber for ds in revised] == [2, 2, 2]


def test_a_revision_names_its_predecessor(stenosis: StenosisInputs, tmp_path: Path) -> None:
    job = (stenosis.sources, stenosis.result, stenosis.cine)
    [first_sr, *_] = build_stenosis_objects(*job)
    earlier = Predecessor(
        StudyInstanceUID=first_sr.StudyInstanceUID,
        SeriesInstanceUID=first_sr.SeriesInstanceUID,
        SOPInstanceUID=first_sr.SOPInstanceUID,
    )
    [sr, *_] = build_stenosis_objects(*job, version_index=1, predecessor=earlier)
    sr.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    [study] = pydicom.dcmread(tmp_path / "sr.dcm").PredecessorDocumentsSequence
    assert study.StudyInstanceUID == first_sr.StudyInstanceUID
    [series] = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == first_sr.SeriesInstanceUID
    [instance] = series.ReferencedSOPSequence
    assert instance.ReferencedSOPInstanceUID == first_sr.SOPInstanceUID
    assert instance.ReferencedSOPClassUID == first_sr.SOPClassUID
    assert not dciodvfy_errors(tmp_path / "sr.dcm")


def dciodvfy_errors(path: Path) -> list[str]:
    return [line for line in dciodvfy(path) if line.startswith("Error")]


def test_no_calcium_gives_a_report_of_zero_and_a_summary_that_says_so(tmp_path: Path) -> None:
    job = calcium_inputs(tmp_path, above_hu=5000.0)  # the rule labels nothing
    assert job.result.agatston["total"] == 0
    assert not job.labels.any()
    [sr, summary] = build_calcium_objects(job.sources, job.result, job.volume, job.labels)
    assert sr.Modality == "SR"
    assert summary.SeriesNumber == 9504  # no SEG, no key image: the summary page says 0
    for name, ds in (("sr", sr), ("summary", summary)):
        ds.save_as(tmp_path / f"{name}.dcm", enforce_file_format=True)
        assert not dciodvfy_errors(tmp_path / f"{name}.dcm")


def test_patient_data_stays_out_of_logs_and_errors(
    stenosis: StenosisInputs, caplog: pytest.LogCaptureFixture
) -> None:
    sources = [copy.deepcopy(ds) for ds in stenosis.sources]
    for ds in sources:  # a name highdicom finds doubtful (no caret) and would log
        ds.PatientName = "Doe John"
    identifiers = ["Doe John", str(sources[0].PatientID), str(sources[0].PatientBirthDate)]
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as warned:
        objects = build_stenosis_objects(sources, stenosis.result, stenosis.cine)
    assert [ds.PatientName for ds in objects] == ["Doe John"] * 3
    other = copy.deepcopy(sources[0])
    other.SeriesInstanceUID = "1.2.3.4"
    with pytest.raises(ReportError) as refused:
        build_stenosis_objects([*sources, other], stenosis.result, stenosis.cine)
    said = [caplog.text, str(refused.value), *(str(w.message) for w in warned)]
    assert not [text for text in said if any(i in text for i in identifiers)]


def test_sources_that_do_not_match_the_volume_are_refused(calcium: CalciumInputs) -> None:
    with pytest.raises(ReportError, match="slices of the volume are not among the sources"):
        build_calcium_objects(calcium.sources[1:], calcium.result, calcium.volume, calcium.labels)
    with pytest.raises(ReportError, match="do not match the volume"):
        build_calcium_objects(
            calcium.sources, calcium.result, calcium.volume, np.zeros((1, 2, 3), np.uint8)
        )
