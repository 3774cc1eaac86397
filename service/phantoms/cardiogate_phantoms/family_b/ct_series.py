"""Family B cardiac CT as DICOM: CT Image Storage, one instance per slice (PS3.3 A.3).

Patient, General Study, Patient Study, General Series, Frame of Reference, General
Equipment, General Acquisition, General Image, Image Plane (C.7.6.2), Image Pixel, CT Image
(C.8.2.1), VOI LUT and SOP Common.  UIDs come from the seed, the family and the
acquisition, under a namespace of this family's own, so family A and family B never share
one for the same seed; a study UID can be given to put the series into an existing study.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from .._common import (
    StudyInfo,
    SyntheticSeries,
    base_dataset,
    ds_list,
    ds_str,
    set_pixel_data,
    study_info,
    synthetic_uid,
)
from .ct import CTPhantomB, make_ct_phantom_b

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MANUFACTURER = "cardiogate-synthetic-b"
MODEL_NAME = "phantom-b-ct"
SERIES_NUMBER = 201
_NAMESPACE = ("family-b", "ct")


def _acquisition_key(ph: CTPhantomB, options: dict[str, Any]) -> str:
    """A digest of everything that shapes the pixels, so another acquisition of the same
    seed gets other UIDs."""
    text = json.dumps(
        {
            "shape": list(ph.hu.shape),
            "spacing": ph.pixel_spacing_mm,
            "thickness": ph.slice_thickness_mm,
            "noise": ph.difficulty["noise_sigma_hu"],
            **{k: options[k] for k in sorted(options)},
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stored(ph: CTPhantomB, index: int) -> np.ndarray[Any, Any]:
    representation, _, intercept = ph.encoding
    values = ph.hu[index].astype(np.int32) - int(intercept)
    return np.asarray(values, np.int16 if representation else np.uint16)


@dataclass(frozen=True)
class _Series:
    """What every slice of one series shares."""

    info: StudyInfo
    series_instance_uid: str
    frame_of_reference_uid: str
    when: dt.datetime
    description: str
    tube_current_ma: int


def _slice_dataset(ph: CTPhantomB, index: int, series: _Series, sop_instance_uid: str) -> Dataset:
    ds = base_dataset(
        series.info,
        sop_class_uid=CT_IMAGE_STORAGE,
        sop_instance_uid=sop_instance_uid,
        modality="CT",
        series_instance_uid=series.series_instance_uid,
        series_number=SERIES_NUMBER,
        series_datetime=series.when,
    )
    representation, bits, intercept = ph.encoding
    rows, columns = ph.hu.shape[1:]
    z = float(ph.z_mm[index])
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL_NAME
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = index + 1
    ds.AcquisitionNumber = 1
    ds.PatientPosition = "HFS"
    ds.SeriesDescription = series.description
    ds.ProtocolName = "Coronary calcium score (synthetic, family B)"
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    # Image Plane (PS3.3 C.7.6.2)
    ds.ImagePositionPatient = ds_list([ph.origin_mm[0], ph.origin_mm[1], z])
    ds.ImageOrientationPatient = ds_list([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    ds.PixelSpacing = ds_list(ph.pixel_spacing_rc)
    ds.SliceThickness = ds_str(ph.slice_thickness_mm)
    ds.SpacingBetweenSlices = ds_str(ph.slice_increment_mm)
    ds.SliceLocation = ds_str(z)
    # CT Image (PS3.3 C.8.2.1) and Image Pixel (C.7.6.3)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = representation
    ds.RescaleIntercept = ds_str(intercept)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.KVP = "120"
    ds.ConvolutionKernel = ph.kernel_name
    ds.ReconstructionDiameter = ds_str(max(rows, columns) * ph.pixel_spacing_mm)
    ds.DataCollectionDiameter = "500"
    ds.GantryDetectorTilt = "0"
    ds.RotationDirection = "CW"
    ds.XRayTubeCurrent = series.tube_current_ma
    ds.ExposureTime = 175
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.WindowCenterWidthExplanation = "MEDIASTINUM"
    set_pixel_data(ds, _stored(ph, index))
    return ds


def make_ct_series_b(
    seed: int, *, study_instance_uid: str | None = None, **options: Any
) -> SyntheticSeries:
    """Family B cardiac CT (``make_ct_phantom_b(seed, **options)``) as CT Image Storage
    datasets, its truth (``CTPhantomB.truth()``) and the phantom itself."""
    ph = make_ct_phantom_b(seed, **options)
    key = _acquisition_key(ph, options)
    info = study_info(seed, study_instance_uid or synthetic_uid(seed, *_NAMESPACE, "study"))
    series = _Series(
        info=info,
        series_instance_uid=synthetic_uid(seed, *_NAMESPACE, key, "series"),
        frame_of_reference_uid=synthetic_uid(seed, *_NAMESPACE, key, "frame-of-reference"),
        when=info.study_datetime + dt.timedelta(minutes=4),
        description=f"SYNTHETIC B CaSc {ph.slice_thickness_mm:g}mm {ph.kernel_name}",
        tube_current_ma=int(80 + 12 * ph.difficulty["noise_sigma_hu"]),
    )
    datasets = [
        _slice_dataset(ph, i, series, synthetic_uid(seed, *_NAMESPACE, key, "image", str(i)))
        for i in range(ph.hu.shape[0])
    ]
    truth = {
        **ph.truth(),
        "series_instance_uid": series.series_instance_uid,
        "study_instance_uid": info.study_instance_uid,
    }
    return SyntheticSeries(datasets, truth, phantom=ph)
