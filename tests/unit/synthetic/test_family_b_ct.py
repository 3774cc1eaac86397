"""Phantom family B, cardiac CT: independence from family A, determinism, its calcium truth
against the service's scoring, the confounders it places, and its DICOM."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from cardiogate_phantoms import make_ct_series, write_series
from cardiogate_phantoms.family_b import (
    NONCORONARY_KINDS,
    CTPhantomB,
    make_ct_phantom_b,
    make_ct_series_b,
)
from scipy import ndimage

from cardiogate.analyses.ct_volume import load_ct_series
from cardiogate.tasks.calcium.scoring import agatston_scores, classic_category
from peers import dciodvfy

FAMILY_B = Path(__import__("cardiogate_phantoms.family_b").family_b.__file__).parent
# 173 mm field of view at 0.9 mm, 3 mm slices over the whole tree: ~40 slices of 192 x 192
SMALL: dict[str, Any] = {
    "rows": 192,
    "columns": 192,
    "pixel_spacing_mm": 0.9,
    "slice_thickness_mm": 3.0,
}
ARTERIES = ("LM", "LAD", "LCX", "RCA")


def _small(seed: int, **kw: Any) -> CTPhantomB:
    return make_ct_phantom_b(seed, **{**SMALL, **kw})


def test_ct_modules_import_nothing_of_family_a() -> None:
    """Family B's CT code may use ``_common`` (DICOM helpers) and itself, nothing else of
    the phantoms, and nothing of the service."""
    modules = sorted(FAMILY_B.glob("ct*.py")) + [FAMILY_B / "__init__.py"]
    assert len(modules) >= 5
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                name = node.module or ""
                if node.level == 1:  # family B's own modules
                    continue
                if node.level == 2:
                    assert name == "_common", f"{path.name} imports ..{name}"
                else:
                    assert node.level == 0, f"{path.name}: relative import of level {node.level}"
                    assert not name.startswith("cardiogate"), f"{path.name} imports {name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("cardiogate"), (
                        f"{path.name} imports {alias.name}"
                    )


def test_same_seed_same_phantom_and_another_seed_another() -> None:
    a, b, c = _small(5), _small(5), _small(6)
    np.testing.assert_array_equal(a.hu, b.hu)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.noncoronary, b.noncoronary)
    assert json.dumps(a.truth(), sort_keys=True) == json.dumps(b.truth(), sort_keys=True)
    assert a.anatomy["heart_centre_mm"] != c.anatomy["heart_centre_mm"]
    assert a.difficulty["noise_sigma_hu"] != c.difficulty["noise_sigma_hu"]


def test_another_acquisition_keeps_the_patient() -> None:
    """Slice thickness, matrix and noise come from their own stream: the anatomy and the
    plaques stay, only the scan changes."""
    thick = _small(8)
    thin = make_ct_phantom_b(8, rows=256, columns=256, slice_thickness_mm=1.5, noise_sigma_hu=30.0)
    assert thick.anatomy == thin.anatomy
    assert thick.plaques == thin.plaques
    assert thin.slice_thickness_mm == 1.5
    assert thin.difficulty["noise_sigma_hu"] == 30.0
    assert thick.hu.shape != thin.hu.shape


def test_volume_types_geometry_and_coverage() -> None:
    p = _small(3)
    assert p.hu.dtype == np.float32
    assert p.labels.dtype == np.uint8
    assert p.noncoronary.dtype == np.uint8
    assert p.hu.shape == p.labels.shape == p.noncoronary.shape
    np.testing.assert_array_equal(p.hu, np.rint(p.hu))
    assert p.hu.min() >= -1024
    assert p.hu.max() <= 3071
    assert (np.diff(p.z_mm) < 0).all(), "slice 0 is the most cranial"
    np.testing.assert_allclose(-np.diff(p.z_mm), p.slice_increment_mm, atol=1e-6)
    assert p.pixel_spacing_rc == (0.9, 0.9)
    low, high = p.anatomy["coronary_tree"]["z_extent_mm"]
    half = p.slice_thickness_mm / 2
    assert p.z_mm[-1] - half <= low, "the whole tree is scanned"
    assert p.z_mm[0] + half >= high, "the whole tree is scanned"
    assert set(p.labels.ravel().tolist()) <= {0, 1, 2, 3, 4}
    assert int(p.noncoronary.max()) < len(NONCORONARY_KINDS)


def test_thin_slices_stay_within_160() -> None:
    p = make_ct_phantom_b(3, rows=64, columns=64, pixel_spacing_mm=2.5, slice_thickness_mm=0.6)
    assert len(p.z_mm) <= 160
    assert p.slice_increment_mm >= 0.6
    low, high = p.anatomy["coronary_tree"]["z_extent_mm"]
    assert p.z_mm[-1] <= low + p.slice_increment_mm
    assert p.z_mm[0] >= high - p.slice_increment_mm


@pytest.mark.parametrize("seed", [0, 4, 8, 14])
def test_truth_is_what_the_service_scoring_finds(seed: int) -> None:
    """The same lesions (slice, centroid to the last bit, artery) and the same scores as
    ``agatston_scores`` on the phantom's own volume and labels; the aortic valve score by
    the same rule on the valve's voxels."""
    p = _small(seed)
    service = agatston_scores(p.hu, p.labels, p.pixel_spacing_rc, p.slice_increment_mm)
    truth = p.truth_scores
    assert truth.lesions, "a seed with coronary calcium"
    for key in ("total", *ARTERIES):
        assert truth.agatston[key] == pytest.approx(service.agatston[key], abs=1e-6)
        assert truth.volume_mm3[key] == pytest.approx(service.volume_mm3[key], abs=1e-6)
    assert [(x.slice_index, x.centroid_rc, x.artery) for x in truth.lesions] == [
        (x.slice_index, x.centroid_rc, x.artery) for x in service.lesions
    ]
    for mine, theirs in zip(truth.lesions, service.lesions, strict=True):
        assert mine.area_mm2 == pytest.approx(theirs.area_mm2)
        assert mine.peak_hu == theirs.peak_hu
        assert mine.agatston == pytest.approx(theirs.agatston)
        assert mine.voxels * p.pixel_spacing_mm**2 == pytest.approx(mine.area_mm2)
    valve = (p.noncoronary == 1).astype(np.uint8)
    valve_scores = agatston_scores(p.hu, valve, p.pixel_spacing_rc, p.slice_increment_mm)
    assert p.aortic_valve_agatston == pytest.approx(valve_scores.agatston["total"], abs=1e-6)


