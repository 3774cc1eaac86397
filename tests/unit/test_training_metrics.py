"""The agreement statistics the model card reports, on hand-checkable data.

The training package lives in models/training (it needs PyTorch only to train); its
metrics module needs only numpy and the service."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "training"))
from cardiogate_phantoms import make_xa_cine

from cgtrain.calcium_eval import CATEGORIES, icc_absolute, linear_weighted_kappa
from cgtrain.stenosis_b_data import STRIDE, cine_frames, lesion_targets


def test_icc_perfect_and_biased_agreement() -> None:
    truth = np.array([0.0, 10, 50, 120, 400, 900])
    assert icc_absolute(truth, truth) == pytest.approx(1.0)
    # a constant offset lowers absolute agreement, but only a little for a wide range
    assert 0.95 < icc_absolute(truth, truth + 20) < 1.0
    assert icc_absolute(truth, truth[::-1]) < 0


def test_icc_matches_a_hand_computed_case() -> None:
    # Shrout & Fleiss ICC(2,1) for two raters on three subjects:
    # data (1,2), (3,3), (5,7): MSR = 10.5, MSC = 1.5, MSE = 0.5
    # -> (MSR - MSE) / (MSR + MSE + 2 (MSC - MSE) / 3) = 10 / (11 + 2/3)
    a, b = np.array([1.0, 3, 5]), np.array([2.0, 3, 7])
    assert icc_absolute(a, b) == pytest.approx(10 / (11 + 2 / 3))


def test_linear_weighted_kappa() -> None:
    truth = ["0", "1-10", "11-100", "101-400", ">400", "0"]
    assert linear_weighted_kappa(truth, truth, CATEGORIES) == pytest.approx(1.0)
    one_off = ["0", "11-100", "11-100", "101-400", ">400", "0"]
    two_off = ["0", "101-400", "11-100", "101-400", ">400", "0"]
    k1 = linear_weighted_kappa(truth, one_off, CATEGORIES)
    k2 = linear_weighted_kappa(truth, two_off, CATEGORIES)
    assert 1.0 > k1 > k2  # further disagreement costs more


def test_lesion_targets_peak_on_a_significant_lesion_only() -> None:
    # a 70% lesion at pixel (x 41.5, y 21.5) = centre of cell (5, 10); a 30% one elsewhere
    heat, percent, mask = lesion_targets(np.array([[41.5, 21.5, 70.0], [10.0, 50.0, 30.0]]), 16)
    assert np.unravel_index(np.argmax(heat), heat.shape) == (5, 10)
    assert float(heat.max()) == pytest.approx(1.0, abs=1e-3)
    assert float(heat[12, 2]) < 0.01  # no peak at the mild lesion
    assert float(percent[5, 10]) == pytest.approx(70.0)
    assert mask[12, 2]
    assert float(percent[12, 2]) == pytest.approx(30.0)


def test_cine_frames_put_the_target_where_the_analysis_reads_the_lesion() -> None:
    seed = 910_007  # one 75% lesion
    frames = cine_frames("a", 256, 2, seed)
    truth = make_xa_cine(seed).truth
    (lesion,) = truth["lesions"]
    assert frames.x.shape == (2, 1, 256, 256)
    assert list(frames.label) == [1.0, 1.0]
    mm = truth["pixel_spacing_isocentre_mm"]
    for k, index in enumerate(frames.frame):
        r, c = np.unravel_index(np.argmax(frames.heat[k, 0]), frames.heat.shape[2:])
        # the analysis's mapping of a map cell to frame pixels (512-pixel frames, 256 input)
        row, col = (r + 0.5) * STRIDE * 2 - 0.5, (c + 0.5) * STRIDE * 2 - 0.5
        x, y = lesion["positions_px"][index]
        assert np.hypot(col - x, row - y) * mm < 2.0  # within a map cell of the lesion
