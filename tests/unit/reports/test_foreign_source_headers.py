"""Reports from sources whose patient and study modules a real modality wrote: Type 2
attributes absent, values misspelt, too long or impossible. Every object is built, passes
dciodvfy, carries the repaired value (or an empty one) and each repair is a warning that
names the attribute. Sources are written to files and given as paths, as the worker gives
them from the spool; objects are written and read back before they are asserted on."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from cardiogate.tasks.calcium.objects import build_calcium_objects
from cardiogate.tasks.stenosis.objects import build_stenosis_objects
from peers import dciodvfy
from reporting_jobs import CalciumInputs, StenosisInputs, write_objects

# pydicom warns, when it reads them, of the values these tests write invalid on purpose
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom")

TYPE_2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "ReferringPhysicianName",
)


def rewritten(
    sources: Sequence[Dataset], folder: Path, change: Callable[[Dataset], None]
) -> list[Path]:
    """Each source changed and written to a file of its own."""
    folder.mkdir(parents=True)
    paths = []
    with warnings.catch_warnings():  # pydicom warns of the invalid values we write on purpose
        warnings.simplefilter("ignore")
        for index, source in enumerate(sources):
            ds = copy.deepcopy(source)
            change(ds)
            path = folder / f"{index}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def built_calcium(
    job: CalciumInputs, paths: list[Path], folder: Path
) -> tuple[dict[str, Dataset], list[str]]:
    notes: list[str] = []
    objects = build_calcium_objects(paths, job.result, job.volume, job.labels, warnings=notes)
    return _read_back(objects, folder), notes


def built_stenosis(
    job: StenosisInputs, paths: list[Path], folder: Path
) -> tuple[dict[str, Dataset], list[str]]:
    notes: list[str] = []
    objects = build_stenosis_objects(paths, job.result, job.cine, warnings=notes)
    return _read_back(objects, folder), notes


def _read_back(objects: list[Dataset], folder: Path) -> dict[str, Dataset]:
    files = write_objects(objects, folder)
    errors = {
        modality: [line for line in dciodvfy(path) if line.startswith("Error")]
        for modality, path in files.items()
    }
    assert not any(errors.values()), errors
    return {modality: pydicom.dcmread(path) for modality, path in files.items()}


def _without_type_2(ds: Dataset) -> None:
    for keyword in TYPE_2:
        delattr(ds, keyword)


def test_a_ct_without_type_2_patient_and_study_attributes_is_reported(
    calcium: CalciumInputs, tmp_path: Path
) -> None:
    """Until source_header, highdicom read these by name: AttributeError, job failed."""
    paths = rewritten(calcium.sources, tmp_path / "ct", _without_type_2)
    objects, notes = built_calcium(calcium, paths, tmp_path / "out")
    assert sorted(objects) == ["KEY", "SEG", "SR", "SUMMARY"]
    for ds in objects.values():
        for keyword in TYPE_2:
            assert keyword in ds, (ds.Modality, keyword)
            assert ds[keyword].value in ("", None), (ds.Modality, keyword)
    assert sorted(notes) == sorted(f"{keyword} absent: written empty" for keyword in TYPE_2)


def test_an_xa_without_type_2_patient_and_study_attributes_is_reported(
    stenosis: StenosisInputs, tmp_path: Path
) -> None:
    paths = rewritten(stenosis.sources, tmp_path / "xa", _without_type_2)
    objects, notes = built_stenosis(stenosis, paths, tmp_path / "out")
    assert sorted(objects) == ["KEY", "SR", "SUMMARY"]
    for ds in objects.values():
        assert all(ds[keyword].value in ("", None) for keyword in TYPE_2), ds.Modality
    assert sorted(notes) == sorted(f"{keyword} absent: written empty" for keyword in TYPE_2)


DATE_FORM = "normalised to the DICOM date form"
TRUNCATED_64 = "longer than 64 characters: truncated"
PN_TRUNCATED = "longer than 64 characters in a component group: truncated"
# (keyword, value a modality wrote, value in our objects, warning after the keyword)
NON_CONFORMANT = [
    ("PatientSex", "U", "", "not one of M, F, O: written empty"),
    ("PatientSex", "female", "F", "normalised to a DICOM code"),
    ("PatientSex", "f", "F", "normalised to a DICOM code"),
    ("PatientSex", "Male", "M", "normalised to a DICOM code"),
    ("StudyTime", "11:20:00", "112000", "normalised to the DICOM time form"),
    ("StudyDate", "20260230", "", "not a valid date: written empty"),
    ("StudyDate", "2026-02-03", "20260203", DATE_FORM),
    ("PatientBirthDate", "1961.07.04", "19610704", DATE_FORM),
    ("PatientID", "9" * 70, "9" * 64, TRUNCATED_64),
    ("AccessionNumber", "7" * 20, "7" * 16, "longer than 16 characters: truncated"),
    ("StudyDescription", "d" * 80, "d" * 64, TRUNCATED_64),
    ("PatientName", "DOE^" + "J" * 66, "DOE^" + "J" * 60, PN_TRUNCATED),
    ("PatientAge", "61y", "061Y", "normalised to the DICOM age form"),
]  # fmt: skip


@pytest.mark.parametrize(("keyword", "written", "expected", "warning"), NON_CONFORMANT)
def test_a_non_conformant_value_is_repaired_or_written_empty(
    stenosis: StenosisInputs,
    tmp_path: Path,
    keyword: str,
    written: str,
    expected: str,
    warning: str,
) -> None:
    paths = rewritten(stenosis.sources, tmp_path / "xa", lambda ds: setattr(ds, keyword, written))
    objects, notes = built_stenosis(stenosis, paths, tmp_path / "out")
    for ds in objects.values():
        assert str(ds[keyword].value or "") == expected, ds.Modality
    assert notes == [f"{keyword} {warning}"]  # naming the attribute, never the value
    values = [value for value in (written, expected) if len(value) > 3]
    assert not [note for note in notes if any(value in note for value in values)]


def test_a_ct_with_many_non_conformant_values_gets_its_seg_sr_and_key_image(
    calcium: CalciumInputs, tmp_path: Path
) -> None:
    def foreign(ds: Dataset) -> None:
        ds.PatientSex = "female"
        ds.StudyTime = "11:20:00"
        ds.StudyDate = "20260230"
        ds.PatientBirthDate = "1961-07-04"
        ds.PatientID = "P" * 70
        ds.AccessionNumber = "A" * 20
        ds.PatientName = "N" * 70
        ds.InstitutionName = "I" * 70
        ds.StationName = "S" * 20

    paths = rewritten(calcium.sources, tmp_path / "ct", foreign)
    objects, notes = built_calcium(calcium, paths, tmp_path / "out")
    assert sorted(objects) == ["KEY", "SEG", "SR", "SUMMARY"]
    for ds in objects.values():
        assert (ds.PatientSex, ds.StudyTime, ds.StudyDate) == ("F", "112000", ""), ds.Modality
        assert ds.PatientBirthDate == "19610704"
        assert (ds.PatientID, ds.AccessionNumber) == ("P" * 64, "A" * 16)
        assert ds.PatientName == "N" * 64
    # the acquisition equipment highdicom copies is kept, cut to length, not dropped
    for modality in ("SEG", "SR"):
        acquisition = objects[modality].ContributingEquipmentSequence[0]
        assert acquisition.InstitutionName == "I" * 64
        assert acquisition.StationName == "S" * 16
    assert sorted(notes) == [
        "AccessionNumber longer than 16 characters: truncated",
        "InstitutionName longer than 64 characters: truncated",
        "PatientBirthDate normalised to the DICOM date form",
        "PatientID longer than 64 characters: truncated",
        "PatientName longer than 64 characters in a component group: truncated",
        "PatientSex normalised to a DICOM code",
        "StationName longer than 16 characters: truncated",
        "StudyDate not a valid date: written empty",
        "StudyTime normalised to the DICOM time form",
    ]


def test_slices_that_disagree_give_the_first_slices_patient_to_every_object(
    calcium: CalciumInputs, tmp_path: Path
) -> None:
    first = calcium.volume.sop_instance_uids[0]

    def disagree(ds: Dataset) -> None:
        if ds.SOPInstanceUID != first:
            ds.PatientName = "OTHER^PATIENT"
            ds.StudyDescription = "another study"

    paths = rewritten(calcium.sources, tmp_path / "ct", disagree)
    objects, notes = built_calcium(calcium, paths, tmp_path / "out")
    name = next(ds.PatientName for ds in calcium.sources if ds.SOPInstanceUID == first)
    counts = (calcium.labels > 0).sum(axis=(1, 2))
    assert int(np.argmax(counts)) != 0, "the key image should show another slice than the first"
    for ds in objects.values():
        assert ds.PatientName == name, ds.Modality
        assert ds.StudyDescription == "SYNTHETIC Cardiac", ds.Modality
    others = len(calcium.sources) - 1
    assert sorted(notes) == [
        f"{keyword} differs between the source instances ({others} of {others + 1}): "
        "the first instance's is used"
        for keyword in ("PatientName", "StudyDescription")
    ]


@pytest.mark.parametrize(
    ("written", "expected", "warning"),
    [
        ("ISO-IR 100", "ISO_IR 100", "SpecificCharacterSet normalised to a defined term"),
        ("LATIN1X", "ISO_IR 192", "SpecificCharacterSet not a defined term: written as ISO_IR 192"),
    ],
)
def test_a_misspelt_character_set_keeps_the_names_it_encodes(
    stenosis: StenosisInputs, tmp_path: Path, written: str, expected: str, warning: str
) -> None:
    def latin(ds: Dataset) -> None:
        ds.PatientName = "MÜLLER^JÜRGEN"
        ds.SpecificCharacterSet = written

    paths = rewritten(stenosis.sources, tmp_path / "xa", latin)
    assert pydicom.dcmread(paths[0]).get_item("PatientName").value.startswith(b"M\xdcLLER")
    objects, notes = built_stenosis(stenosis, paths, tmp_path / "out")
    for ds in objects.values():
        assert ds.SpecificCharacterSet == expected, ds.Modality
        assert ds.PatientName == "MÜLLER^JÜRGEN", ds.Modality
    assert notes == [warning]


def test_an_empty_character_set_is_left_out(stenosis: StenosisInputs, tmp_path: Path) -> None:
    """highdicom refused an empty Specific Character Set (ValueError), though absent means
    the default repertoire, as empty does."""
    paths = rewritten(
        stenosis.sources, tmp_path / "xa", lambda ds: setattr(ds, "SpecificCharacterSet", "")
    )
    objects, notes = built_stenosis(stenosis, paths, tmp_path / "out")
    assert all("SpecificCharacterSet" not in ds for ds in objects.values())
    assert notes == ["SpecificCharacterSet empty: left out"]


def test_conformant_sources_give_no_warning(stenosis: StenosisInputs, tmp_path: Path) -> None:
    paths = rewritten(stenosis.sources, tmp_path / "xa", lambda ds: None)
    objects, notes = built_stenosis(stenosis, paths, tmp_path / "out")
    assert notes == []
    assert objects["SR"].PatientName == stenosis.sources[0].PatientName
