"""The phantoms' own calcium truth: the published rules on hand-made volumes, agreement with
the service's scoring (the code the truth exists to test) on phantoms, and a phantom package
that runs without the service."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from cardiogate_phantoms import cac_drs, calcium_truth, classic_category, make_cardiac_phantom
from cardiogate_phantoms.calcium_truth import density_weight

from cardiogate.tasks.calcium import scoring

LAD, RCA = 2, 4


def _volume(rows: int = 12, columns: int = 12) -> tuple[np.ndarray, np.ndarray]:
    return np.full((1, rows, columns), -50.0, np.float32), np.zeros((1, rows, columns), np.uint8)


@pytest.mark.parametrize(
    ("peak", "weight"),
    [(130, 1), (199.9, 1), (200, 2), (299, 2), (300, 3), (399.5, 3), (400, 4), (2000, 4)],
)
def test_density_weight_follows_the_peak(peak: float, weight: int) -> None:
    assert density_weight(peak) == weight


def test_one_lesion_scores_area_times_weight_and_counts_its_voxels() -> None:
    hu, labels = _volume()
    hu[0, 2:4, 2:4] = [[150, 180], [250, 140]]  # 4 pixels of 0.5 x 0.5 mm: 1 mm2, peak 250
    labels[0, 2:4, 2:4] = LAD
    truth = calcium_truth(hu, labels, 0.5, 3.0)
    assert truth.agatston["LAD"] == pytest.approx(2.0)  # 1 mm2 x weight 2 x 3/3
    assert truth.volume_mm3["LAD"] == pytest.approx(4 * 0.25 * 3.0)
    assert truth.agatston["total"] == truth.agatston["LAD"]
    assert [(les.artery, les.voxels, les.peak_hu) for les in truth.lesions] == [("LAD", 4, 250)]
    assert truth.lesions[0].centroid_rc == (2.5, 2.5)
    thin = calcium_truth(hu, labels, 0.5, 1.5)  # half the increment: half the score and volume
    assert thin.agatston["LAD"] == pytest.approx(1.0)
    assert thin.volume_mm3["LAD"] == pytest.approx(1.5)


def test_lesions_below_the_minimum_area_or_threshold_do_not_count() -> None:
    hu, labels = _volume()
    hu[0, 1, 1:4] = 500.0  # 3 pixels: 0.75 mm2 at 0.5 mm
    hu[0, 6:8, 6:8] = 129.0  # below 130 HU
    labels[0] = LAD
    assert calcium_truth(hu, labels, 0.5, 3.0).agatston["total"] == 0.0
    assert calcium_truth(hu, labels, 0.6, 3.0).lesions[0].voxels == 3  # 1.08 mm2 counts


def test_diagonal_neighbours_are_one_lesion() -> None:
    hu, labels = _volume()
    for i in range(4):
        hu[0, 2 + i, 2 + i] = 300.0
    labels[0] = RCA
    (lesion,) = calcium_truth(hu, labels, 0.5, 3.0).lesions
    assert (lesion.artery, lesion.voxels) == ("RCA", 4)


def test_a_lesion_takes_its_majority_artery_and_a_tie_with_background_drops_it() -> None:
    hu, labels = _volume()
    hu[0, 1, 1:7] = 450.0
    labels[0, 1, 1:5], labels[0, 1, 5:7] = RCA, LAD
    hu[0, 8, 1:5] = 450.0
    labels[0, 8, 1:3] = LAD  # 2 of 4 pixels labelled: not coronary
    truth = calcium_truth(hu, labels, 0.5, 3.0)
    assert [(les.artery, les.voxels) for les in truth.lesions] == [("RCA", 6)]
    assert truth.agatston["LAD"] == 0.0


@pytest.mark.parametrize(
    ("total", "category"),
    [(0, "0"), (0.4, "1-10"), (10, "1-10"), (10.2, "11-100"), (100, "11-100")]
    + [(100.5, "101-400"), (400, "101-400"), (400.1, ">400")],
)
def test_classic_category(total: float, category: str) -> None:
    assert classic_category(total) == category


@pytest.mark.parametrize(
    ("scores", "drs"),
    [
        ({"total": 0.0, "LAD": 0.0}, "A0"),
        ({"total": 99.9, "LAD": 99.9}, "A1/N1"),
        ({"total": 100.0, "LAD": 60.0, "RCA": 40.0}, "A2/N2"),
        ({"total": 299.0, "LM": 1.0, "LAD": 100.0, "LCX": 98.0, "RCA": 100.0}, "A2/N4"),
        ({"total": 300.0, "LCX": 300.0, "RCA": 0.0}, "A3/N1"),
    ],
)
def test_cac_drs(scores: dict[str, float], drs: str) -> None:
    assert cac_drs(scores) == drs


@pytest.mark.parametrize("seed", [0, 1, 5, 13, 17])  # A3/N2, A0, A1/N2, A3/N3, A2/N3
def test_the_truth_agrees_with_the_service_scoring_on_phantoms(seed: int) -> None:
    p = make_cardiac_phantom(
        seed, n_slices=40, rows=128, columns=128, pixel_spacing_mm=1.25, slice_increment_mm=2.5
    )
    theirs = scoring.agatston_scores(p.hu, p.labels, p.pixel_spacing_rc, p.slice_increment_mm)
    ours = p.truth_scores
    assert ours.agatston == pytest.approx(theirs.agatston, rel=1e-12, abs=1e-12)
    assert ours.volume_mm3 == pytest.approx(theirs.volume_mm3, rel=1e-12, abs=1e-12)
    # the same lesions at the same places: model evaluation matches lesions by place
    assert [(les.slice_index, les.centroid_rc, les.artery) for les in ours.lesions] == [
        (les.slice_index, les.centroid_rc, les.artery) for les in theirs.lesions
    ]
    truth = p.truth()
    assert truth["category"] == scoring.classic_category(theirs.agatston["total"])
    assert truth["cac_drs"] == scoring.cac_drs(theirs.agatston)


def test_the_phantoms_run_without_the_service() -> None:
    code = """
import sys

class NoService:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "cardiogate":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoService())
from cardiogate_phantoms import make_ct_series, make_xa_cine
ct = make_ct_series(3, n_slices=4, rows=32, columns=32, plaques=[{"artery": "LAD"}])
xa = make_xa_cine(3, frames=2, rows=32, columns=32)
assert "cardiogate" not in sys.modules
print(len(ct.datasets), len(xa.datasets), ct.truth["cac_drs"])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["4", "1"]