def test_without_plaques_there_is_no_coronary_calcium() -> None:
    p = _small(0, plaques=False)
    assert not p.labels.any()
    assert p.truth_scores.agatston["total"] == 0.0
    assert not p.truth_scores.lesions


def test_confounders_are_placed_and_kept_apart_from_the_coronary_calcium() -> None:
    """Over a few seeds every non-coronary kind appears, is bright where it is marked, never
    shares a voxel with a coronary label, and never shares a calcium component with one."""
    seen: set[int] = set()
    for seed in (4, 7, 8, 9, 14):
        p = _small(seed)
        kinds = p.noncoronary
        seen |= {int(k) for k in np.unique(kinds)} - {0}
        assert not ((p.labels > 0) & (kinds > 0)).any()
        for z in np.flatnonzero(p.labels.any(axis=(1, 2))):
            components, _ = ndimage.label(p.hu[z] >= 130, structure=np.ones((3, 3)))
            coronary = set(np.unique(components[p.labels[z] > 0])) - {0}
            other = set(np.unique(components[kinds[z] > 0])) - {0}
            assert not coronary & other, f"seed {seed} slice {z}: a lesion mixes both"
        for kind in (1, 2, 3, 4, 5, 6):
            if (kinds == kind).any():
                assert p.hu[kinds == kind].max() >= 130, NONCORONARY_KINDS[kind]
        if p.difficulty["has_metal"]:
            assert p.hu[kinds == 5].max() >= 3000
        names = {o["kind"] for o in p.truth()["noncoronary"]}
        assert {NONCORONARY_KINDS[k] for k in np.unique(kinds) if k} <= names
    assert seen == {1, 2, 3, 4, 5, 6}


def test_noncoronary_off_leaves_only_bone() -> None:
    p = _small(4, noncoronary=False)
    assert set(np.unique(p.noncoronary).tolist()) == {0, 4}
    assert p.aortic_valve_agatston == 0.0
    assert not p.difficulty["has_metal"]


@pytest.mark.slow
def test_every_risk_category_over_forty_seeds() -> None:
    """0, 1-10, 11-100, 101-400 and > 400 all occur at full size, about a fifth with none."""
    categories = [
        classic_category(make_ct_phantom_b(seed).truth_scores.agatston["total"])
        for seed in range(40)
    ]
    counts = {c: categories.count(c) for c in ("0", "1-10", "11-100", "101-400", ">400")}
    assert all(counts.values()), counts
    assert 4 <= counts["0"] <= 14, counts


