"""Tests for the cardiac CT phantom and its per-artery calcium ground truth."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from cardiogate_phantoms import (
    CardiacPhantom,
    PlaqueSpec,
    make_cardiac_phantom,
    make_ct_series,
    write_series,
)

from cardiogate.tasks.calcium.scoring import agatston_scores

KEYS = {"total", "LM", "LAD", "LCX", "RCA"}
# 160 mm x 100 mm around the heart at 1.25 mm / 2.5 mm: small, but shows the whole heart
SMALL: dict[str, Any] = {
    "n_slices": 40,
    "rows": 128,
    "columns": 128,
    "pixel_spacing_mm": 1.25,
    "slice_increment_mm": 2.5,
}
LAD_PLAQUE = PlaqueSpec("LAD", position=0.25, radius_mm=2.0, peak_hu=600.0)


def _phantom(seed: int, **kw: Any) -> CardiacPhantom:
    return make_cardiac_phantom(seed, **{**SMALL, **kw})


def test_same_seed_is_deterministic() -> None:
    a, b = _phantom(11), _phantom(11, workers=1)
    np.testing.assert_array_equal(a.hu, b.hu)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.plaques == b.plaques
    assert a.distractors == b.distractors
    assert a.truth() == b.truth()


def test_anatomy_and_scan_vary_between_seeds() -> None:
    a, b = _phantom(1), _phantom(2)
    assert a.anatomy["heart_center_mm"] != b.anatomy["heart_center_mm"]
    assert a.anatomy["aortic_root_mm"] != b.anatomy["aortic_root_mm"]
    assert a.noise_sigma_hu != b.noise_sigma_hu
    assert not np.array_equal(a.hu, b.hu)


def test_volume_types_and_quantisation() -> None:
    p = _phantom(3)
    assert p.hu.shape == p.labels.shape == (40, 128, 128)
    assert p.hu.dtype == np.float32
    assert p.labels.dtype == np.uint8
    np.testing.assert_array_equal(p.hu, np.rint(p.hu))
    assert p.hu.min() >= -1024
    assert p.hu.max() <= 3071
    assert set(np.unique(p.labels)) <= {0, 1, 2, 3, 4}
    assert np.all(np.diff(p.z_mm) == pytest.approx(-2.5))


def test_no_plaques_scores_zero() -> None:
    p = _phantom(5, plaques=[])
    assert p.plaques == []
    assert not p.labels.any()
    assert p.truth_scores.agatston == dict.fromkeys(KEYS, 0.0)
    assert p.truth()["category"] == "0"


def test_lad_plaque_scores_only_lad() -> None:
    p = _phantom(6, plaques=[LAD_PLAQUE])
    (plaque,) = p.plaques
    assert plaque["in_view"]
    assert plaque["artery"] == "LAD"
    scores = p.truth_scores
    assert scores.agatston["LAD"] > 0
    assert scores.volume_mm3["LAD"] > 0
    assert scores.agatston["total"] == scores.agatston["LAD"]
    assert all(scores.agatston[k] == 0 for k in ("LM", "LCX", "RCA"))
    assert set(np.unique(p.labels)) == {0, 2}
    # the peak lands where asked (noise aside)
    assert max(les.peak_hu for les in scores.lesions) == pytest.approx(
        600, abs=5 * p.noise_sigma_hu
    )


def test_bigger_denser_plaque_scores_higher() -> None:
    small = _phantom(7, plaques=[PlaqueSpec("RCA", 0.3, radius_mm=1.0, peak_hu=250.0)])
    big = _phantom(7, plaques=[PlaqueSpec("RCA", 0.3, radius_mm=2.5, peak_hu=800.0)])
    assert 0 < small.truth_scores.agatston["RCA"] < big.truth_scores.agatston["RCA"]


@pytest.mark.parametrize("artery", ["LM", "LCX", "RCA"])
def test_each_artery_gets_its_label(artery: str) -> None:
    p = _phantom(8, plaques=[PlaqueSpec(artery, 0.4, radius_mm=1.8, peak_hu=500.0)])
    assert p.truth_scores.agatston[artery] > 0
    assert p.truth_scores.agatston["total"] == p.truth_scores.agatston[artery]


def test_aortic_calcium_and_bone_are_never_counted() -> None:
    p = _phantom(9, plaques=[], aortic_calcium=10, valve_calcium=True, noise_spikes=5)
    kinds = {d["kind"] for d in p.distractors}
    assert "aortic_wall" in kinds
    assert "noise_spike" in kinds
    assert int((p.hu >= 130).sum()) > 5000  # bone, aortic calcium, spikes
    assert not p.labels.any()
    assert p.truth_scores.agatston["total"] == 0
    # scoring everything bright as LAD would count a lot: the distractors are real
    everything = agatston_scores(p.hu, np.full(p.hu.shape, 2, np.uint8), (1.25, 1.25), 2.5)
    assert everything.agatston["total"] > 100


def test_labels_stay_on_plaques() -> None:
    specs = [LAD_PLAQUE, PlaqueSpec("RCA", 0.5, 1.5, 900.0), PlaqueSpec("LCX", 0.3, 1.0, 300.0)]
    p = _phantom(10, plaques=specs, aortic_calcium=True)
    k, r, c = np.nonzero(p.labels)
    pts = np.stack(
        [
            p.origin_mm[0] + c * p.pixel_spacing_mm,
            p.origin_mm[1] + r * p.pixel_spacing_mm,
            p.z_mm[k],
        ],
        axis=1,
    )
    centres = np.array([q["center_mm"] for q in p.plaques])
    reach = np.array([q["length_mm"] + q["radius_mm"] for q in p.plaques]) + 4.0
    dist = np.linalg.norm(pts[:, None, :] - centres[None], axis=2)
    assert np.all((dist <= reach[None]).any(axis=1))
    for q in p.plaques:
        assert p.labels[q["slices"]].max() == q["label"]


def test_default_plaques_sometimes_none() -> None:
    counts = [
        len(make_cardiac_phantom(s, n_slices=1, rows=8, columns=8).plaques) for s in range(30)
    ]
    assert 0 in counts
    assert max(counts) >= 3
    assert max(counts) <= 8


def test_contrast_has_bright_blood_and_no_labels() -> None:
    p = _phantom(12, contrast=True, plaques=[LAD_PLAQUE])
    assert 300 <= p.anatomy["blood_hu"] <= 450
    assert not p.labels.any()
    assert p.truth_scores.agatston["total"] == 0


def test_coarse_grid_shows_whole_chest() -> None:
    p = make_cardiac_phantom(13, n_slices=3, rows=128, columns=128, pixel_spacing_mm=2.8)
    mid = p.hu[1]
    for edge in (mid[0], mid[-1], mid[:, 0], mid[:, -1]):  # air all round the body
        assert edge.max() < -900
    assert (mid > 300).any()  # bone


def test_plaque_spec_validation() -> None:
    with pytest.raises(ValueError, match="artery"):
        PlaqueSpec("LIMA")
    with pytest.raises(ValueError, match="position"):
        PlaqueSpec("LAD", position=1.5)
    p = _phantom(14, plaques=[{"artery": "LAD", "position": 0.25, "radius_mm": 2.0}])
    assert p.plaques[0]["peak_hu"] == 400.0


def test_truth_json_and_dicom_roundtrip(tmp_path: Path) -> None:
    s = make_ct_series(
        15,
        n_slices=30,
        rows=96,
        columns=96,
        pixel_spacing_mm=1.5,
        slice_thickness_mm=2.5,
        plaques=[LAD_PLAQUE, PlaqueSpec("RCA", 0.4, 1.5, 350.0)],
    )
    assert s.phantom is not None
    paths = write_series(s, tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    for key in ("agatston", "volume_mm3"):
        assert set(truth[key]) == KEYS
    assert truth["agatston"]["LAD"] > 0
    assert truth["agatston"]["RCA"] > 0
    assert truth["lesion_count"] >= 2
    assert truth["category"] in {"1-10", "11-100", "101-400", ">400"}
    assert truth["cac_drs"].endswith("/N2")
    assert [p["artery"] for p in truth["plaques"]] == ["LAD", "RCA"]
    assert all(p["instance_numbers"] for p in truth["plaques"])

    datasets = sorted(
        (pydicom.dcmread(p) for p in paths), key=lambda d: -float(d.ImagePositionPatient[2])
    )
    hu = np.stack(
        [d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in datasets]
    )
    np.testing.assert_array_equal(hu, s.phantom.hu)
    spacing = tuple(float(v) for v in datasets[0].PixelSpacing)
    got = agatston_scores(hu, s.phantom.labels, (spacing[0], spacing[1]), 2.5)
    assert got.agatston == pytest.approx(truth["agatston"], rel=1e-12)  # two computations
    assert got.volume_mm3 == pytest.approx(truth["volume_mm3"], rel=1e-12)


def test_keep_phantom_false() -> None:
    s = make_ct_series(16, n_slices=2, rows=16, columns=16, keep_phantom=False)
    assert s.phantom is None
    assert set(s.truth["agatston"]) == KEYS


@pytest.mark.slow
def test_generation_time_300x512x512() -> None:
    t0 = time.perf_counter()
    s = make_ct_series(7, n_slices=300, rows=512, columns=512, keep_phantom=False)
    took = time.perf_counter() - t0
    t0 = time.perf_counter()
    make_cardiac_phantom(7, n_slices=64, rows=128, columns=128)
    small = time.perf_counter() - t0
    print(f"\nmake_ct_series 300x512x512: {took:.2f} s; phantom 64x128x128: {small:.2f} s")
    assert len(s.datasets) == 300
