"""Projection geometry of an angiographic cine: mm per pixel at the isocentre and the view.

Pixel size, first rule that applies (PS3.3 10.7.1.1, C.8.7.5, C.8.19.6.9, C.8.19.6.14):

1. Pixel Spacing (0028,0030) that has been calibrated: it differs from Imager Pixel Spacing
   (0018,1164), or Pixel Spacing Calibration Type (0028,0A02) says GEOMETRY or FIDUCIAL.
   Pixel Spacing equal to Imager Pixel Spacing is the detector spacing, not a calibration.
2. Imager Pixel Spacing x SOD / SID, the isocentre magnification correction, with SOD =
   Distance Source to Patient (0018,1111) (Enhanced XA: Distance Source to Isocenter
   (0018,9402)) and SID = Distance Source to Detector (0018,1110).
3. Imager Pixel Spacing / Estimated Radiographic Magnification Factor (0018,1114), which the
   standard defines as SID / SOD.
4. Object Pixel Spacing in Center of Beam (0018,9404) of the Enhanced XA X-Ray Projection
   Pixel Calibration Macro (calibrated at the table, not at the isocentre).

Otherwise the cine has no size in mm: ``pixel_spacing_mm`` is None and ``flags`` says what
was missing; results then stay in pixels. Pixel Spacing that cannot be checked (no Imager
Pixel Spacing, no calibration type) is used as is and flagged.

Angles (PS3.3 C.8.7.5): Positioner Primary Angle (0018,1510) runs RAO (-) to LAO (+),
Positioner Secondary Angle (0018,1511) runs CAU (-) to CRA (+). Enhanced XA carries them in
the X-Ray Positioner Macro (Positioner Position Sequence (0018,9405)), shared or per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

# A calibrated Pixel Spacing differs from the detector spacing by more than rounding.
_SAME_SPACING = 1e-4  # mm
# Angles closer to zero than this are "AP" / no cranio-caudal tilt in the label.
_ANGLE_ROUNDING_DEG = 0.5
# A positioner that moved more than this during the cine makes the label the first frame's.
_MOVING_DEG = 1.0
_ANISOTROPY = 0.01

# Functional group sequences (PS3.3 C.7.6.16, C.8.19.6) and the attribute each carries here.
PIXEL_MEASURES = "PixelMeasuresSequence"
FRAME_PIXEL_PROPERTIES = "FramePixelDataPropertiesSequence"  # (0028,9443)
XRAY_GEOMETRY = "XRayGeometrySequence"
PROJECTION_CALIBRATION = "ProjectionPixelCalibrationSequence"  # (0018,9401)
POSITIONER_POSITION = "PositionerPositionSequence"


def frame_value(ds: Dataset, frame: int, sequence: str | None, keyword: str) -> Any:
    """Value of *keyword* for a frame: per-frame group, then shared group, then top level.

    Parameters
    ----------
    ds : Dataset
        One instance; classic instances have no functional groups and answer from the top
        level.
    frame : int
        0-based frame index.
    sequence : str or None
        Keyword of the functional group sequence that holds *keyword* (PS3.3 C.7.6.16).
    keyword : str
        Attribute keyword.

    Returns
    -------
    Any
        The element value, or None when absent or empty.
    """
    if sequence is not None:
        groups = []
        per_frame = ds.get("PerFrameFunctionalGroupsSequence")
        if per_frame is not None and frame < len(per_frame):
            groups.append(per_frame[frame])
        shared = ds.get("SharedFunctionalGroupsSequence")
        if shared:
            groups.append(shared[0])
        for group in groups:
            items = group.get(sequence)
            if items:
                value = items[0].get(keyword)
                if value not in (None, ""):
                    return value
    value = ds.get(keyword)
    return None if value in (None, "") else value


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _pair(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        items = list(value)
    except TypeError:
        return None
    numbers = [_number(v) for v in items]
    if len(numbers) != 2 or any(n is None or n <= 0 for n in numbers):
        return None
    return (float(numbers[0]), float(numbers[1]))  # type: ignore[arg-type]


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def projection_label(primary_deg: float | None, secondary_deg: float | None) -> str | None:
    """The cath-lab name of a view, e.g. ``"LAO 45 CRA 20"``, ``"RAO 30 CAU 25"``, ``"AP"``.

    Parameters
    ----------
    primary_deg : float or None
        Positioner Primary Angle (0018,1510): + is LAO, - is RAO.
    secondary_deg : float or None
        Positioner Secondary Angle (0018,1511): + is CRA (cranial), - is CAU (caudal).

    Returns
    -------
    str or None
        None when the primary angle is unknown; a missing secondary angle is left out.
    """
    if primary_deg is None:
        return None
    primary = round(primary_deg)
    if abs(primary_deg) < _ANGLE_ROUNDING_DEG or primary == 0:
        parts = ["AP"]
    else:
        parts = [f"{'LAO' if primary > 0 else 'RAO'} {abs(primary)}"]
    if secondary_deg is not None:
        secondary = round(secondary_deg)
        if abs(secondary_deg) >= _ANGLE_ROUNDING_DEG and secondary != 0:
            parts.append(f"{'CRA' if secondary > 0 else 'CAU'} {abs(secondary)}")
    return " ".join(parts)


@dataclass(frozen=True)
class XAGeometry:
    """Pixel size at the isocentre and C-arm angles of a cine; see the module docstring."""

    pixel_spacing_mm: tuple[float, float] | None  # (row, column) at the isocentre
    spacing_source: str | None  # which rule gave pixel_spacing_mm
    imager_pixel_spacing_mm: tuple[float, float] | None  # at the detector (0018,1164)
    distance_source_to_detector_mm: float | None  # SID (0018,1110)
    distance_source_to_patient_mm: float | None  # SOD (0018,1111) or (0018,9402)
    magnification: float | None  # SID / SOD as used, or (0018,1114)
    primary_angle_deg: float | None  # first frame; + LAO, - RAO
    secondary_angle_deg: float | None  # first frame; + CRA, - CAU
    flags: list[str] = field(default_factory=list)

    @property
    def mm_per_px(self) -> float | None:
        """Mean of row and column spacing at the isocentre; None when unknown."""
        if self.pixel_spacing_mm is None:
            return None
        return (self.pixel_spacing_mm[0] + self.pixel_spacing_mm[1]) / 2

    @property
    def projection(self) -> str | None:
        """The view as a cath-lab label (``"LAO 45 CRA 20"``); None without angles."""
        return projection_label(self.primary_angle_deg, self.secondary_angle_deg)


def read_geometry(frames: Sequence[tuple[Dataset, int]]) -> XAGeometry:
    """Geometry of a cine from its first frame; positioner motion over the frames is flagged.

    Parameters
    ----------
    frames : sequence of (Dataset, int)
        For each frame of the cine in order, its instance and 0-based frame index there.

    Returns
    -------
    XAGeometry
        Never raises for missing or malformed attributes: the value is None and ``flags``
        says why.
    """
    ds = frames[0][0]
    flags: list[str] = []
    imager = _pair(frame_value(ds, 0, FRAME_PIXEL_PROPERTIES, "ImagerPixelSpacing"))
    stated = _pair(frame_value(ds, 0, PIXEL_MEASURES, "PixelSpacing"))
    calibration = str(ds.get("PixelSpacingCalibrationType", "") or "").upper()
    sid = _positive(frame_value(ds, 0, XRAY_GEOMETRY, "DistanceSourceToDetector"))
    sod = _positive(frame_value(ds, 0, XRAY_GEOMETRY, "DistanceSourceToIsocenter"))
    if sod is None:
        sod = _positive(ds.get("DistanceSourceToPatient"))
    ermf = _positive(ds.get("EstimatedRadiographicMagnificationFactor"))
    if ermf is not None and ermf < 1:
        flags.append("EstimatedRadiographicMagnificationFactor below 1; ignored")
        ermf = None
    object_spacing = _pair(
        frame_value(ds, 0, PROJECTION_CALIBRATION, "ObjectPixelSpacingInCenterOfBeam")
    )

    spacing: tuple[float, float] | None = None
    source: str | None = None
    magnification: float | None = None
    calibrated = calibration in ("GEOMETRY", "FIDUCIAL")
    if stated is not None and imager is not None:
        calibrated |= max(abs(a - b) for a, b in zip(stated, imager, strict=True)) > _SAME_SPACING
    if stated is not None and calibrated:
        spacing, source = stated, f"PixelSpacing (calibrated {calibration or 'by the modality'})"
    elif imager is not None and sid is not None and sod is not None:
        if sod > sid:
            flags.append("source-patient distance exceeds DistanceSourceToDetector; ignored")
        else:
            magnification = sid / sod
            spacing = (imager[0] / magnification, imager[1] / magnification)
            source = "ImagerPixelSpacing x DistanceSourceToPatient / DistanceSourceToDetector"
    if spacing is None and imager is not None and ermf is not None:
        magnification = ermf
        spacing = (imager[0] / ermf, imager[1] / ermf)
        source = "ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor"
    if spacing is None and object_spacing is not None:
        spacing, source = object_spacing, "ObjectPixelSpacingInCenterOfBeam"
    if spacing is None and stated is not None and imager is None and not calibration:
        spacing, source = stated, "PixelSpacing (calibration unknown)"
        flags.append("PixelSpacing present without ImagerPixelSpacing: calibration unknown")
    if spacing is None:
        if imager is None:
            flags.append("no ImagerPixelSpacing or calibrated PixelSpacing: sizes in pixels")
        else:
            flags.append(
                "no DistanceSourceToPatient/DistanceSourceToDetector or "
                "EstimatedRadiographicMagnificationFactor: sizes in pixels"
            )
    elif abs(spacing[0] - spacing[1]) > _ANISOTROPY * max(spacing):
        flags.append("pixels are not square: mm_per_px is the mean of row and column spacing")

    primary = [_angle(f, i, "PositionerPrimaryAngle") for f, i in frames]
    secondary = [_angle(f, i, "PositionerSecondaryAngle") for f, i in frames]
    if primary[0] is None:
        flags.append("no PositionerPrimaryAngle: projection unknown")
    elif secondary[0] is None:
        flags.append("no PositionerSecondaryAngle: projection without cranio-caudal angle")
    if _moved(primary) or _moved(secondary) or _moved_by_increment(ds):
        flags.append("positioner moved during the cine: projection is the first frame's")
    return XAGeometry(
        pixel_spacing_mm=spacing,
        spacing_source=source,
        imager_pixel_spacing_mm=imager,
        distance_source_to_detector_mm=sid,
        distance_source_to_patient_mm=sod,
        magnification=magnification,
        primary_angle_deg=primary[0],
        secondary_angle_deg=secondary[0],
        flags=flags,
    )


def _angle(ds: Dataset, frame: int, keyword: str) -> float | None:
    return _number(frame_value(ds, frame, POSITIONER_POSITION, keyword))


def _moved(angles: list[float | None]) -> bool:
    known = [a for a in angles if a is not None]
    return len(known) > 1 and max(known) - min(known) > _MOVING_DEG


def _moved_by_increment(ds: Dataset) -> bool:
    """Classic XA: DYNAMIC motion with per-frame angle increments (PS3.3 C.8.7.5.1.3)."""
    for keyword in ("PositionerPrimaryAngleIncrement", "PositionerSecondaryAngleIncrement"):
        value = ds.get(keyword)
        if value is None:
            continue
        items = list(value) if isinstance(value, MultiValue) else [value]
        numbers = [n for n in (_number(v) for v in items) if n is not None]
        if numbers and max(max(abs(n) for n in numbers), abs(sum(numbers))) > _MOVING_DEG:
            return True
    return False
