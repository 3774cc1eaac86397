"""CT loading: slice order from geometry, increment, refusals with reasons, HU, decoding."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from cardiogate_phantoms import make_ct_series, write_series
from pydicom.dataset import Dataset
from pydicom.uid import JPEGLSLossless, RLELossless

from cardiogate.analyses.ct_volume import SeriesGeometryError, load_ct_series


def _series(n: int = 6, thickness: float = 3.0) -> list[Dataset]:
    return make_ct_series(5, n_slices=n, rows=24, columns=24, slice_thickness_mm=thickness).datasets


def _z(ds: Dataset) -> float:
    return float(ds.ImagePositionPatient[2])


def test_shuffled_files_load_in_slice_normal_order(tmp_path: Path) -> None:
    datasets = _series()
    paths = write_series(make_ct_series(5, n_slices=6, rows=24, columns=24), tmp_path)
    random.Random(1).shuffle(paths)
    volume = load_ct_series(paths)
    assert volume.hu.shape == (6, 24, 24)
    assert volume.slice_increment_mm == pytest.approx(3.0)
    assert np.all(np.diff(volume.positions_mm[:, 2]) > 0)  # ascending along +z (normal)
    by_z = sorted(datasets, key=_z)
    for index, ds in enumerate(by_z):
        expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(volume.hu[index], expected)
        assert volume.sop_instance_uids[index] == ds.SOPInstanceUID


def test_increment_of_overlapping_reconstruction() -> None:
    datasets = _series(n=5, thickness=3.0)
    start = _z(datasets[0])
    for i, ds in enumerate(datasets):  # 3 mm slices every 1.5 mm
        ds.ImagePositionPatient = [
            ds.ImagePositionPatient[0],
            ds.ImagePositionPatient[1],
            start - 1.5 * i,
        ]
    volume = load_ct_series(datasets)
    assert (volume.slice_increment_mm, volume.slice_thickness_mm) == (pytest.approx(1.5), 3.0)


def test_gap_is_refused() -> None:
    datasets = _series()
    del datasets[3]
    with pytest.raises(SeriesGeometryError, match="gap in slice positions"):
        load_ct_series(datasets)


def test_duplicate_positions_are_refused() -> None:
    datasets = _series()
    datasets[2].ImagePositionPatient = datasets[1].ImagePositionPatient
    datasets[3].ImagePositionPatient = datasets[1].ImagePositionPatient
    datasets[4].ImagePositionPatient = datasets[1].ImagePositionPatient
    with pytest.raises(SeriesGeometryError):
        load_ct_series(datasets)


def test_mixed_orientation_is_refused() -> None:
    datasets = _series()
    datasets[2].ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    with pytest.raises(SeriesGeometryError, match="mixed ImageOrientationPatient"):
        load_ct_series(datasets)


def test_mixed_pixel_spacing_is_refused() -> None:
    datasets = _series()
    datasets[1].PixelSpacing = [0.9, 0.9]
    with pytest.raises(SeriesGeometryError, match="mixed PixelSpacing"):
        load_ct_series(datasets)


def test_missing_position_is_refused() -> None:
    datasets = _series()
    del datasets[0].ImagePositionPatient
    with pytest.raises(SeriesGeometryError, match="ImagePositionPatient"):
        load_ct_series(datasets)


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless])
def test_compressed_slices_decode_to_the_same_hu(syntax: str) -> None:
    plain = load_ct_series(_series())
    compressed = _series()
    for ds in compressed:
        ds.compress(syntax)
    volume = load_ct_series(compressed)
    np.testing.assert_array_equal(volume.hu, plain.hu)


def test_undecodable_pixel_data_is_refused_with_reason() -> None:
    datasets = _series()
    datasets[0].compress(RLELossless)
    datasets[0].PixelData = b"\xfe\xff\x00\xe0\x00\x00\x00\x00" + b"\x00" * 16  # not RLE
    with pytest.raises(SeriesGeometryError, match="cannot be decoded"):
        load_ct_series(datasets)


def test_mass_factor_and_patient_coordinates() -> None:
    datasets = _series()
    for ds in datasets:
        ds.CalciumScoringMassFactorPatient = 0.79
    volume = load_ct_series(datasets)
    assert volume.calcium_mass_factor == pytest.approx(0.79)
    first = sorted(datasets, key=_z)[0]
    x0, y0, z0 = (float(v) for v in first.ImagePositionPatient)
    row_mm, col_mm = volume.pixel_spacing_mm
    assert volume.to_patient_mm(0, 2, 3) == pytest.approx((x0 + 3 * col_mm, y0 + 2 * row_mm, z0))
    assert volume.to_patient_mm(1.5, 0, 0)[2] == pytest.approx(z0 + 1.5 * 3.0)
