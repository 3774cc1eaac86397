"""The C-STORE handler's parsing and file meta, on data sets encoded here."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from cardiogate_phantoms import make_ct_series
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLosslessSV1,
    RLELossless,
)

from cardiogate.dicom.ingest import file_meta_header, header_text, parse_dataset
from cardiogate.dicom.status import Status
from cardiogate.dicom.uids import IMPLEMENTATION_CLASS_UID
from cardiogate.errors import DatasetError
from hostile import IngestRig, encode


def _encode(ds: Dataset, ts: UID) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = ts.is_little_endian
    fp.is_implicit_VR = ts.is_implicit_VR
    write_dataset(fp, ds)
    return fp.getvalue()


@pytest.fixture
def ct() -> Dataset:
    return make_ct_series(7, n_slices=1, rows=16, columns=16).datasets[0]


@pytest.mark.parametrize(
    "ts", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]
)
def test_parse_reads_the_header_and_skips_whole_pixel_data(ct: Dataset, ts: UID) -> None:
    ds = parse_dataset(_encode(ct, ts), ts)
    assert header_text(ds, "SOPInstanceUID") == ct.SOPInstanceUID
    assert header_text(ds, "ImageType") == "\\".join(ct.ImageType)
    assert "PixelData" not in ds  # skipped, never copied


@pytest.mark.parametrize("ts", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_truncated_pixel_data_is_refused(ct: Dataset, ts: UID) -> None:
    data = _encode(ct, ts)
    with pytest.raises(DatasetError, match="pixel data is shorter"):
        parse_dataset(data[:-10], ts)


def test_truncated_header_element_is_refused(ct: Dataset) -> None:
    del ct.PixelData
    data = _encode(ct, ExplicitVRLittleEndian)
    with pytest.raises(DatasetError):
        parse_dataset(data[:-3], ExplicitVRLittleEndian)


def test_elements_after_pixel_data_are_parsed(ct: Dataset) -> None:
    ct.add_new(0xFFFCFFFC, "OB", b"\x00" * 8)  # Data Set Trailing Padding
    ds = parse_dataset(_encode(ct, ExplicitVRLittleEndian), ExplicitVRLittleEndian)
    assert 0xFFFCFFFC in ds


def test_encapsulated_pixel_data_is_walked(ct: Dataset) -> None:
    ct.compress(RLELossless)
    ds = parse_dataset(_encode(ct, ExplicitVRLittleEndian), RLELossless)
    assert header_text(ds, "SOPInstanceUID") == ct.SOPInstanceUID


def test_garbage_is_refused() -> None:
    with pytest.raises(DatasetError):
        parse_dataset(b"\x08\x00\x18\x00UI\xff\xffxyz", ExplicitVRLittleEndian)


def test_text_of_a_non_ascii_value_goes_through_pydicom(ct: Dataset) -> None:
    ct.SpecificCharacterSet = "ISO_IR 100"
    ct.SeriesDescription = "Herz Kalzium Übersicht"
    ds = parse_dataset(_encode(ct, ExplicitVRLittleEndian), ExplicitVRLittleEndian)
    assert header_text(ds, "SeriesDescription") == "Herz Kalzium Übersicht"


@pytest.mark.parametrize("calling", ["PACS", "ODDLEN", ""])
def test_file_meta_header_reads_back(ct: Dataset, calling: str) -> None:
    header = file_meta_header(ct.SOPClassUID, "1.2.3.4.5", JPEGLosslessSV1, calling)
    meta = pydicom.dcmread(BytesIO(header + b"\x08\x00\x05\x00CS\x00\x00"), force=True).file_meta
    assert meta.MediaStorageSOPClassUID == ct.SOPClassUID
    assert meta.MediaStorageSOPInstanceUID == "1.2.3.4.5"
    assert meta.TransferSyntaxUID == JPEGLosslessSV1
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.FileMetaInformationGroupLength == len(header) - 132 - 12
    assert meta.get("SourceApplicationEntityTitle", "") == calling


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
def test_an_overlong_uid_is_refused_not_cut(tmp_path: Path, keyword: str) -> None:
    """65 characters: one more than a UID holds (PS3.5 9.1); never stored under its first 64."""
    rig = IngestRig(tmp_path)
    try:
        ds = make_ct_series(8, n_slices=1, rows=16, columns=16).datasets[0]
        data = encode(ds, ExplicitVRLittleEndian, [(keyword, "UI", "1." + "2" * 63)])
        assert rig.c_store(data, ExplicitVRLittleEndian) == Status.CANNOT_UNDERSTAND
        assert list(rig.spool.files()) == []
    finally:
        rig.close()