def _hu(ds: pydicom.Dataset) -> np.ndarray[Any, Any]:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_dicom_round_trip_through_the_service_loader(tmp_path: Path) -> None:
    """Every pixel encoding the family writes loads back with the phantom's HU and geometry."""
    encodings: set[tuple[int, int, float]] = set()
    for seed in range(40):
        series = make_ct_series_b(seed, rows=48, columns=64, n_slices=4, pixel_spacing_mm=3.0)
        phantom = series.phantom
        assert isinstance(phantom, CTPhantomB)
        if phantom.encoding in encodings:
            continue
        encodings.add(phantom.encoding)
        paths = write_series(series, tmp_path / str(seed))
        volume = load_ct_series(paths)
        np.testing.assert_array_equal(volume.hu[::-1], phantom.hu)  # loaded feet first
        assert volume.pixel_spacing_mm == phantom.pixel_spacing_rc
        assert volume.slice_increment_mm == pytest.approx(phantom.slice_increment_mm)
        assert volume.slice_thickness_mm == pytest.approx(phantom.slice_thickness_mm)
        np.testing.assert_allclose(volume.positions_mm[::-1, 2], phantom.z_mm, atol=1e-4)
        np.testing.assert_allclose(volume.positions_mm[:, :2], [phantom.origin_mm] * 4, atol=1e-4)
        first = pydicom.dcmread(paths[0])
        assert first.Manufacturer == "cardiogate-synthetic-b"
        assert first.ConvolutionKernel == phantom.kernel_name
        assert first.PatientName == f"SYNTHETIC^PHANTOM^{seed}"
        np.testing.assert_array_equal(_hu(first), phantom.hu[0])
        truth = json.loads((tmp_path / str(seed) / "truth.json").read_text())
        assert truth["family"] == "b"
        assert truth["agatston"] == pytest.approx(series.truth["agatston"])
        assert {
            "volume_mm3",
            "lesion_count",
            "aortic_valve_agatston",
            "noncoronary",
            "difficulty",
        } <= set(truth)
    assert len(encodings) == 3


def test_uids_are_family_b_own(tmp_path: Path) -> None:
    b = make_ct_series_b(2, rows=32, columns=32, n_slices=2, pixel_spacing_mm=5.0)
    b_again = make_ct_series_b(2, rows=32, columns=32, n_slices=2, pixel_spacing_mm=5.0)
    b_thin = make_ct_series_b(
        2, rows=32, columns=32, n_slices=2, pixel_spacing_mm=5.0, slice_thickness_mm=1.0
    )
    a = make_ct_series(2, n_slices=2, rows=32, columns=32)
    uids = {ds.SOPInstanceUID for ds in b.datasets} | {b.datasets[0].SeriesInstanceUID}
    assert uids == {ds.SOPInstanceUID for ds in b_again.datasets} | {
        b_again.datasets[0].SeriesInstanceUID
    }
    assert not uids & ({ds.SOPInstanceUID for ds in a.datasets} | {a.datasets[0].SeriesInstanceUID})
    assert not uids & {ds.SOPInstanceUID for ds in b_thin.datasets}
    assert b.datasets[0].StudyInstanceUID != a.datasets[0].StudyInstanceUID
    joined = make_ct_series_b(
        2, study_instance_uid=a.datasets[0].StudyInstanceUID, rows=32, columns=32, n_slices=2
    )
    assert joined.datasets[0].StudyInstanceUID == a.datasets[0].StudyInstanceUID


def test_a_written_slice_passes_dciodvfy(tmp_path: Path) -> None:
    series = make_ct_series_b(4, rows=64, columns=64, n_slices=2, pixel_spacing_mm=3.0)
    path = write_series(series, tmp_path)[0]
    lines = dciodvfy(path)
    assert not [line for line in lines if "Error" in line], lines


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 1, "rows": 8}, "rows"),
        ({"seed": 1, "n_slices": 0}, "n_slices"),
        ({"seed": 1, "slice_thickness_mm": -1.0}, "slice_thickness_mm"),
        ({"seed": 1, "pixel_spacing_mm": 0.0}, "pixel_spacing_mm"),
        ({"seed": 1, "noise_sigma_hu": -2.0}, "noise_sigma_hu"),
    ],
)
def test_invalid_arguments_are_refused(kwargs: dict[str, Any], word: str) -> None:
    seed = kwargs.pop("seed")
    with pytest.raises(ValueError, match=word):
        make_ct_phantom_b(seed, **kwargs)
