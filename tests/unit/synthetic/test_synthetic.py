"""Tests for the synthetic CT / XA generators."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from cardiogate_phantoms import (
    SyntheticSeries,
    make_ct_series,
    make_xa_cine,
    write_series,
)
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

from peers import dciodvfy

CT_SOP = "1.2.840.10008.5.1.4.1.1.2"
XA_SOP = "1.2.840.10008.5.1.4.1.1.12.1"


def _small_ct(seed: int, **kw: object) -> SyntheticSeries:
    return make_ct_series(seed, n_slices=6, rows=64, columns=64, **kw)  # type: ignore[arg-type]


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_ct_same_seed_is_deterministic() -> None:
    a, b = _small_ct(7), _small_ct(7)
    assert [d.SOPInstanceUID for d in a.datasets] == [d.SOPInstanceUID for d in b.datasets]
    assert a.datasets[0].SeriesInstanceUID == b.datasets[0].SeriesInstanceUID
    for da, db in zip(a.datasets, b.datasets, strict=True):
        assert da.PixelData == db.PixelData
    assert json.dumps(a.truth, sort_keys=True) == json.dumps(b.truth, sort_keys=True)


def test_ct_different_seed_differs() -> None:
    a, b = _small_ct(7), _small_ct(8)
    assert a.datasets[0].StudyInstanceUID != b.datasets[0].StudyInstanceUID
    assert a.datasets[0].SOPInstanceUID != b.datasets[0].SOPInstanceUID
    assert a.datasets[0].PixelData != b.datasets[0].PixelData


def test_ct_uids_unique_within_series() -> None:
    s = _small_ct(3)
    uids = [d.SOPInstanceUID for d in s.datasets]
    assert len(set(uids)) == len(uids)
    assert all(len(u) <= 64 for u in uids)


def test_ct_headers() -> None:
    s = make_ct_series(11, n_slices=3, rows=48, columns=40, slice_thickness_mm=2.5)
    ds = s.datasets[0]
    assert ds.SOPClassUID == CT_SOP
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.Modality == "CT"
    assert (ds.Rows, ds.Columns) == (48, 40)
    assert ds.BitsAllocated == 16
    assert float(ds.RescaleSlope) == 1.0
    assert float(ds.RescaleIntercept) == -1024.0
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert float(ds.SliceThickness) == 2.5
    assert ds.SeriesDescription == "Calcium Score 2.5mm"
    assert ds.BodyPartExamined == "HEART"
    assert ds.Manufacturer == "cardiogate-synthetic"
    assert str(ds.PatientName) == "SYNTHETIC^PHANTOM^11"
    assert ds.PatientID == "SYN11"
    assert "ContrastBolusAgent" not in ds
    ps = float(ds.PixelSpacing[0])
    assert 0.3 <= ps <= 0.8
    assert s.truth["pixel_spacing_mm"] == ps
    assert ds.pixel_array.shape == (48, 40)


def test_ct_contrast_and_explicit_spacing() -> None:
    s = make_ct_series(2, n_slices=2, rows=32, columns=32, pixel_spacing_mm=0.5, contrast=True)
    ds = s.datasets[0]
    assert ds.SeriesDescription.startswith("CTA")
    assert ds.ContrastBolusAgent
    assert [float(v) for v in ds.PixelSpacing] == [0.5, 0.5]
    assert s.truth["contrast"] is True


def test_ct_pixel_representation_varies_between_seeds() -> None:
    reps = {
        make_ct_series(seed, n_slices=1, rows=8, columns=8).datasets[0].PixelRepresentation
        for seed in range(12)
    }
    assert reps == {0, 1}


def test_ct_positions_step_by_increment() -> None:
    s = make_ct_series(5, n_slices=8, rows=32, columns=32, slice_thickness_mm=1.5)
    inc = s.truth["slice_increment_mm"]
    z = np.array([float(d.ImagePositionPatient[2]) for d in s.datasets])
    np.testing.assert_allclose(np.abs(np.diff(z)), inc, atol=1e-6)
    assert len(set(np.sign(np.diff(z)))) == 1
    np.testing.assert_allclose([float(d.SliceLocation) for d in s.datasets], z, atol=1e-6)
    assert [d.InstanceNumber for d in s.datasets] == list(range(1, 9))
    xy = {tuple(float(v) for v in d.ImagePositionPatient[:2]) for d in s.datasets}
    assert len(xy) == 1


def test_ct_phantom_values_plausible() -> None:
    s = make_ct_series(4, n_slices=40, rows=128, columns=128, pixel_spacing_mm=3.0)
    mid = _hu(s.datasets[20])
    assert abs(mid[:4, :4].mean() + 1000) < 40  # air in the corner
    assert mid.max() > 300  # bone
    assert (mid < -700).mean() > 0.1
    for plaque in s.truth["plaques"]:
        assert 130 <= plaque["peak_hu"] <= 1200


def test_write_series_roundtrip(tmp_path: Path) -> None:
    s = _small_ct(9)
    paths = write_series(s, tmp_path / "ct")
    assert len(paths) == len(s.datasets)
    assert all(p.suffix == ".dcm" and p.exists() for p in paths)
    truth = json.loads((tmp_path / "ct" / "truth.json").read_text())
    assert truth == json.loads(json.dumps(s.truth))
    for path, orig in zip(paths, s.datasets, strict=True):
        ds = pydicom.dcmread(path)
        assert ds.preamble is not None
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.SOPInstanceUID == orig.SOPInstanceUID
        assert ds.StudyInstanceUID == truth["study_instance_uid"]
        assert ds.SeriesInstanceUID == truth["series_instance_uid"]
        assert ds.ImagePositionPatient == orig.ImagePositionPatient
        np.testing.assert_array_equal(ds.pixel_array, orig.pixel_array)


def test_xa_cine(tmp_path: Path) -> None:
    s = make_xa_cine(21, frames=12, rows=96, columns=128)
    assert len(s.datasets) == 1
    (path,) = write_series(s, tmp_path / "xa")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == XA_SOP
    assert ds.Modality == "XA"
    assert int(ds.NumberOfFrames) == 12
    arr = ds.pixel_array
    assert arr.shape == (int(ds.NumberOfFrames), ds.Rows, ds.Columns) == (12, 96, 128)
    assert arr.dtype == np.uint8
    assert (ds.BitsAllocated, ds.BitsStored, ds.PhotometricInterpretation) == (8, 8, "MONOCHROME2")
    assert ds.FrameIncrementPointer == Tag("FrameTime")
    assert float(ds.FrameTime) > 0
    # the detector pitch is drawn for 512 x 512 and scales with the matrix (same field of view)
    spacing = float(ds.ImagerPixelSpacing[0])
    assert 0.25 <= spacing * 96 / 512 <= 0.35
    magnification = float(ds.DistanceSourceToDetector) / float(ds.DistanceSourceToPatient)
    assert s.truth["pixel_spacing_isocentre_mm"] == pytest.approx(spacing / magnification, rel=1e-4)
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    assert ds.SeriesDescription.startswith("Coronary ")
    # contrast washes in: the darkest pixels are darker at peak opacification than at first
    peak = s.truth["peak_frame"]
    assert np.percentile(arr[peak], 1) < np.percentile(arr[0], 1)
    assert s.truth["opacification"][peak] > s.truth["opacification"][0]


def test_xa_determinism() -> None:
    a, b, c = (make_xa_cine(seed, frames=4, rows=64, columns=64) for seed in (1, 1, 2))
    assert a.datasets[0].SOPInstanceUID == b.datasets[0].SOPInstanceUID
    assert a.datasets[0].PixelData == b.datasets[0].PixelData
    assert a.datasets[0].SOPInstanceUID != c.datasets[0].SOPInstanceUID
    assert a.datasets[0].PixelData != c.datasets[0].PixelData


def test_study_shared_by_seed_and_override() -> None:
    ct, xa = _small_ct(13), make_xa_cine(13, frames=2, rows=32, columns=32)
    assert ct.datasets[0].StudyInstanceUID == xa.datasets[0].StudyInstanceUID
    assert ct.datasets[0].SeriesInstanceUID != xa.datasets[0].SeriesInstanceUID
    assert ct.datasets[0].PatientID == xa.datasets[0].PatientID
    uid = "1.2.826.0.1.3680043.8.498.1234"
    ct2 = _small_ct(13, study_instance_uid=uid)
    assert {d.StudyInstanceUID for d in ct2.datasets} == {uid}
    assert ct2.truth["study_instance_uid"] == uid


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_invalid_seed(seed: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        make_ct_series(seed, n_slices=1, rows=8, columns=8)  # type: ignore[arg-type]


def test_dciodvfy_no_errors(tmp_path: Path) -> None:
    series = {
        "ct_unsigned": next(
            s
            for s in (make_ct_series(k, n_slices=2, rows=64, columns=64) for k in range(20))
            if s.datasets[0].PixelRepresentation == 0
        ),
        "ct_signed": next(
            s
            for s in (make_ct_series(k, n_slices=2, rows=64, columns=64) for k in range(20))
            if s.datasets[0].PixelRepresentation == 1
        ),
        "cta": make_ct_series(3, n_slices=2, rows=64, columns=64, contrast=True),
        "xa": make_xa_cine(3, frames=5, rows=64, columns=64),
    }
    for name, s in series.items():
        path = write_series(s, tmp_path / name)[0]
        lines = dciodvfy(path)
        errors = [line for line in lines if "Error" in line]
        assert not errors, f"{name}: {lines}"
