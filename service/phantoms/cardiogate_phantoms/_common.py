"""Shared helpers for the synthetic DICOM generators.

All patient data produced here is FAKE and clearly marked as such
(``SYNTHETIC^PHANTOM^<seed>``, ``SYN<seed>``).  Every value is derived
deterministically from the seed so the same seed always yields identical
headers and UIDs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

if TYPE_CHECKING:
    from .family_b.ct import CTPhantomB
    from .phantom import CardiacPhantom

MANUFACTURER = "cardiogate-synthetic"
MODEL_NAME = "phantom-v1"
SOFTWARE_VERSION = "cardiogate-synthetic 0.1"
IMPLEMENTATION_VERSION_NAME = "CGATE_SYN_01"
_UID_NAMESPACE = "cardiogate.synthetic.v1"
_STUDY_STREAM = 0x57D
_EPOCH = dt.datetime(2019, 1, 1, 7, 0, 0)


@dataclass
class SyntheticSeries:
    """A generated series together with its ground truth.

    Attributes
    ----------
    datasets : list of pydicom.Dataset
        One dataset per SOP instance, each with ``file_meta`` populated.
    truth : dict
        JSON-serialisable description of what was generated.
    phantom : CardiacPhantom, optional
        For CT, the rendered HU and ground-truth label volumes (no DICOM round trip).
    """

    datasets: list[Dataset]
    truth: dict[str, Any] = field(default_factory=dict)
    phantom: CardiacPhantom | CTPhantomB | None = None


@dataclass(frozen=True)
class StudyInfo:
    """Study-level values shared by every modality generated from a seed."""

    seed: int
    study_instance_uid: str
    study_datetime: dt.datetime
    birth_date: dt.date
    sex: str
    age_years: int


def check_seed(seed: int) -> None:
    """Raise ``ValueError`` unless *seed* is a non-negative int."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def synthetic_uid(seed: int, *parts: str) -> str:
    """Return a deterministic UID (pydicom root) for *seed* and *parts*."""
    return str(generate_uid(entropy_srcs=[_UID_NAMESPACE, str(seed), *parts]))


def ds_str(value: float) -> str:
    """Format *value* as a valid (<= 16 character) DS string."""
    return format_number_as_ds(float(value))


def ds_list(values: Sequence[float]) -> list[str]:
    """Format every value of *values* as a DS string."""
    return [ds_str(v) for v in values]


def da(value: dt.date) -> str:
    """Format a date as DICOM DA."""
    return value.strftime("%Y%m%d")


def tm(value: dt.datetime) -> str:
    """Format a time as DICOM TM (whole seconds)."""
    return value.strftime("%H%M%S")


def study_info(seed: int, study_instance_uid: str | None = None) -> StudyInfo:
    """Derive the fake patient and study values for *seed*.

    The values depend only on the seed (never on the modality), so a CT and
    an XA series generated with the same seed belong to the same study.
    """
    check_seed(seed)
    rng = np.random.default_rng([seed, _STUDY_STREAM])
    days = int(rng.integers(0, 5 * 365))
    secs = int(rng.integers(0, 9 * 3600))
    study_dt = _EPOCH + dt.timedelta(days=days, seconds=secs)
    age = int(rng.integers(40, 81))
    birth = dt.date(study_dt.year - age, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365)))
    if (birth.month, birth.day) > (study_dt.month, study_dt.day):
        age -= 1
    sex = "M" if rng.random() < 0.5 else "F"
    uid = study_instance_uid or synthetic_uid(seed, "study")
    return StudyInfo(seed, uid, study_dt, birth, sex, age)


def base_dataset(
    info: StudyInfo,
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    modality: str,
    series_instance_uid: str,
    series_number: int,
    series_datetime: dt.datetime,
) -> Dataset:
    """Create a dataset with file meta, patient, study, series and SOP data.

    Parameters
    ----------
    info : StudyInfo
        Study-level values from :func:`study_info`.
    sop_class_uid, sop_instance_uid : str
        SOP Common identifiers.
    modality : str
        General Series modality (``"CT"``, ``"XA"``).
    series_instance_uid : str
        Series identifier.
    series_number : int
        General Series number.
    series_datetime : datetime.datetime
        Series/acquisition/content date-time.

    Returns
    -------
    pydicom.Dataset
        Dataset ready for modality specific attributes.
    """
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstanceCreationDate = da(series_datetime)
    ds.InstanceCreationTime = tm(series_datetime)
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    # Patient (FAKE)
    ds.PatientName = f"SYNTHETIC^PHANTOM^{info.seed}"
    ds.PatientID = f"SYN{info.seed}"
    ds.PatientBirthDate = da(info.birth_date)
    ds.PatientSex = info.sex
    ds.PatientComments = "SYNTHETIC PHANTOM - NOT A REAL PATIENT"
    # General Study / Patient Study
    ds.StudyInstanceUID = info.study_instance_uid
    ds.StudyDate = da(info.study_datetime)
    ds.StudyTime = tm(info.study_datetime)
    ds.ReferringPhysicianName = ""
    ds.StudyID = f"S{info.seed % 10**15}"
    ds.AccessionNumber = f"SYNA{info.seed % 10**12}"
    ds.StudyDescription = "SYNTHETIC Cardiac"
    ds.PatientAge = f"{info.age_years:03d}Y"
    # General Series
    ds.Modality = modality
    ds.SeriesInstanceUID = series_instance_uid
    ds.SeriesNumber = series_number
    ds.SeriesDate = da(series_datetime)
    ds.SeriesTime = tm(series_datetime)
    ds.BodyPartExamined = "HEART"
    # General Equipment
    ds.Manufacturer = MANUFACTURER
    ds.InstitutionName = "SYNTHETIC"
    ds.ManufacturerModelName = MODEL_NAME
    ds.SoftwareVersions = SOFTWARE_VERSION
    # General Image / Acquisition
    ds.AcquisitionDate = da(series_datetime)
    ds.AcquisitionTime = tm(series_datetime)
    ds.ContentDate = da(series_datetime)
    ds.ContentTime = tm(series_datetime)
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    return ds


def set_pixel_data(ds: Dataset, pixels: np.ndarray[Any, Any]) -> None:
    """Store *pixels* (native little-endian, C order) as ``PixelData``."""
    vr = "OB" if pixels.dtype.itemsize == 1 else "OW"
    ds.add_new(0x7FE00010, vr, np.ascontiguousarray(pixels).tobytes())


def write_series(series: SyntheticSeries, out_dir: Path) -> list[Path]:
    """Write a series as DICOM Part 10 files plus ``truth.json``.

    Parameters
    ----------
    series : SyntheticSeries
        The series to write.
    out_dir : pathlib.Path
        Target directory, created if needed.

    Returns
    -------
    list of pathlib.Path
        The DICOM files (``IM00001.dcm`` ...) in instance order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for index, ds in enumerate(series.datasets, start=1):
        path = out / f"IM{index:05d}.dcm"
        dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    text = json.dumps(series.truth, indent=2, sort_keys=True)
    (out / "truth.json").write_text(text + "\n", encoding="utf-8")
    return paths
