"""XA test instances built from numpy frames: classic multi-frame, single-frame, Enhanced XA.

Every instance is written to bytes and read back before it is returned, so tests assert on
what a peer would have sent. The patient is the fake one of ``cardiogate_phantoms``.
"""

from __future__ import annotations

import datetime as dt
from io import BytesIO
from typing import Any

import numpy as np
import pydicom
from cardiogate_phantoms._common import (
    base_dataset,
    ds_list,
    ds_str,
    set_pixel_data,
    study_info,
    synthetic_uid,
)
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.tag import Tag
from pydicom.uid import EnhancedXAImageStorage, XRayAngiographicImageStorage

SEED = 41
START = dt.datetime(2024, 3, 5, 10, 20, 30)


def roundtrip(ds: Dataset) -> Dataset:
    """The dataset as a peer receives it: written as Part 10 and read back."""
    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def frames_u8(n: int = 4, rows: int = 16, columns: int = 20) -> np.ndarray[Any, Any]:
    """Distinct, recognisable frames: frame k holds k * 10 + a row/column ramp."""
    yy, xx = np.mgrid[0:rows, 0:columns]
    return np.stack([(k * 10 + yy + 2 * xx) % 256 for k in range(n)]).astype(np.uint8)


def _image(pixels: np.ndarray[Any, Any], sop_class: str, index: int, series: str = "a") -> Dataset:
    info = study_info(SEED)
    series_uid = synthetic_uid(SEED, "xa-test", series)
    ds = base_dataset(
        info,
        sop_class_uid=sop_class,
        sop_instance_uid=synthetic_uid(SEED, "xa-test", series, str(index)),
        modality="XA",
        series_instance_uid=series_uid,
        series_number=1,
        series_datetime=START,
    )
    ds.InstanceNumber = index + 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    bits = 8 * pixels.dtype.itemsize
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    set_pixel_data(ds, pixels)
    return ds


def _apply(ds: Dataset, attributes: dict[str, Any]) -> None:
    """Set attributes by keyword; None deletes."""
    for keyword, value in attributes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)


def classic_geometry() -> dict[str, Any]:
    """XA Positioner Module values: 0.2 mm detector pixels, SID 1000 mm, SOD 800 mm."""
    return {
        "ImagerPixelSpacing": ds_list([0.2, 0.2]),
        "DistanceSourceToDetector": ds_str(1000),
        "DistanceSourceToPatient": ds_str(800),
        "PositionerPrimaryAngle": ds_str(45),
        "PositionerSecondaryAngle": ds_str(20),
    }


def multiframe_xa(pixels: np.ndarray[Any, Any], **attributes: Any) -> Dataset:
    """One X-Ray Angiographic Image instance holding every frame, 15 frames/s by default."""
    ds = _image(pixels, XRayAngiographicImageStorage, 0)
    ds.NumberOfFrames = len(pixels)
    ds.FrameIncrementPointer = Tag("FrameTime")
    ds.FrameTime = ds_str(66.7)
    ds.PositionerMotion = "STATIC"
    _apply(ds, {**classic_geometry(), **attributes})
    return roundtrip(ds)


def single_frame_xa(pixels: np.ndarray[Any, Any], series: str = "a", **attrs: Any) -> list[Dataset]:
    """One single-frame XA instance per frame, 100 ms apart in AcquisitionTime."""
    out = []
    for index, frame in enumerate(pixels):
        ds = _image(frame, XRayAngiographicImageStorage, index, series)
        time = START + dt.timedelta(milliseconds=100 * index)
        ds.AcquisitionTime = ds.ContentTime = time.strftime("%H%M%S.%f")
        _apply(ds, {**classic_geometry(), **attrs})
        out.append(roundtrip(ds))
    return out


def _item(**values: Any) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def enhanced_xa(
    pixels: np.ndarray[Any, Any],
    *,
    frame_times_ms: list[float] | None = None,
    primary_angles: list[float] | None = None,
    shared_primary: float = -30.0,
    shared_secondary: float = -25.0,
    **attributes: Any,
) -> Dataset:
    """One Enhanced XA instance (PS3.3 A.47) with shared and per-frame functional groups.

    Shared: detector pixel spacing 0.3 mm, SID 1200 mm, source-isocentre 750 mm, angles
    (RAO 30 CAU 25 by default). Per frame: Frame Content with Frame Reference DateTime and,
    when *primary_angles* is given, a per-frame Positioner Position that overrides the
    shared one.
    """
    ds = _image(pixels, EnhancedXAImageStorage, 0)
    ds.NumberOfFrames = len(pixels)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    shared = _item(
        FramePixelDataPropertiesSequence=[_item(ImagerPixelSpacing=ds_list([0.3, 0.3]))],
        XRayGeometrySequence=[
            _item(DistanceSourceToIsocenter=750.0, DistanceSourceToDetector=ds_str(1200))
        ],
        PositionerPositionSequence=[
            _item(
                PositionerPrimaryAngle=ds_str(shared_primary),
                PositionerSecondaryAngle=ds_str(shared_secondary),
            )
        ],
    )
    ds.SharedFunctionalGroupsSequence = [shared]
    times = frame_times_ms if frame_times_ms is not None else [40.0 * k for k in range(len(pixels))]
    per_frame = []
    for k, t in enumerate(times):
        stamp = (START + dt.timedelta(milliseconds=t)).strftime("%Y%m%d%H%M%S.%f")
        group = _item(
            FrameContentSequence=[
                _item(
                    FrameReferenceDateTime=stamp,
                    FrameAcquisitionDateTime=stamp,
                    FrameAcquisitionDuration=5.0,
                )
            ]
        )
        if primary_angles is not None:
            group.PositionerPositionSequence = [
                _item(
                    PositionerPrimaryAngle=ds_str(primary_angles[k]),
                    PositionerSecondaryAngle=ds_str(shared_secondary),
                )
            ]
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    _apply(ds, attributes)
    return roundtrip(ds)
