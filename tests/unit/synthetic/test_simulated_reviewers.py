"""Simulated calcium reviewers (``cardiogate_phantoms.reviewers``): the corrections they
send follow the phantom's truth, and err at the rate asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from cardiogate_phantoms import calcium_truth, make_cardiac_phantom
from cardiogate_phantoms.calcium_truth import CalciumTruth
from cardiogate_phantoms.reviewers import (
    CLASSES,
    fused_corrections,
    review_accuracy,
    simulate_review,
)


@dataclass
class Scan:
    """A one-slice phantom: three bright blobs (LAD, RCA, and one on no artery)."""

    hu: np.ndarray[Any, Any]
    labels: np.ndarray[Any, Any]
    pixel_spacing_mm: float = 0.5
    origin_mm: tuple[float, float] = (-16.0, -8.0)
    z_mm: np.ndarray[Any, Any] = field(default_factory=lambda: np.array([30.0]))
    truth_scores: CalciumTruth = field(init=False)

    def __post_init__(self) -> None:
        self.truth_scores = calcium_truth(self.hu, self.labels, self.pixel_spacing_mm, 3.0)


def _scan() -> Scan:
    hu = np.zeros((1, 64, 64), np.float32)
    labels = np.zeros(hu.shape, np.uint8)
    for (r, c), label in (((10, 10), 2), ((40, 20), 4), ((30, 50), 0)):
        hu[0, r - 2 : r + 3, c - 2 : c + 3] = 400.0
        labels[0, r - 2 : r + 3, c - 2 : c + 3] = label
    return Scan(hu, labels)


def _lesion(scan: Scan, row: float, col: float, artery: str, *, pixels: bool) -> dict[str, Any]:
    """A result lesion as the service reports it (with or without row/col)."""
    x0, y0 = scan.origin_mm
    x, y = x0 + col * scan.pixel_spacing_mm, y0 + row * scan.pixel_spacing_mm
    lesion: dict[str, Any] = {"slice_index": 0, "position_mm": [x, y, 30.0], "artery": artery}
    return {**lesion, "row": row, "col": col} if pixels else lesion


@pytest.mark.parametrize("pixels", [True, False])
def test_a_faultless_reviewer_corrects_arteries_false_lesions_and_misses(pixels: bool) -> None:
    scan = _scan()
    result = {  # LAD called LCX, the unlabelled blob called RCA, the RCA plaque missed
        "lesions": [
            _lesion(scan, 10, 10, "LCX", pixels=pixels),
            _lesion(scan, 30, 50, "RCA", pixels=pixels),
        ]
    }
    body = simulate_review(scan, result, 0.0, np.random.default_rng(1))
    assert body["lesions"] == [{"index": 0, "artery": "LAD"}, {"index": 1, "artery": "none"}]
    assert body["added"] == [{"slice_index": 0, "row": 40.0, "col": 20.0, "artery": "RCA"}]
    assert review_accuracy(scan, result, body) == (3, 3)


def test_a_reviewer_who_always_errs_gets_every_item_wrong() -> None:
    scan = _scan()
    result = {"lesions": [_lesion(scan, 10, 10, "LAD", pixels=True)]}
    body = simulate_review(scan, result, 1.0, np.random.default_rng(2))
    assert body["added"] == []
    assert body["lesions"][0]["artery"] in set(CLASSES) - {"LAD"}
    assert review_accuracy(scan, result, body) == (0, 2)


def test_errors_come_at_the_rate_asked() -> None:
    scan = _scan()
    result = {"lesions": [_lesion(scan, 10, 10, "LAD", pixels=True)] * 50}
    rng = np.random.default_rng(3)
    right = items = 0
    for _ in range(40):
        body = simulate_review(scan, result, 0.15, rng)
        r, n = review_accuracy(scan, result, body)
        right, items = right + r, items + n
    assert 1 - right / items == pytest.approx(0.15, abs=0.03)


def test_a_phantom_s_own_lesions_and_distractors_read_back_from_patient_positions() -> None:
    phantom = make_cardiac_phantom(
        4, n_slices=12, rows=128, columns=128, pixel_spacing_mm=1.25, valve_calcium=True
    )
    truth = phantom.truth_scores.lesions
    assert truth, "seed 4 draws coronary calcium in these slices"
    x0, y0 = phantom.origin_mm
    ps = phantom.pixel_spacing_mm

    last = len(phantom.z_mm) - 1  # the series runs caudal to cranial, the phantom back

    def at(z: int, r: float, c: float) -> dict[str, Any]:
        where = [x0 + c * ps, y0 + r * ps, phantom.z_mm[z]]
        return {"slice_index": last - z, "position_mm": where}

    lesions = [at(t.slice_index, *t.centroid_rc) for t in truth[1:]]  # the first one missed
    z, r, c = np.argwhere((phantom.noncoronary > 0) & (phantom.hu >= 130))[0]
    lesions.append(at(int(z), float(r), float(c)))  # on valve or aortic calcium
    body = simulate_review(phantom, {"lesions": lesions}, 0.0, np.random.default_rng(0))
    assert [c["artery"] for c in body["lesions"]] == [t.artery for t in truth[1:]] + ["none"]
    [added] = body["added"]
    assert (added["slice_index"], added["artery"]) == (last - truth[0].slice_index, truth[0].artery)


def test_an_error_rate_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        simulate_review(_scan(), {"lesions": []}, 1.5, np.random.default_rng(0))


def test_fused_labels_read_as_one_correction_body() -> None:
    labels = [
        {"key": "lesion/0", "kind": "category", "value": "LAD", "weight": 3.0},
        {"key": "lesion/0/vessel", "kind": "category", "value": "LAD"},  # not a lesion class
        {"key": "verdict", "kind": "category", "value": "disagree"},
        {"key": "added/0", "kind": "category", "value": "RCA", "position": [7.0, 10.5, 20.0]},
        {"key": "added/1", "kind": "category", "value": "none", "position": [3.0, 1.0, 2.0]},
    ]
    assert fused_corrections(labels) == {
        "lesions": [{"index": 0, "artery": "LAD"}],
        "added": [{"slice_index": 7, "row": 10.5, "col": 20.0, "artery": "RCA"}],
    }
