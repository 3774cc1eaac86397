"""XA loading: the three encodings of a cine, frame order, timing, decoding and refusals."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cardiogate_phantoms import make_xa_cine, write_series
from pydicom.tag import Tag
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from cardiogate.analyses.xa_cine import XACineError, load_xa_cine
from cardiogate.errors import CardiogateError
from xa_datasets import enhanced_xa, frames_u8, multiframe_xa, roundtrip, single_frame_xa


def test_multiframe_xa_loads_frames_times_and_geometry() -> None:
    pixels = frames_u8(5)
    cine = load_xa_cine([multiframe_xa(pixels)])
    assert cine.frames.dtype == np.float32
    np.testing.assert_array_equal(cine.frames, pixels)
    assert cine.timing_source == "FrameTime"
    np.testing.assert_allclose(cine.frame_times_ms, [0, 66.7, 133.4, 200.1, 266.8])
    assert cine.mm_per_px == pytest.approx(0.2 * 800 / 1000)
    assert cine.projection == "LAO 45 CRA 20"
    assert cine.geometry_flags == []
    assert cine.bits_stored == 8
    sop = cine.frame_sources[0][0]
    assert cine.frame_sources == [(sop, k) for k in range(1, 6)]


def test_single_frame_instances_load_in_instance_number_order() -> None:
    pixels = frames_u8(6)
    datasets = single_frame_xa(pixels)
    random.Random(3).shuffle(datasets)
    cine = load_xa_cine(datasets)
    np.testing.assert_array_equal(cine.frames, pixels)
    assert cine.timing_source == "AcquisitionTime"
    np.testing.assert_allclose(cine.frame_times_ms, np.arange(6) * 100.0)
    assert [number for _, number in cine.frame_sources] == [1] * 6
    assert len({uid for uid, _ in cine.frame_sources}) == 6


def test_single_frames_without_instance_number_order_by_acquisition_time() -> None:
    pixels = frames_u8(4)
    datasets = single_frame_xa(pixels, InstanceNumber=None)
    cine = load_xa_cine(list(reversed(datasets)))
    np.testing.assert_array_equal(cine.frames, pixels)


def test_single_frames_with_coarse_times_have_no_timing() -> None:
    datasets = single_frame_xa(frames_u8(3), AcquisitionTime="102030", ContentTime="102030")
    cine = load_xa_cine(datasets)
    assert (cine.frame_times_ms, cine.timing_source) == (None, None)


def test_enhanced_xa_takes_times_and_angles_from_functional_groups() -> None:
    pixels = frames_u8(4)
    cine = load_xa_cine([enhanced_xa(pixels, frame_times_ms=[0, 33.0, 70.0, 100.0])])
    np.testing.assert_array_equal(cine.frames, pixels)
    assert cine.timing_source == "FrameReferenceDateTime"
    np.testing.assert_allclose(cine.frame_times_ms, [0, 33.0, 70.0, 100.0])
    assert cine.projection == "RAO 30 CAU 25"  # shared Positioner Position
    assert cine.mm_per_px == pytest.approx(0.3 * 750 / 1200)
    assert cine.geometry_flags == []


def test_enhanced_xa_per_frame_angles_override_shared_and_motion_is_flagged() -> None:
    ds = enhanced_xa(frames_u8(3), primary_angles=[40.0, 42.0, 44.0])
    cine = load_xa_cine([ds])
    assert cine.projection == "LAO 40 CAU 25"
    assert any("positioner moved" in flag for flag in cine.geometry_flags)


def test_monochrome1_is_inverted_to_dark_vessels() -> None:
    pixels = frames_u8(2)
    ds = multiframe_xa(pixels, PhotometricInterpretation="MONOCHROME1", WindowCenter="100")
    ds.WindowWidth = "50"
    cine = load_xa_cine([roundtrip(ds)])
    np.testing.assert_array_equal(cine.frames, 255 - pixels.astype(np.float32))
    assert cine.photometric_interpretation == "MONOCHROME1"
    assert cine.window == (155.0, 50.0)


def test_twelve_bit_frames_keep_their_values() -> None:
    pixels = (frames_u8(3).astype(np.uint16) * 16 + 5).astype(np.uint16)
    ds = multiframe_xa(pixels, BitsStored=12, HighBit=11)
    cine = load_xa_cine([ds])
    np.testing.assert_array_equal(cine.frames, pixels)
    assert cine.bits_stored == 12


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless])
def test_compressed_cine_decodes_to_the_same_frames(syntax: str) -> None:
    pixels = frames_u8(3, rows=64, columns=48)  # JPEG 2000 needs room for its resolutions
    ds = multiframe_xa(pixels)
    ds.compress(syntax)
    compressed = roundtrip(ds)
    assert compressed.file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(load_xa_cine([compressed]).frames, pixels)


def test_files_are_read_from_paths(tmp_path: Path) -> None:
    series = make_xa_cine(4, frames=3, rows=32, columns=32)
    cine = load_xa_cine(write_series(series, tmp_path))
    ds = series.datasets[0]
    assert cine.frames.shape == (3, 32, 32)
    expected = float(ds.ImagerPixelSpacing[0]) * ds.DistanceSourceToPatient
    assert cine.mm_per_px == pytest.approx(expected / ds.DistanceSourceToDetector)


@pytest.mark.parametrize(
    ("attributes", "source", "times"),
    [
        ({"FrameTime": "50"}, "FrameTime", [0, 50, 100, 150]),
        (
            {"FrameIncrementPointer": Tag("FrameTimeVector"), "FrameTimeVector": [0, 30, 40, 30]},
            "FrameTimeVector",
            [0, 30, 70, 100],
        ),
        ({"FrameTime": None, "CineRate": 25}, "CineRate", [0, 40, 80, 120]),
        (
            {"FrameTime": None, "RecommendedDisplayFrameRate": 10},
            "RecommendedDisplayFrameRate",
            [0, 100, 200, 300],
        ),
        ({"FrameTime": "0"}, None, None),
        ({"FrameTime": None, "FrameIncrementPointer": None}, None, None),
    ],
)
def test_frame_timing_variants(
    attributes: dict[str, Any], source: str | None, times: list[float] | None
) -> None:
    cine = load_xa_cine([multiframe_xa(frames_u8(4), **attributes)])
    assert cine.timing_source == source
    if times is None:
        assert cine.frame_times_ms is None
    else:
        np.testing.assert_allclose(cine.frame_times_ms, times)


def test_instances_of_two_series_are_refused_without_patient_identifiers() -> None:
    datasets = single_frame_xa(frames_u8(2)) + single_frame_xa(frames_u8(2), series="b")
    with pytest.raises(XACineError, match="instances from 2 series") as caught:
        load_xa_cine(datasets)
    assert isinstance(caught.value, CardiogateError)
    assert str(datasets[0].PatientID) not in str(caught.value)
    assert "SYNTHETIC" not in str(caught.value)


def test_mixed_matrix_sizes_are_refused() -> None:
    datasets = single_frame_xa(frames_u8(2)) + single_frame_xa(frames_u8(1, rows=8))
    with pytest.raises(XACineError, match="mixed matrix sizes"):
        load_xa_cine(datasets)


def test_two_multiframe_runs_are_refused() -> None:
    with pytest.raises(XACineError, match="multi-frame"):
        load_xa_cine([multiframe_xa(frames_u8(3)), multiframe_xa(frames_u8(3))])


def test_other_sop_classes_are_refused() -> None:
    ds = multiframe_xa(frames_u8(2), SOPClassUID="1.2.840.10008.5.1.4.1.1.2")
    with pytest.raises(XACineError, match="not \\(Enhanced\\) XA"):
        load_xa_cine([ds])


def test_undecodable_pixel_data_is_refused_with_reason() -> None:
    ds = multiframe_xa(frames_u8(2))
    ds.compress(RLELossless)
    ds.PixelData = b"\xfe\xff\x00\xe0\x00\x00\x00\x00" + b"\x00" * 16  # not RLE
    with pytest.raises(XACineError, match="cannot be decoded"):
        load_xa_cine([roundtrip(ds)])


def test_no_instances_is_refused() -> None:
    with pytest.raises(XACineError, match="no instances"):
        load_xa_cine([])


def test_a_file_that_is_not_dicom_is_refused_without_its_name(tmp_path: Path) -> None:
    path = tmp_path / "DOE^JOHN.dcm"
    path.write_bytes(b"not dicom at all")
    with pytest.raises(XACineError, match="source 0 cannot be read as DICOM") as caught:
        load_xa_cine([path])
    assert "DOE" not in str(caught.value)
