"""Inputs of the interoperability corpus that no tool rewrites into being: the sample files
shipped with pydicom, pydicom-data and pynetdicom; objects a PACS forwards with a study that
are not for us (a CT dose SR, a dose screen, a localizer, a CTA without contrast
attributes), built from a phantom's headers; and a Basic Offset Table written wrongly."""

from __future__ import annotations

import copy
import struct
from pathlib import Path
from typing import Any

import pydicom
import pydicom.data
import pynetdicom
from cardiogate_phantoms import make_ct_series
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_fragments, parse_basic_offsets
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
XRAY_RADIATION_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"
_PYNETDICOM_FILES = Path(pynetdicom.__file__).parent / "tests" / "dicom_files"
# what a report copies from its source (PS3.3 C.7.1.1 Patient, C.7.2.1 General Study)
_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def shipped_file(name: str) -> Path | None:
    """A sample file from pynetdicom's wheel, pydicom or pydicom-data; None when not
    installed (never downloaded: pydicom would fetch pydicom-data's files otherwise)."""
    if (_PYNETDICOM_FILES / name).is_file():
        return _PYNETDICOM_FILES / name
    found = pydicom.data.get_testdata_file(name, download=False)
    return None if found is None else Path(str(found))


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _from_study(base: Dataset, sop_class: str, modality: str) -> Dataset:
    """A new instance of ``sop_class`` in ``base``'s study (UIDs are set by the corpus)."""
    ds = Dataset()
    for keyword in _PATIENT_STUDY:
        if keyword in base:
            setattr(ds, keyword, copy.deepcopy(base[keyword].value))
    ds.SOPClassUID, ds.Modality = sop_class, modality
    ds.SOPInstanceUID = ds.SeriesInstanceUID = "1.2"  # replaced by the corpus
    ds.SeriesNumber, ds.InstanceNumber = 900, 1
    ds.Manufacturer = "cardiogate-synthetic"
    ds.ContentDate, ds.ContentTime = base.StudyDate, base.StudyTime
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    return ds


def dose_sr(base: Dataset) -> list[Dataset]:
    """A CT Radiation Dose SR (X-Ray Radiation Dose SR Storage, TID 10011), as a CT
    scanner sends with every study: the header and the report's title and procedure."""
    ds = _from_study(base, XRAY_RADIATION_DOSE_SR, "SR")
    ds.SeriesDescription = "Dose Report"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([_code("113701", "DCM", "X-Ray Radiation Dose Report")])
    template = Dataset()
    template.MappingResource, template.TemplateIdentifier = "DCMR", "10011"
    ds.ContentTemplateSequence = Sequence([template])
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.PerformedProcedureCodeSequence = Sequence()
    procedure = Dataset()
    procedure.RelationshipType, procedure.ValueType = "HAS CONCEPT MOD", "CODE"
    procedure.ConceptNameCodeSequence = Sequence([_code("121058", "DCM", "Procedure reported")])
    procedure.ConceptCodeSequence = Sequence(
        [_code("P5-08000", "SRT", "Computed Tomography X-Ray")]
    )
    ds.ContentSequence = Sequence([procedure])
    return [ds]


def dose_screen(base: Dataset) -> list[Dataset]:
    """A dose screen: a Secondary Capture image with Modality CT, as several CT scanners
    send the dose page of a study."""
    ds = _from_study(base, SECONDARY_CAPTURE, "CT")
    ds.SeriesDescription = "Dose Report"
    ds.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    ds.ConversionType = "WSD"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(range(64)) * 64
    return [ds]


def localizer(series: list[Dataset]) -> list[Dataset]:
    """Two localizer (scout) images in a CT series: ImageType LOCALIZER, 2 instances."""
    out = []
    for index, source in enumerate(series[:2]):
        ds = copy.deepcopy(source)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.SeriesDescription = "Topogram 0.6 T20s"
        ds.InstanceNumber = index + 1
        out.append(ds)
    return out


def unlabelled_cta(**size: Any) -> list[Dataset]:
    """A coronary CTA whose header does not say so: no Contrast/Bolus attributes and a
    series description without 'CTA' or 'angio', as some scanners name it."""
    series = make_ct_series(0, contrast=True, keep_phantom=False, **size).datasets
    for ds in series:
        for keyword in ("ContrastBolusAgent", "ContrastBolusRoute", "ContrastBolusVolume"):
            if keyword in ds:
                delattr(ds, keyword)
        ds.SeriesDescription = "Heart 3.0 Bv40 75%"
        ds.ProtocolName = "Cardiac_Coronary"
    return series


def offsets_without_item_headers(src: Path, dst: Path) -> None:
    """Rewrite the Basic Offset Table as some senders do: each frame's offset counts the
    fragments' bytes but not their 8-byte item headers (PS3.5 A.4 counts both), so every
    offset after the first points into the wrong fragment."""
    ds = pydicom.dcmread(src)
    data = bytes(ds.PixelData)
    offsets = parse_basic_offsets(data)
    bot_end = 8 + struct.unpack_from("<L", data, 4)[0]
    fragments = list(generate_fragments(data[bot_end:]))
    position, payload, wrong = 0, 0, []
    for fragment in fragments:
        if position in offsets:
            wrong.append(payload)
        position += 8 + len(fragment)
        payload += len(fragment)
    if not len(wrong) == len(offsets) == int(ds.NumberOfFrames) < len(fragments):
        raise ValueError(f"{src.name}: expected a table of frames and several fragments each")
    table = struct.pack(f"<{len(wrong)}L", *wrong)
    items = [struct.pack("<HHL", 0xFFFE, 0xE000, len(table)) + table]
    items += [struct.pack("<HHL", 0xFFFE, 0xE000, len(f)) + f for f in fragments]
    ds.PixelData = b"".join(items)  # pydicom writes the Sequence Delimitation Item
    ds["PixelData"].is_undefined_length = True
    ds.save_as(dst, enforce_file_format=True)
