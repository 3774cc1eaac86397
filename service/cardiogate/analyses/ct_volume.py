"""Load a CT series into a Hounsfield-unit volume with its geometry.

A series is CT Image Storage instances (one slice each, in any order) or Enhanced CT Image
Storage instances, whose frames are slices with their position, orientation, pixel
spacing and rescale in the per-frame or shared functional groups (PS3.3 C.7.6.16.2). Slices
are sorted along the slice normal (the cross product of the ImageOrientationPatient row and
column directions, PS3.3 C.7.6.2.1.1) by the projection of ImagePositionPatient on it, and
the slice increment is derived from the sorted positions.

Refused with a reason rather than scored wrongly: gaps, duplicate positions, mixed
orientations, pixel spacings or matrix sizes, a tilted gantry (Gantry/Detector Tilt, or
positions that step off the slice normal), a Rescale Type other than HU. A defect found in
several slices is reported once with its count ("PixelSpacing absent in 3 of 64 slices").

Hounsfield units are stored value x Rescale Slope + Rescale Intercept (PS3.3 C.11.1.1.2),
for MONOCHROME1 as for MONOCHROME2 (the photometric interpretation only concerns display);
BitsStored below BitsAllocated and signed pixels are taken care of by pydicom's decoders.
Rescale Slope and Intercept are Type 1 in CT; when a sender leaves them out, the stored
values are taken as HU (slope 1, intercept 0) only if the volume then holds air (below
-500 HU), as every chest CT does; otherwise the series is refused, units unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.utils import iter_pixels

from cardiogate.analyses.pixels import (
    MAX_VOXELS,
    Defect,
    Defects,
    convert_header,
    decoding,
    framed,
    image_defect,
    read_file,
)
from cardiogate.analyses.xa_geometry import frame_value
from cardiogate.errors import CardiogateError

# Positions may wobble by rounding in the DS strings; a gap is a step this much off the median.
_STEP_TOLERANCE = 0.1  # fraction of the median increment
_STEP_TOLERANCE_MM = 0.05
_DIRECTION_TOLERANCE = 1e-3
_SPACING_TOLERANCE_MM = 1e-3
_TILT_TOLERANCE_DEG = 0.5  # of Gantry/Detector Tilt, and of the positions off the normal
_AIR_HU = -500.0  # every chest CT holds air below this; stored values without it are not HU
_GREYSCALE = ("MONOCHROME1", "MONOCHROME2")


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
    sop_instance_uids: list[str]  # of each slice; repeated for the frames of Enhanced CT
    calcium_mass_factor: float | None  # (0018,9351), mg/cm3 per HU
    frame_numbers: list[int] | None = None  # 1-based frame of each slice in its instance

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


@dataclass(frozen=True)
class _Slice:
    """One slice: a single-frame instance, or one frame of an Enhanced CT instance."""

    instance: int  # index into the series' datasets
    frame: int  # 0-based
    position: np.ndarray[Any, np.dtype[np.float64]]
    orientation: np.ndarray[Any, np.dtype[np.float64]]
    spacing: np.ndarray[Any, np.dtype[np.float64]]
    slope: float
    intercept: float
    rescale_given: bool


# (functional group sequence, attribute, values) of each slice's geometry, PS3.3 C.7.6.16.2
_GEOMETRY = (
    ("PlanePositionSequence", "ImagePositionPatient", 3),
    ("PlaneOrientationSequence", "ImageOrientationPatient", 6),
    ("PixelMeasuresSequence", "PixelSpacing", 2),
)
_RESCALE = "PixelValueTransformationSequence"
_RESCALES = ("RescaleSlope", "RescaleIntercept")
_ACQUISITION = "CTAcquisitionDetailsSequence"


def _floats(value: Any, keyword: str, count: int) -> np.ndarray[Any, Any] | Defect:
    if value is None:
        return Defect(keyword, "absent")
    values = list(value) if isinstance(value, MultiValue | list) else [value]
    try:
        numbers = np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return Defect(keyword, "unusable")
    if len(numbers) != count or not np.isfinite(numbers).all():
        return Defect(keyword, "unusable")
    return numbers


def _optional_float(ds: Dataset, keyword: str, uid: str, group: str | None = None) -> float | None:
    value = frame_value(ds, 0, group, keyword)
    if value is None:
        return None
    number = _floats(value, keyword, 1)
    if isinstance(number, Defect):
        raise SeriesGeometryError(f"instance {uid} has an unusable {keyword}")
    return float(number[0])


def _read_all(sources: Iterable[Path | Dataset]) -> tuple[list[Dataset], list[str]]:
    """Every source parsed and its header converted; failures counted, not only the first."""
    datasets, uids, unreadable, malformed = [], [], [], []
    for index, source in enumerate(sources):
        try:
            ds = read_file(source, index, SeriesGeometryError)
        except SeriesGeometryError:
            unreadable.append(f"source {index}")
            continue
        uid = str(ds.get("SOPInstanceUID", "?"))[:64]
        try:
            convert_header(ds, uid, SeriesGeometryError)
        except SeriesGeometryError:
            malformed.append(f"instance {uid}")
        datasets.append(ds)
        uids.append(uid)
    total = len(datasets) + len(unreadable)
    for failed, what in (
        (unreadable, "cannot be read as DICOM"),
        (malformed, "have a malformed header value"),
    ):
        if failed:
            raise SeriesGeometryError(
                f"{len(failed)} of {total} sources {what} (first: {failed[0]})"
            )
    return datasets, uids


def _frames(ds: Dataset) -> int | Defect:
    """Number of Frames; a CT Image (no functional groups) must be one slice."""
    value = ds.get("NumberOfFrames")
    if value in (None, ""):
        return 1
    try:
        frames = int(value)
    except (TypeError, ValueError, OverflowError):
        return Defect("NumberOfFrames", "unusable")
    if frames > 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        return Defect("NumberOfFrames", "above 1 without per-frame functional groups")
    return frames if frames >= 1 else Defect("NumberOfFrames", "below 1")


def _instance_defect(ds: Dataset) -> tuple[int, tuple[int, int]] | Defect:
    """Frames and (rows, columns) of an instance, or what makes it unreadable as CT."""
    frames = _frames(ds)
    if isinstance(frames, Defect):
        return frames
    if ds.get("SamplesPerPixel", 1) != 1:
        return Defect("SamplesPerPixel", "not 1 (not a greyscale image)")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in _GREYSCALE:
        return Defect("PhotometricInterpretation", f"{photometric[:16]}, not greyscale")
    shape = image_defect(ds, frames)
    return shape if isinstance(shape, Defect) else (frames, shape)


def _rescale(ds: Dataset, frame: int, keyword: str, defects: Defects, uid: str) -> float | None:
    """Rescale Slope or Intercept of a frame; None when absent (or recorded as unusable)."""
    value = frame_value(ds, frame, _RESCALE, keyword)
    number = _floats(value, keyword, 1) if value is not None else None
    if isinstance(number, Defect):
        defects.add(uid, number)
        return None
    return None if number is None else float(number[0])


def _slice(ds: Dataset, instance: int, frame: int, defects: Defects, uid: str) -> _Slice | None:
    """The geometry and rescale of one frame, or None with its defects recorded."""
    found: list[np.ndarray[Any, Any]] = []
    for group, keyword, count in _GEOMETRY:
        value = _floats(frame_value(ds, frame, group, keyword), keyword, count)
        if isinstance(value, Defect):
            defects.add(uid, value)
        else:
            found.append(value)
    slope, intercept = (_rescale(ds, frame, keyword, defects, uid) for keyword in _RESCALES)
    if slope == 0:
        defects.add(uid, Defect("RescaleSlope", "0"))
    kind = str(frame_value(ds, frame, _RESCALE, "RescaleType") or "HU")
    if kind.upper() != "HU":
        defects.add(uid, Defect("RescaleType", f"{kind[:16]}, not HU"))
    if len(found) != len(_GEOMETRY):
        return None
    position, orientation, spacing = found
    return _Slice(
        instance,
        frame,
        position,
        orientation,
        spacing,
        slope=1.0 if slope is None else slope,
        intercept=0.0 if intercept is None else intercept,
        rescale_given=slope is not None and intercept is not None,
    )


def _check_tilt(
    datasets: list[Dataset], slices: list[_Slice], normal: np.ndarray[Any, Any]
) -> None:
    """Refuse a tilted gantry: declared, or seen in positions that step off the normal."""
    for s in slices:
        tilt = _floats(
            frame_value(datasets[s.instance], s.frame, _ACQUISITION, "GantryDetectorTilt"),
            "GantryDetectorTilt",
            1,
        )
        if not isinstance(tilt, Defect) and abs(tilt[0]) > _TILT_TOLERANCE_DEG:
            raise SeriesGeometryError(
                f"gantry tilt {tilt[0]:g} degrees: calcium scoring needs untilted axial slices"
            )
    span = slices[-1].position - slices[0].position
    cosine = abs(float(span @ normal)) / max(float(np.linalg.norm(span)), 1e-9)
    off = float(np.degrees(np.arccos(min(cosine, 1.0))))
    if off > _TILT_TOLERANCE_DEG:
        raise SeriesGeometryError(
            f"slice positions step {off:.1f} degrees off the slice normal (gantry tilt): "
            "calcium scoring needs untilted axial slices"
        )


def load_ct_series(sources: Iterable[Path | Dataset]) -> CTVolume:
    """Read, check, sort and convert a CT series (files or datasets) to a HU volume.

    Raises
    ------
    SeriesGeometryError
        When the slices do not form one regular volume, or pixel data cannot be decoded.
    """
    datasets, uids = _read_all(sources)
    multiframe = any("PerFrameFunctionalGroupsSequence" in ds for ds in datasets)
    images = Defects(len(datasets), "instances" if multiframe else "slices")
    frames, shapes = [], set()
    for ds, uid in zip(datasets, uids, strict=True):
        found = _instance_defect(ds)
        images.add(uid, found if isinstance(found, Defect) else None)
        if not isinstance(found, Defect):
            frames.append(found[0])
            shapes.add(found[1])
    images.check(SeriesGeometryError)
    if sum(frames) < 2:
        raise SeriesGeometryError(f"a volume needs at least 2 slices, got {sum(frames)}")
    if len(shapes) != 1:
        raise SeriesGeometryError(f"mixed matrix sizes within the series: {sorted(shapes)}")
    shape = shapes.pop()
    if sum(frames) * shape[0] * shape[1] > MAX_VOXELS:
        raise SeriesGeometryError(f"{sum(frames)} slices are more than one volume can hold")

    attributes = Defects(sum(frames), "slices")
    read = [
        _slice(ds, i, k, attributes, uid)
        for i, (ds, uid, n) in enumerate(zip(datasets, uids, frames, strict=True))
        for k in range(n)
    ]
    attributes.check(SeriesGeometryError)
    slices = [s for s in read if s is not None]

    orientation, spacing = slices[0].orientation, slices[0].spacing
    if any(np.abs(s.orientation - orientation).max() > _DIRECTION_TOLERANCE for s in slices):
        raise SeriesGeometryError("mixed ImageOrientationPatient within the series")
    if any(np.abs(s.spacing - spacing).max() > _SPACING_TOLERANCE_MM for s in slices):
        raise SeriesGeometryError("mixed PixelSpacing within the series")
    if not (spacing > 0).all():
        raise SeriesGeometryError("PixelSpacing is not positive")

    normal = np.cross(orientation[:3], orientation[3:])
    if np.linalg.norm(normal) < 0.5:
        raise SeriesGeometryError("ImageOrientationPatient directions are not orthogonal")
    distances = np.asarray([s.position @ normal for s in slices])
    order = np.argsort(distances, kind="stable")
    slices = [slices[i] for i in order]
    steps = np.diff(distances[order])
    increment = float(np.median(steps))
    if increment <= _STEP_TOLERANCE_MM:
        raise SeriesGeometryError("several slices share one position (duplicate or overlapping)")
    _check_tilt(datasets, slices, normal)
    tolerance = max(_STEP_TOLERANCE * increment, _STEP_TOLERANCE_MM)
    irregular = np.flatnonzero(np.abs(steps - increment) > tolerance)
    if irregular.size:
        i = int(irregular[0])
        raise SeriesGeometryError(
            f"gap in slice positions: {steps[i]:.2f} mm between sorted slices {i} and {i + 1}, "
            f"expected {increment:.2f} mm"
        )

    hu = _decode(datasets, uids, frames, slices, shape, images.unit)
    first, first_uid = datasets[slices[0].instance], uids[slices[0].instance]
    return CTVolume(
        hu=hu,
        pixel_spacing_mm=(float(spacing[0]), float(spacing[1])),
        slice_increment_mm=increment,
        slice_thickness_mm=_optional_float(
            first, "SliceThickness", first_uid, "PixelMeasuresSequence"
        ),
        positions_mm=np.stack([s.position for s in slices]),
        orientation=orientation,
        sop_instance_uids=[uids[s.instance] for s in slices],
        calcium_mass_factor=_optional_float(
            first, "CalciumScoringMassFactorPatient", first_uid, "CTExposureSequence"
        ),
        frame_numbers=[s.frame + 1 for s in slices],
    )


def _decode(
    datasets: list[Dataset],
    uids: list[str],
    frames: list[int],
    slices: list[_Slice],
    shape: tuple[int, int],
    unit: str,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Decode every instance once, each frame into its sorted place, as HU."""
    place = {(s.instance, s.frame): (index, s) for index, s in enumerate(slices)}
    hu = np.empty((len(slices), *shape), dtype=np.float32)
    failures: list[SeriesGeometryError] = []
    for i, (ds, uid, n) in enumerate(zip(datasets, uids, frames, strict=True)):
        try:
            _decode_instance(ds, uid, n, [place.get((i, k)) for k in range(n)], hu)
        except SeriesGeometryError as e:
            failures.append(e)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise SeriesGeometryError(
            f"PixelData cannot be decoded in {len(failures)} of {len(datasets)} {unit} "
            f"(first: {failures[0]})"
        ) from failures[0]
    assumed = sum(not s.rescale_given for s in slices)
    if assumed and float(hu.min()) > _AIR_HU:
        raise SeriesGeometryError(
            f"RescaleSlope or RescaleIntercept absent in {assumed} of {len(slices)} slices and "
            f"the stored values hold no air (none below {_AIR_HU:g}): Hounsfield units unknown"
        )
    return hu


def _decode_instance(
    ds: Dataset,
    uid: str,
    n: int,
    places: list[tuple[int, _Slice] | None],
    hu: np.ndarray[Any, np.dtype[np.float32]],
) -> None:
    """Decode the ``n`` frames of one instance into their places in ``hu``, as HU."""
    decoded = 0
    with decoding(ds, uid, SeriesGeometryError):
        for pixels in iter_pixels(framed(ds, n, uid, SeriesGeometryError)):
            if pixels.shape != hu.shape[1:]:
                raise SeriesGeometryError(f"instance {uid} decodes to frames of {pixels.shape}")
            place = places[decoded] if decoded < n else None
            if place is not None:
                index, s = place
                np.multiply(pixels, np.float32(s.slope), out=hu[index])
                hu[index] += np.float32(s.intercept)
            decoded += 1
    if decoded != n:
        raise SeriesGeometryError(
            f"instance {uid} decodes to {decoded} frames, NumberOfFrames says {n}"
        )
