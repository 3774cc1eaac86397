"""The cleaning of the source headers, value by value, and the naming of what highdicom
refuses. Values are given as the bytes a modality wrote (raw elements, as pydicom reads
them from the spool), so that values pydicom cannot convert can be given too."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import CTImageStorage

from cardiogate.reports import ReportError
from cardiogate.reports.build import refusals, refused_attribute
from cardiogate.reports.source_header import cleaned_sources, patient_and_study

# pydicom warns, when it reads them, of the values these tests give invalid on purpose
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom")

TYPE_2 = {
    "PatientName": b"DOE^JANE",
    "PatientID": b"P1",
    "PatientBirthDate": b"19610704",
    "PatientSex": b"F ",
    "StudyDate": b"20260203",
    "StudyTime": b"112000",
    "AccessionNumber": b"A1",
    "StudyID": b"S1",
    "ReferringPhysicianName": b"",
}


def header(number: int = 1, **values: bytes) -> Dataset:
    """A CT slice header with the Type 2 attributes valid, ``values`` written raw over them."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"1.2.3.{number}"
    ds.SpecificCharacterSet = "ISO_IR 100"
    for keyword, raw in {**TYPE_2, **values}.items():
        tag = Tag(keyword)
        ds[tag] = RawDataElement(tag, dictionary_VR(tag), len(raw), raw, 0, False, True)
    return ds


def cleaned(keyword: str, raw: bytes) -> tuple[object, list[str]]:
    [ds], notes = cleaned_sources([header(**{keyword: raw})])
    return ds[keyword].value, notes


TIME_FORM = "normalised to the DICOM time form"
NOT_A_DATE = "not a valid date: written empty"
ROUNDED = "longer than 16 characters: rounded"


@pytest.mark.parametrize(
    ("keyword", "raw", "expected", "note"),
    [
        ("StudyTime", b"11:20", "1120", TIME_FORM),
        ("StudyTime", b"112000.1234567", "112000.123456", TIME_FORM),
        ("StudyTime", b"25:00:00", "", "not a valid time: written empty"),
        ("StudyDate", b"2026/02/03", "20260203", "normalised to the DICOM date form"),
        ("StudyDate", b"2026-02-03T10", "", NOT_A_DATE),
        ("PatientBirthDate", b"19610229", "", NOT_A_DATE),
        ("PatientAge", b"45 Y", "045Y", "normalised to the DICOM age form"),
        ("PatientAge", b"45", "", "not a valid age: written empty"),
        ("PatientWeight", b"72,5", "72.5", "decimal comma replaced by a point"),
        ("PatientWeight", b"72.1234567890123456", "72.1234567890124", ROUNDED),
        ("PatientSize", b"tall", "", "not a decimal number: written empty"),
        ("PatientSex", b"OTHER", "O", "normalised to a DICOM code"),
        ("PatientSex", b"UNKNOWN", "", "not one of M, F, O: written empty"),
        ("PatientIdentityRemoved", b"yes", "YES", "normalised to upper case"),
        ("PatientIdentityRemoved", b"MAYBE", "", "not one of YES, NO: written empty"),
        ("PatientID", b"P1\\P2", "P1", "has 2 values where one is allowed: the first is kept"),
        ("PatientName", b"DOE^\nJANE", "DOE^JANE", "had control characters: removed"),
        ("PatientComments", b"line one\r\nline two", "line one\r\nline two", None),
        ("StationName", b"S" * 20, "S" * 16, "longer than 16 characters: truncated"),
    ],
)  # fmt: skip
def test_each_vr_is_repaired_or_written_empty(
    keyword: str, raw: bytes, expected: str, note: str | None
) -> None:
    value, notes = cleaned(keyword, raw)
    assert str(value or "") == expected
    assert notes == ([f"{keyword} {note}"] if note else [])


def test_the_callers_datasets_are_left_as_they_were() -> None:
    sources = [header(1, PatientSex=b"female"), header(2, PatientSex=b"female")]
    for ds in sources:
        del ds.StudyTime
    copies, notes = cleaned_sources(sources)
    assert [ds.PatientSex for ds in copies] == ["F", "F"]
    assert all(ds.StudyTime == "" for ds in copies)
    for ds in sources:  # not even converted from the bytes read
        assert "StudyTime" not in ds
        assert isinstance(ds.get_item(Tag("PatientSex")), RawDataElement)
        assert ds.get_item(Tag("PatientSex")).value == b"female"
    assert notes == ["PatientSex normalised to a DICOM code", "StudyTime absent: written empty"]


def test_conformant_headers_are_kept_as_read_and_cost_no_warning() -> None:
    sources = [header(number) for number in range(1, 5)]
    copies, notes = cleaned_sources(sources)
    assert notes == []
    assert all(copy is not source for copy, source in zip(copies, sources, strict=True))
    assert copies[0].PatientName == "DOE^JANE"  # the first's are read: they are checked
    for source, ds in zip(sources[1:], copies[1:], strict=True):  # the others' are not
        for attribute in patient_and_study():
            assert ds.get_item(attribute.tag) is source.get_item(attribute.tag)


def test_an_attribute_only_some_slices_have_is_the_first_slices_for_all() -> None:
    sources = [header(1), header(2, PatientComments=b"seen elsewhere"), header(3)]
    copies, notes = cleaned_sources(sources)
    assert all("PatientComments" not in ds for ds in copies)
    assert notes == [
        "PatientComments differs between the source instances (1 of 3): "
        "the first instance's is used"
    ]


def test_no_sources_give_nothing() -> None:
    assert cleaned_sources([]) == ([], [])


def _secondary_capture(**values: object) -> hd.sc.SCImage:
    return hd.sc.SCImage(
        pixel_array=np.zeros((4, 4), np.uint8),
        photometric_interpretation="MONOCHROME2",
        bits_allocated=8,
        coordinate_system="PATIENT",
        study_instance_uid="1.2.3",
        series_instance_uid="1.2.3.4",
        series_number=1,
        sop_instance_uid="1.2.3.4.5",
        instance_number=1,
        manufacturer="cardiogate",
        patient_orientation=("L", "F"),
        **values,
    )


@pytest.mark.parametrize(
    ("argument", "value", "keyword"),
    [
        ("patient_sex", "U", "PatientSex"),
        ("study_time", "11:20:00", "StudyTime"),
        ("study_date", "20260230", "StudyDate"),
        ("patient_birth_date", "1961-07-04", "PatientBirthDate"),
        ("manufacturer_model_name", "M" * 70, "ManufacturerModelName"),
        ("specific_character_set", "LATIN1X", "SpecificCharacterSet"),
    ],
)
def test_a_refusal_names_the_attribute_and_never_the_value(
    argument: str, value: str, keyword: str
) -> None:
    with pytest.raises(ReportError) as refused, refusals("the calcium objects"):
        _secondary_capture(**{argument: value})
    assert refused_attribute(refused.value.__cause__ or refused.value) == keyword
    assert str(refused.value) == (
        f"the calcium objects cannot be built: highdicom refused {keyword} (ValueError)"
    )


def test_an_absent_attribute_is_named_and_other_faults_are_not_hidden() -> None:
    absent = r"cannot be built: the sources lack PatientID \(AttributeError\)$"
    with pytest.raises(ReportError, match=absent), refusals("the stenosis objects"):
        Dataset().PatientID  # noqa: B018  (highdicom reads Type 2 attributes like this)
    with pytest.raises(AttributeError), refusals("the stenosis objects"):
        object().no_such_attribute  # type: ignore[attr-defined]  # noqa: B018
