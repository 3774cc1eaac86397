"""Agatston arithmetic against hand-computed cases (issue 3's list: single-pixel and
multi-slice lesions, each density band edge, 1.5 and 3 mm increments, min-area edge, zero)."""

from __future__ import annotations

import numpy as np
import pytest

from cardiogate.tasks.calcium.scoring import (
    VoxelProbabilities,
    agatston_scores,
    cac_drs,
    classic_category,
    density_weight,
    score_lesions,
)

LM, LAD, LCX, RCA, AV = 1, 2, 3, 4, 5


def volume(slices: int = 1, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    hu = np.full((slices, size, size), 40.0)  # soft tissue
    labels = np.zeros((slices, size, size), dtype=np.uint8)
    return hu, labels


def test_zero_calcium() -> None:
    hu, labels = volume()
    scores = agatston_scores(hu, labels, (0.5, 0.5), 3.0)
    assert scores.agatston == {"total": 0.0, "LM": 0.0, "LAD": 0.0, "LCX": 0.0, "RCA": 0.0}
    assert scores.volume_mm3["total"] == 0.0
    assert scores.lesions == []
    assert classic_category(0.0) == "0"
    assert cac_drs(scores.agatston) == "A0"


def test_single_pixel_lesion_of_one_square_millimetre() -> None:
    hu, labels = volume()
    hu[0, 3, 3], labels[0, 3, 3] = 150, LAD
    scores = agatston_scores(hu, labels, (1.0, 1.0), 3.0)
    # area 1 mm2 x weight 1 x 3/3
    assert scores.agatston["LAD"] == pytest.approx(1.0)
    assert scores.agatston["total"] == pytest.approx(1.0)
    assert scores.volume_mm3["LAD"] == pytest.approx(3.0)  # 1 mm2 x 3 mm
    [lesion] = scores.lesions
    assert (lesion.slice_index, lesion.centroid_rc, lesion.peak_hu) == (0, (3.0, 3.0), 150.0)


@pytest.mark.parametrize(
    ("peak", "weight"),
    [(130, 1), (199, 1), (199.9, 1), (200, 2), (299, 2), (300, 3), (399, 3), (400, 4), (1500, 4)],
)
def test_density_band_edges(peak: float, weight: int) -> None:
    assert density_weight(peak) == weight
    hu, labels = volume()
    hu[0, 2:4, 2:4] = 135.0
    hu[0, 2, 2] = peak  # the peak sets the weight of the whole lesion
    labels[0, 2:4, 2:4] = RCA
    scores = agatston_scores(hu, labels, (1.0, 1.0), 3.0)
    assert scores.agatston["RCA"] == pytest.approx(4.0 * weight)


def test_below_threshold_is_not_calcium() -> None:
    hu, labels = volume()
    hu[0, 2:5, 2:5], labels[0, 2:5, 2:5] = 129.9, LM
    assert agatston_scores(hu, labels, (1.0, 1.0), 3.0).agatston["total"] == 0.0


def test_min_area_edge() -> None:
    hu, labels = volume()
    hu[0, 1, 1], labels[0, 1, 1] = 500, LCX  # 0.25 mm2: too small
    hu[0, 4:6, 4:6], labels[0, 4:6, 4:6] = 500, LCX  # 4 x 0.25 = 1.0 mm2: kept (>=)
    scores = agatston_scores(hu, labels, (0.5, 0.5), 3.0)
    assert len(scores.lesions) == 1
    assert scores.agatston["LCX"] == pytest.approx(1.0 * 4)
    assert agatston_scores(hu, labels, (0.5, 0.5), 3.0, min_area_mm2=1.01).lesions == []


@pytest.mark.parametrize(("increment", "scale"), [(3.0, 1.0), (1.5, 0.5)])
def test_multi_slice_lesion_and_increment(increment: float, scale: float) -> None:
    hu, labels = volume(slices=3)
    for z, peak in enumerate((250, 450, 150)):  # one plaque across three slices
        hu[z, 2:4, 2:5], labels[z, 2:4, 2:5] = peak, LAD  # 6 pixels x 0.25 = 1.5 mm2
    scores = agatston_scores(hu, labels, (0.5, 0.5), increment)
    # per slice: 1.5 mm2 x (2, 4, 1), scaled by increment / 3
    assert scores.agatston["LAD"] == pytest.approx(1.5 * (2 + 4 + 1) * scale)
    assert scores.volume_mm3["LAD"] == pytest.approx(1.5 * 3 * increment)
    assert [lesion.slice_index for lesion in scores.lesions] == [0, 1, 2]


def test_diagonal_pixels_are_one_lesion() -> None:
    hu, labels = volume()
    hu[0, 2, 2], hu[0, 3, 3] = 150, 450  # touching corners: 8-connected
    labels[0, 2, 2] = labels[0, 3, 3] = LM
    scores = agatston_scores(hu, labels, (1.0, 1.0), 3.0)
    assert len(scores.lesions) == 1
    assert scores.agatston["LM"] == pytest.approx(2.0 * 4)  # not 1x1 + 1x4


def test_artery_by_majority_and_background_lesions_dropped() -> None:
    hu, labels = volume(size=12)
    hu[0, 1:3, 1:4] = 300  # 6 pixels: 4 LAD, 2 LCX -> LAD
    labels[0, 1:3, 1:3], labels[0, 1:3, 3] = LAD, LCX
    hu[0, 6:8, 6:8] = 300  # 4 pixels: 3 background, 1 RCA -> not coronary (bone, aorta)
    labels[0, 6, 6] = RCA
    hu[0, 10, 1:3] = 300  # 2 pixels: 1 background, 1 RCA -> tie goes to background
    labels[0, 10, 1] = RCA
    scores = agatston_scores(hu, labels, (1.0, 1.0), 3.0)
    assert [lesion.artery for lesion in scores.lesions] == ["LAD"]
    assert scores.agatston["LAD"] == pytest.approx(6 * 3)
    assert scores.agatston["RCA"] == scores.agatston["LCX"] == 0.0


def test_per_artery_sums_and_mass() -> None:
    hu, labels = volume(slices=2, size=10)
    hu[0, 1:3, 1:3], labels[0, 1:3, 1:3] = 220, LM  # 4 mm2 x 2
    hu[1, 5:8, 5:8], labels[1, 5:8, 5:8] = 410, RCA  # 9 mm2 x 4
    scores = agatston_scores(hu, labels, (1.0, 1.0), 3.0)
    assert scores.agatston == pytest.approx(
        {"total": 44.0, "LM": 8.0, "LAD": 0.0, "LCX": 0.0, "RCA": 36.0}
    )
    assert scores.volume_mm3 == pytest.approx(
        {"total": 39.0, "LM": 12.0, "LAD": 0.0, "LCX": 0.0, "RCA": 27.0}
    )
    mass = scores.mass_mg(0.8)  # mg/cm3 per HU
    assert mass["LM"] == pytest.approx(12 / 1000 * 220 * 0.8)
    assert mass["total"] == pytest.approx(mass["LM"] + 27 / 1000 * 410 * 0.8)
    assert cac_drs(scores.agatston) == "A1/N2"


@pytest.mark.parametrize(
    ("total", "category"),
    [
        (0.5, "1-10"),
        (10, "1-10"),
        (10.5, "11-100"),
        (100, "11-100"),
        (101, "101-400"),
        (400, "101-400"),
        (400.5, ">400"),
    ],
)
def test_classic_category_edges(total: float, category: str) -> None:
    assert classic_category(total) == category


@pytest.mark.parametrize(
    ("total", "band"),
    [(1, "A1"), (99.9, "A1"), (100, "A2"), (299.9, "A2"), (300, "A3"), (2500, "A3")],
)
def test_cac_drs_bands(total: float, band: str) -> None:
    assert cac_drs({"total": total, "LM": 0, "LAD": total, "LCX": 0, "RCA": 0}) == f"{band}/N1"


def test_shapes_and_geometry_are_checked() -> None:
    hu, labels = volume()
    with pytest.raises(ValueError, match="shape"):
        agatston_scores(hu, labels[:, :4], (1.0, 1.0), 3.0)
    with pytest.raises(ValueError, match="positive"):
        agatston_scores(hu, labels, (1.0, 1.0), 0.0)


def test_scored_pixels_are_the_kept_lesions_by_their_majority_artery() -> None:
    hu, labels = volume(slices=2)
    hu[0, 1:3, 1:4] = 250.0  # 6 px: 4 LAD, 2 LCX -> one LAD lesion
    labels[0, 1:3, 1:3], labels[0, 1:3, 3] = LAD, LCX
    hu[0, 6, 6] = 400.0  # 1 px below the 2 mm2 minimum: dropped
    labels[0, 6, 6] = RCA
    hu[1, 5:7, 5:7] = 300.0  # mostly background: not coronary, dropped
    labels[1, 5, 5] = LM
    scores, scored = score_lesions(hu, labels, (1.0, 1.0), 3.0, min_area_mm2=2.0)
    expected = np.zeros_like(labels)
    expected[0, 1:3, 1:4] = LAD
    assert scored.dtype == np.uint8
    assert np.array_equal(scored, expected)
    assert scores.agatston["LAD"] == pytest.approx(6.0 * 2)
    assert scores == agatston_scores(hu, labels, (1.0, 1.0), 3.0, min_area_mm2=2.0)


def test_a_lesion_carries_the_mean_probability_of_its_artery() -> None:
    hu, labels = volume(slices=2)
    hu[0, 1:3, 1:3] = 250.0  # 4 px, all LAD
    labels[0, 1:3, 1:3] = LAD
    hu[1, 5:7, 5:7] = 300.0  # 4 px: 3 LCX and 1 LAD -> an LCX lesion
    labels[1, 5:7, 5:7] = LCX
    labels[1, 6, 6] = LAD
    p = np.zeros((2, 8, 8, 5))
    p[0, 1:3, 1:3, LAD] = [[0.9, 0.8], [0.7, 0.6]]
    p[1, 5:7, 5:7, LCX] = [[0.5, 0.5], [0.5, 0.1]]  # the LAD pixel is barely LCX
    where = np.nonzero(hu >= 130)
    shuffled = np.random.default_rng(0).permutation(len(where[0]))  # any order will do
    where = tuple(w[shuffled] for w in where)
    probabilities = VoxelProbabilities(hu.shape, where, p[where])
    scores, _ = score_lesions(hu, labels, (1.0, 1.0), 3.0, probabilities=probabilities)
    assert [(lesion.artery, lesion.artery_probability) for lesion in scores.lesions] == [
        ("LAD", pytest.approx(0.75)),
        ("LCX", pytest.approx(0.4)),
    ]
    assert score_lesions(hu, labels, (1.0, 1.0), 3.0)[0].lesions[0].artery_probability is None


def test_a_lesion_pixel_without_a_probability_counts_as_zero() -> None:
    hu, labels = volume()
    hu[0, 1:3, 1:3] = 250.0
    labels[0, 1:3, 1:3] = RCA
    where = (np.array([0, 0, 0]), np.array([1, 1, 2]), np.array([1, 2, 1]))  # (2, 2) missing
    probabilities = VoxelProbabilities(hu.shape, where, np.tile([0.0, 0, 0, 0, 1.0], (3, 1)))
    scores, _ = score_lesions(hu, labels, (1.0, 1.0), 3.0, probabilities=probabilities)
    assert scores.lesions[0].artery_probability == pytest.approx(0.75)


def test_aortic_valve_lesions_are_scored_apart_from_the_coronary_totals() -> None:
    hu, labels = volume(slices=2)
    hu[0, 1:3, 1:3], labels[0, 1:3, 1:3] = 250.0, LAD  # 4 mm2, weight 2: LAD 8
    hu[0, 5:8, 5:8], labels[0, 5:8, 5:8] = 450.0, AV  # 9 mm2, weight 4: AV 36
    labels[0, 5, 5] = LAD  # a stray LAD pixel: the lesion is still AV by majority
    hu[1, 5:7, 5:7], labels[1, 5:7, 5:7] = 320.0, AV  # 4 mm2, weight 3: AV 12
    hu[1, 5:7, 5:7] += [[0.0, 0.0], [0.0, 10.0]]  # mean 322.5 HU
    scores, scored = score_lesions(hu, labels, (1.0, 1.0), 3.0)
    assert scores.agatston == {"total": 8.0, "LM": 0.0, "LAD": 8.0, "LCX": 0.0, "RCA": 0.0}
    assert scores.volume_mm3["total"] == 12.0
    assert [lesion.artery for lesion in scores.lesions] == ["LAD"]
    assert [lesion.artery for lesion in scores.valve_lesions] == ["AV", "AV"]
    assert scores.valve_agatston == pytest.approx(36.0 + 12.0)
    assert scores.valve_volume_mm3 == pytest.approx((9.0 + 4.0) * 3.0)
    assert scores.mass_mg(0.8)["total"] == pytest.approx(12.0 / 1000 * 250.0 * 0.8)
    assert scores.valve_mass_mg(0.8) == pytest.approx(
        (27.0 / 1000 * 450.0 + 12.0 / 1000 * 322.5) * 0.8
    )
    assert cac_drs(scores.agatston) == "A1/N1"  # the valve is not a vessel
    assert (scored == AV).sum() == 9 + 4  # the stray LAD pixel is scored with its lesion
    assert (scored == LAD).sum() == 4


def test_a_tie_between_an_artery_and_the_valve_goes_to_the_artery() -> None:
    hu, labels = volume()
    hu[0, 1:3, 1:3] = 300.0
    labels[0, 1, 1:3], labels[0, 2, 1:3] = RCA, AV  # 2 px each
    scores, _ = score_lesions(hu, labels, (1.0, 1.0), 3.0)
    assert [lesion.artery for lesion in scores.lesions] == ["RCA"]
    assert scores.valve_lesions == []
