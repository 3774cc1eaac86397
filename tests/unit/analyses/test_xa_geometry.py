"""XA geometry: pixel size at the isocentre by hand-computed cases, view labels, flags."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from cardiogate.analyses.xa_geometry import XAGeometry, projection_label, read_geometry
from xa_datasets import enhanced_xa, frames_u8, multiframe_xa, roundtrip


def _geometry(**attributes: Any) -> XAGeometry:
    ds = multiframe_xa(frames_u8(2), **attributes)
    return read_geometry([(ds, 0), (ds, 1)])


def test_isocentre_spacing_is_detector_spacing_times_sod_over_sid() -> None:
    geometry = _geometry(ImagerPixelSpacing=["0.2", "0.2"])  # SID 1000, SOD 800
    assert geometry.pixel_spacing_mm == pytest.approx((0.16, 0.16))
    assert geometry.magnification == pytest.approx(1.25)
    assert geometry.spacing_source is not None
    assert geometry.spacing_source.startswith("ImagerPixelSpacing x")
    assert geometry.flags == []


def test_rectangular_detector_pixels_keep_row_and_column() -> None:
    geometry = _geometry(
        ImagerPixelSpacing=["0.3", "0.15"],
        DistanceSourceToDetector="1200",
        DistanceSourceToPatient="900",
    )
    assert geometry.pixel_spacing_mm == pytest.approx((0.225, 0.1125))
    assert geometry.mm_per_px == pytest.approx((0.225 + 0.1125) / 2)
    assert any("not square" in flag for flag in geometry.flags)


def test_magnification_factor_when_distances_are_missing() -> None:
    geometry = _geometry(
        DistanceSourceToPatient=None, EstimatedRadiographicMagnificationFactor="1.6"
    )
    assert geometry.mm_per_px == pytest.approx(0.2 / 1.6)
    assert geometry.spacing_source == (
        "ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor"
    )


def test_distances_win_over_magnification_factor() -> None:
    geometry = _geometry(EstimatedRadiographicMagnificationFactor="2.0")
    assert geometry.mm_per_px == pytest.approx(0.16)


def test_calibrated_pixel_spacing_is_used_as_is() -> None:
    geometry = _geometry(PixelSpacing=["0.15", "0.15"])  # differs from ImagerPixelSpacing 0.2
    assert geometry.mm_per_px == pytest.approx(0.15)
    assert geometry.spacing_source == "PixelSpacing (calibrated by the modality)"


def test_calibration_type_marks_pixel_spacing_as_calibrated() -> None:
    geometry = _geometry(
        PixelSpacing=["0.2", "0.2"],
        PixelSpacingCalibrationType="FIDUCIAL",
        PixelSpacingCalibrationDescription="catheter",
    )
    assert geometry.mm_per_px == pytest.approx(0.2)
    assert geometry.spacing_source == "PixelSpacing (calibrated FIDUCIAL)"


def test_pixel_spacing_equal_to_detector_spacing_is_not_a_calibration() -> None:
    geometry = _geometry(PixelSpacing=["0.2", "0.2"])
    assert geometry.mm_per_px == pytest.approx(0.16)


def test_pixel_spacing_alone_is_used_and_flagged() -> None:
    geometry = _geometry(PixelSpacing=["0.25", "0.25"], ImagerPixelSpacing=None)
    assert geometry.mm_per_px == pytest.approx(0.25)
    assert any("calibration unknown" in flag for flag in geometry.flags)


@pytest.mark.parametrize(
    ("attributes", "flag"),
    [
        ({"ImagerPixelSpacing": None}, "no ImagerPixelSpacing"),
        ({"DistanceSourceToPatient": None}, "no DistanceSourceToPatient"),
        ({"DistanceSourceToDetector": None}, "no DistanceSourceToPatient"),
        ({"DistanceSourceToPatient": "0"}, "no DistanceSourceToPatient"),
        ({"DistanceSourceToPatient": "1500"}, "exceeds DistanceSourceToDetector"),
        (
            {"DistanceSourceToPatient": None, "EstimatedRadiographicMagnificationFactor": "0.8"},
            "below 1",
        ),
    ],
)
def test_missing_geometry_gives_pixels_and_a_flag(attributes: dict[str, Any], flag: str) -> None:
    geometry = _geometry(**attributes)
    assert geometry.pixel_spacing_mm is None
    assert geometry.mm_per_px is None
    assert any(flag in f for f in geometry.flags), geometry.flags


def test_enhanced_object_pixel_spacing_when_detector_spacing_is_missing() -> None:
    ds = enhanced_xa(frames_u8(2))
    shared = ds.SharedFunctionalGroupsSequence[0]
    del shared.FramePixelDataPropertiesSequence
    calibration = Dataset()
    calibration.ObjectPixelSpacingInCenterOfBeam = [0.21, 0.21]
    shared.ProjectionPixelCalibrationSequence = [calibration]
    ds = roundtrip(ds)
    geometry = read_geometry([(ds, 0), (ds, 1)])
    assert geometry.mm_per_px == pytest.approx(0.21)
    assert geometry.spacing_source == "ObjectPixelSpacingInCenterOfBeam"


@pytest.mark.parametrize(
    ("primary", "secondary", "label"),
    [
        (45.0, 20.0, "LAO 45 CRA 20"),
        (-30.0, -25.0, "RAO 30 CAU 25"),
        (-30.0, 25.0, "RAO 30 CRA 25"),
        (50.0, -25.0, "LAO 50 CAU 25"),
        (0.0, 0.0, "AP"),
        (0.3, -0.2, "AP"),
        (0.0, 30.0, "AP CRA 30"),
        (30.0, 0.0, "LAO 30"),
        (-29.6, 2.6, "RAO 30 CRA 3"),
        (30.0, None, "LAO 30"),
        (None, 20.0, None),
    ],
)
def test_projection_labels_follow_the_standard_signs(
    primary: float | None, secondary: float | None, label: str | None
) -> None:
    assert projection_label(primary, secondary) == label


def test_angles_from_the_dataset_make_the_label() -> None:
    geometry = _geometry(PositionerPrimaryAngle="-30", PositionerSecondaryAngle="-25")
    assert (geometry.primary_angle_deg, geometry.secondary_angle_deg) == (-30.0, -25.0)
    assert geometry.projection == "RAO 30 CAU 25"


def test_missing_angles_are_flagged() -> None:
    geometry = _geometry(PositionerPrimaryAngle=None, PositionerSecondaryAngle=None)
    assert geometry.projection is None
    assert any("no PositionerPrimaryAngle" in flag for flag in geometry.flags)


def test_dynamic_positioner_is_flagged() -> None:
    geometry = _geometry(
        PositionerMotion="DYNAMIC",
        PositionerPrimaryAngleIncrement=["0", "5"],
        PositionerSecondaryAngleIncrement=["0", "0"],
    )
    assert any("positioner moved" in flag for flag in geometry.flags)
