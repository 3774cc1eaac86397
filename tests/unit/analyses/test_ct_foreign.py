"""CT series as foreign scanners and archives send them: every transfer syntax, stored
values in 10, 12 or 16 bits, signed or not, MONOCHROME1, other rescales, slices in any
order, tilted gantries, Enhanced CT. Each loads to the right HU or is refused with a reason
that names the attribute and the count of slices it concerns."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cardiogate_phantoms import make_ct_series
from foreign_dicom import SYNTAXES, Syntax, assert_close, written
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless, JPEG2000MCLossless, JPEGLSLossless, RLELossless

from cardiogate.analyses.ct_volume import SeriesGeometryError, load_ct_series
from xa_datasets import roundtrip

SLICES, SIDE = 4, 48


def _signed() -> list[Dataset]:
    """The phantom as written (16-bit signed stored values, intercept -1024), with a field
    of view wide enough to hold air."""
    datasets = make_ct_series(
        5, n_slices=SLICES, rows=SIDE, columns=SIDE, pixel_spacing_mm=8.0
    ).datasets
    assert (datasets[0].BitsStored, datasets[0].PixelRepresentation) == (16, 1)
    return datasets


def _hu(datasets: list[Dataset]) -> np.ndarray[Any, Any]:
    """The truth, from the phantom's own stored values and rescale, in the loader's order
    (ascending z: the phantom writes descending positions)."""
    by_z = sorted(datasets, key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack(
        [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in by_z]
    ).astype(np.float32)


def _unsigned(bits: int = 12) -> list[Dataset]:
    """The same HU stored unsigned in ``bits`` of 16, intercept -1024 (many scanners)."""
    datasets = _signed()
    for ds in datasets:
        stored = np.clip(ds.pixel_array.astype(np.int32), 0, 2**bits - 1).astype(np.uint16)
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
        ds.PixelData = stored.tobytes()
    return datasets


def _files(datasets: list[Dataset], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, ds in enumerate(datasets):
        paths.append(folder / f"{index}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


# dcmtk's lossy JPEG maps 16-bit values to 8 or 12 bits: those run on 12-bit values only
CASES = [
    (syntax, signed)
    for syntax in SYNTAXES
    for signed in (True, False)
    if not (signed and (syntax.unsigned_only or not syntax.lossless))
]


@pytest.mark.parametrize(
    ("syntax", "signed"),
    CASES,
    ids=[f"{s.name}-{'signed 16' if signed else 'unsigned 12'}" for s, signed in CASES],
)
def test_every_transfer_syntax_gives_the_same_hu(
    syntax: Syntax, signed: bool, tmp_path: Path
) -> None:
    datasets = _signed() if signed else _unsigned()
    paths = written(_files(datasets, tmp_path / "in"), syntax, tmp_path / "out")
    random.Random(2).shuffle(paths)
    assert_close(load_ct_series(paths).hu, _hu(datasets), syntax)


def test_monochrome1_gives_the_same_hu() -> None:
    datasets = _signed()
    for ds in datasets:
        ds.PhotometricInterpretation = "MONOCHROME1"
    np.testing.assert_array_equal(load_ct_series(datasets).hu, _hu(_signed()))


def test_unused_high_bits_are_ignored_and_signs_extended() -> None:
    """BitsStored 10 or 12 of 16: what lies above the high bit is not part of the value."""
    ten = _unsigned(bits=10)
    want = _hu(ten)
    for ds in ten:  # an overlay or garbage above bit 9
        ds.PixelData = (np.frombuffer(ds.PixelData, np.uint16) | 0xF000).astype(np.uint16).tobytes()
    np.testing.assert_array_equal(load_ct_series(ten).hu, want)

    twelve = _signed()
    for ds in twelve:  # 12-bit two's complement, not sign-extended into bits 12-15
        values = np.clip(ds.pixel_array.astype(np.int32) - 1024, -2048, 2047)
        ds.BitsStored, ds.HighBit, ds.RescaleIntercept = 12, 11, 0
        ds.PixelData = (values & 0x0FFF).astype(np.uint16).tobytes()
    np.testing.assert_array_equal(load_ct_series(twelve).hu, np.clip(_hu(_signed()), -2048, 2047))


def test_a_slope_other_than_one_is_applied() -> None:
    datasets = _signed()
    for ds in datasets:
        ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-512"
    want = (_hu(_signed()) + 1024) * 0.5 - 512
    np.testing.assert_allclose(load_ct_series(datasets).hu, want)


def test_absent_rescale_is_identity_when_the_values_are_hu() -> None:
    datasets = _signed()
    for ds in datasets:  # HU stored as such; they include air (below -500)
        ds.PixelData = (ds.pixel_array.astype(np.int16) - 1024).astype(np.int16).tobytes()
        del ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType
    np.testing.assert_array_equal(load_ct_series(datasets).hu, _hu(_signed()))


def test_absent_rescale_of_values_that_cannot_be_hu_is_refused() -> None:
    datasets = _unsigned()
    for ds in datasets:
        del ds.RescaleIntercept
    with pytest.raises(
        SeriesGeometryError, match=f"RescaleIntercept absent in {SLICES} of {SLICES}"
    ):
        load_ct_series(datasets)


def test_a_rescale_type_other_than_hu_is_refused_with_the_count() -> None:
    datasets = _signed()
    for ds in datasets[:2]:
        ds.RescaleType = "US"
    with pytest.raises(SeriesGeometryError, match=f"RescaleType US, not HU in 2 of {SLICES}"):
        load_ct_series(datasets)


def test_descending_positions_along_a_reversed_normal_load_in_order() -> None:
    datasets = _signed()
    for ds in datasets:  # column direction towards the feet: the normal points down
        ds.ImageOrientationPatient = [1, 0, 0, 0, -1, 0]
    random.Random(5).shuffle(datasets)
    volume = load_ct_series(datasets)
    assert np.all(np.diff(volume.positions_mm[:, 2]) < 0)  # ascending along the normal
    np.testing.assert_array_equal(volume.hu, _hu(_signed())[::-1])


def test_declared_gantry_tilt_is_refused() -> None:
    datasets = _signed()
    for ds in datasets:
        ds.GantryDetectorTilt = "12"
    with pytest.raises(SeriesGeometryError, match="gantry tilt 12 degrees"):
        load_ct_series(datasets)


def test_positions_stepping_off_the_slice_normal_are_refused() -> None:
    """A tilted acquisition whose tilt is only in the geometry: the image plane leans by
    12 degrees while the slices step along the table."""
    datasets = _signed()
    tilt = np.radians(12)
    for ds in datasets:
        ds.ImageOrientationPatient = [1, 0, 0, 0, float(np.cos(tilt)), float(np.sin(tilt))]
    with pytest.raises(SeriesGeometryError, match=r"12\.0 degrees off the slice normal"):
        load_ct_series(datasets)


def _enhanced(datasets: list[Dataset], syntax: str | None = None) -> Dataset:
    """One Enhanced CT Image instance (PS3.3 A.38) holding ``datasets`` as frames, in the
    given order, with shared orientation, spacing and rescale and per-frame positions."""
    first = datasets[0]
    ds = copy.deepcopy(first)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.NumberOfFrames = len(datasets)
    shared = Dataset()
    shared.PixelMeasuresSequence = [Dataset()]
    shared.PixelMeasuresSequence[0].PixelSpacing = first.PixelSpacing
    shared.PixelMeasuresSequence[0].SliceThickness = first.SliceThickness
    shared.PlaneOrientationSequence = [Dataset()]
    shared.PlaneOrientationSequence[0].ImageOrientationPatient = first.ImageOrientationPatient
    shared.PixelValueTransformationSequence = [Dataset()]
    transform = shared.PixelValueTransformationSequence[0]
    transform.RescaleSlope, transform.RescaleIntercept = "1", first.RescaleIntercept
    transform.RescaleType = "HU"
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = []
    for frame in datasets:
        group = Dataset()
        group.PlanePositionSequence = [Dataset()]
        group.PlanePositionSequence[0].ImagePositionPatient = frame.ImagePositionPatient
        ds.PerFrameFunctionalGroupsSequence.append(group)
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        delattr(ds, keyword)
    del ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType
    ds.PixelData = b"".join(frame.PixelData for frame in datasets)
    if syntax is not None:
        ds.compress(syntax)
    return roundtrip(ds)


@pytest.mark.parametrize("syntax", [None, JPEGLSLossless], ids=["native", "jpeg-ls"])
def test_enhanced_ct_frames_are_slices(syntax: str | None) -> None:
    datasets = _signed()
    shuffled = datasets[:]
    random.Random(3).shuffle(shuffled)
    enhanced = _enhanced(shuffled, syntax)
    volume = load_ct_series([enhanced])
    np.testing.assert_array_equal(volume.hu, _hu(datasets))
    assert volume.sop_instance_uids == [enhanced.SOPInstanceUID] * SLICES
    by_z = sorted(range(SLICES), key=lambda k: float(shuffled[k].ImagePositionPatient[2]))
    assert volume.frame_numbers == [k + 1 for k in by_z]
    assert volume.slice_thickness_mm == pytest.approx(float(datasets[0].SliceThickness))


def test_enhanced_ct_without_a_frame_position_names_the_attribute() -> None:
    enhanced = _enhanced(_signed())
    del enhanced.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence
    with pytest.raises(SeriesGeometryError, match=f"ImagePositionPatient absent in 1 of {SLICES}"):
        load_ct_series([enhanced])


def test_a_multiframe_ct_image_without_frame_positions_is_refused() -> None:
    datasets = _signed()
    datasets[0].NumberOfFrames = 2
    with pytest.raises(SeriesGeometryError, match="NumberOfFrames above 1 without per-frame"):
        load_ct_series(datasets)


@pytest.mark.parametrize(
    "keyword", ["PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient", "PixelData"]
)
def test_an_attribute_missing_in_several_slices_is_counted(keyword: str) -> None:
    datasets = _signed()
    for ds in datasets[1:4]:
        delattr(ds, keyword)
    with pytest.raises(SeriesGeometryError) as caught:
        load_ct_series(datasets)
    reason = str(caught.value)
    assert reason.startswith(f"{keyword} absent in 3 of {SLICES} slices (first: instance ")
    assert str(datasets[1].SOPInstanceUID) in reason


def test_several_defects_are_all_named() -> None:
    datasets = _signed()
    del datasets[0].PixelSpacing
    datasets[2].ImageOrientationPatient = ["1", "0", "0", "0", "1"]
    reason = _refusal(datasets)
    assert f"PixelSpacing absent in 1 of {SLICES}" in reason
    assert f"ImageOrientationPatient unusable in 1 of {SLICES}" in reason


def _refusal(sources: list[Dataset] | list[Path]) -> str:
    with pytest.raises(SeriesGeometryError) as caught:
        load_ct_series(sources)
    return str(caught.value)


def test_undecodable_slices_are_counted_without_exception_names() -> None:
    datasets = _signed()
    for ds in datasets[:2]:
        ds.compress(RLELossless)
        ds.PixelData = (
            b"\xfe\xff\x00\xe0\x00\x00\x00\x00" + b"\xfe\xff\x00\xe0\x10\x00\x00\x00" + bytes(16)
        )
    reason = _refusal(datasets)
    assert reason.startswith(f"PixelData cannot be decoded in 2 of {SLICES} slices")
    assert "RLE Lossless" in reason
    assert "Error" not in reason
    assert "Exception" not in reason


@pytest.mark.parametrize(
    ("uid", "said"),
    [
        (JPEG2000MCLossless, f"no decoder here in {SLICES} of {SLICES}"),
        ("1.2.826.0.1.3680043.2.1143.9", "not a known transfer syntax"),
    ],
)
def test_a_transfer_syntax_that_cannot_be_decoded_is_named(uid: str, said: str) -> None:
    datasets = _signed()
    for ds in datasets:
        ds.compress(JPEG2000Lossless)
        ds.file_meta.TransferSyntaxUID = uid
    reason = _refusal(datasets)
    assert reason.startswith("TransferSyntaxUID ")
    assert said in reason
    assert uid in reason


def test_unreadable_files_are_counted_without_their_names(tmp_path: Path) -> None:
    paths = _files(_signed(), tmp_path)
    for path in paths[1:3]:
        path.write_bytes(b"DOE^JOHN is not DICOM")
    reason = _refusal(paths)
    assert reason == f"2 of {SLICES} sources cannot be read as DICOM (first: source 1)"
