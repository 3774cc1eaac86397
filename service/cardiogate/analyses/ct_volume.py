"""Load a CT series into a Hounsfield-unit volume with its geometry.

Slices are sorted along the slice normal (the cross product of the ImageOrientationPatient
row and column directions, PS3.3 C.7.6.2.1.1) by the projection of ImagePositionPatient on
it, and the slice increment is derived from the sorted positions. A series with gaps,
duplicate positions, mixed orientations, mixed pixel spacing or mixed matrix sizes is
refused with a reason rather than scored wrongly. Compressed transfer syntaxes are decoded
by pydicom's pixel handlers (pylibjpeg, pyjpegls).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from cardiogate.analyses.pixels import (
    MAX_VOXELS,
    check_image,
    convert_header,
    decoding,
    read_file,
)
from cardiogate.errors import CardiogateError

# Positions may wobble by rounding in the DS strings; a gap is a step this much off the median.
_STEP_TOLERANCE = 0.1  # fraction of the median increment
_STEP_TOLERANCE_MM = 0.05
_DIRECTION_TOLERANCE = 1e-3
_SPACING_TOLERANCE_MM = 1e-3


class SeriesGeometryError(CardiogateError):
    """The slices do not make one regular volume; the message says why."""


@dataclass(frozen=True)
class CTVolume:
    """A CT series as (slices, rows, columns) HU, sorted along the slice normal."""

    hu: np.ndarray[Any, np.dtype[np.float32]]
    pixel_spacing_mm: tuple[float, float]  # (row spacing, column spacing)
    slice_increment_mm: float
    slice_thickness_mm: float | None
    positions_mm: np.ndarray[Any, np.dtype[np.float64]]  # (slices, 3) ImagePositionPatient
    orientation: np.ndarray[Any, np.dtype[np.float64]]  # (6,) ImageOrientationPatient
    sop_instance_uids: list[str]
    calcium_mass_factor: float | None  # (0018,9351), mg/cm3 per HU

    def to_patient_mm(self, slice_index: float, row: float, column: float) -> tuple[float, ...]:
        """Patient coordinates (mm) of a voxel position (PS3.3 C.7.6.2.1.1)."""
        row_dir, col_dir = self.orientation[:3], self.orientation[3:]
        z0 = int(np.clip(np.floor(slice_index), 0, len(self.positions_mm) - 1))
        z1 = min(z0 + 1, len(self.positions_mm) - 1)
        origin = self.positions_mm[z0] + (slice_index - z0) * (
            self.positions_mm[z1] - self.positions_mm[z0]
        )
        point = (
            origin
            + column * self.pixel_spacing_mm[1] * row_dir
            + row * self.pixel_spacing_mm[0] * col_dir
        )
        return tuple(float(v) for v in point)


def _floats(ds: Dataset, keyword: str, count: int, uid: str) -> np.ndarray[Any, Any]:
    value = ds.get(keyword)
    values = list(value) if isinstance(value, MultiValue | list) else [value]
    try:
        numbers = np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SeriesGeometryError(f"instance {uid} lacks a usable {keyword}") from e
    if len(numbers) != count or not np.isfinite(numbers).all():
        raise SeriesGeometryError(f"instance {uid} lacks a usable {keyword}")
    return numbers


def _optional_float(ds: Dataset, keyword: str, uid: str) -> float | None:
    value = ds.get(keyword)
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as e:
        raise SeriesGeometryError(f"instance {uid} has an unusable {keyword}") from e
    if not np.isfinite(number):
        raise SeriesGeometryError(f"instance {uid} has an unusable {keyword}")
    return number


def _read(source: Path | Dataset, index: int) -> tuple[Dataset, str]:
    ds = read_file(source, index, SeriesGeometryError)
    uid = str(ds.get("SOPInstanceUID", "?"))[:64]
    convert_header(ds, uid, SeriesGeometryError)
    return ds, uid


def load_ct_series(sources: Iterable[Path | Dataset]) -> CTVolume:
    """Read, check, sort and convert a CT series (files or datasets) to a HU volume.

    Raises
    ------
    SeriesGeometryError
        When the slices do not form one regular volume, or pixel data cannot be decoded.
    """
    read = [_read(source, index) for index, source in enumerate(sources)]
    if len(read) < 2:
        raise SeriesGeometryError(f"a volume needs at least 2 slices, got {len(read)}")
    datasets, uids = [ds for ds, _ in read], [uid for _, uid in read]
    orientations = [
        _floats(ds, "ImageOrientationPatient", 6, u) for ds, u in zip(datasets, uids, strict=True)
    ]
    positions = np.stack(
        [_floats(ds, "ImagePositionPatient", 3, u) for ds, u in zip(datasets, uids, strict=True)]
    )
    spacings = [_floats(ds, "PixelSpacing", 2, u) for ds, u in zip(datasets, uids, strict=True)]

    orientation = orientations[0]
    if any(np.abs(o - orientation).max() > _DIRECTION_TOLERANCE for o in orientations):
        raise SeriesGeometryError("mixed ImageOrientationPatient within the series")
    if any(np.abs(s - spacings[0]).max() > _SPACING_TOLERANCE_MM for s in spacings):
        raise SeriesGeometryError("mixed PixelSpacing within the series")
    if not (spacings[0] > 0).all():
        raise SeriesGeometryError("PixelSpacing is not positive")
    shapes = {
        check_image(ds, 1, u, SeriesGeometryError) for ds, u in zip(datasets, uids, strict=True)
    }
    if len(datasets) * next(iter(shapes))[0] * next(iter(shapes))[1] > MAX_VOXELS:
        raise SeriesGeometryError(f"{len(datasets)} slices are more than one volume can hold")
    if len(shapes) != 1:
        raise SeriesGeometryError(f"mixed matrix sizes within the series: {sorted(shapes)}")

    normal = np.cross(orientation[:3], orientation[3:])
    if np.linalg.norm(normal) < 0.5:
        raise SeriesGeometryError("ImageOrientationPatient directions are not orthogonal")
    distances = positions @ normal
    order = np.argsort(distances, kind="stable")
    steps = np.diff(distances[order])
    increment = float(np.median(steps))
    if increment <= _STEP_TOLERANCE_MM:
        raise SeriesGeometryError("several slices share one position (duplicate or overlapping)")
    tolerance = max(_STEP_TOLERANCE * increment, _STEP_TOLERANCE_MM)
    irregular = np.flatnonzero(np.abs(steps - increment) > tolerance)
    if irregular.size:
        i = int(irregular[0])
        raise SeriesGeometryError(
            f"gap in slice positions: {steps[i]:.2f} mm between sorted slices {i} and {i + 1}, "
            f"expected {increment:.2f} mm"
        )

    hu = np.empty((len(datasets), *shapes.pop()), dtype=np.float32)
    for out_index, in_index in enumerate(order):
        hu[out_index] = _to_hu(datasets[in_index], uids[in_index])
    thickness = _optional_float(datasets[0], "SliceThickness", uids[0])
    factor = _optional_float(datasets[0], "CalciumScoringMassFactorPatient", uids[0])
    return CTVolume(
        hu=hu,
        pixel_spacing_mm=(float(spacings[0][0]), float(spacings[0][1])),
        slice_increment_mm=increment,
        slice_thickness_mm=thickness,
        positions_mm=positions[order],
        orientation=orientation,
        sop_instance_uids=[uids[i] for i in order],
        calcium_mass_factor=factor,
    )


def _to_hu(ds: Dataset, uid: str) -> np.ndarray[Any, Any]:
    if ds.get("SamplesPerPixel", 1) != 1:
        raise SeriesGeometryError(f"instance {uid} is not a greyscale image")
    with decoding(ds, uid, SeriesGeometryError):
        pixels = ds.pixel_array
    if pixels.ndim != 2:
        raise SeriesGeometryError(f"instance {uid} decodes to {pixels.ndim} dimensions, not 2")
    slope = _optional_float(ds, "RescaleSlope", uid) or 1.0
    intercept = _optional_float(ds, "RescaleIntercept", uid) or 0.0
    return pixels.astype(np.float32) * slope + intercept
