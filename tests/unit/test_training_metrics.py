"""The agreement statistics the model card reports, on hand-checkable data.

The training package lives in models/training (it needs PyTorch only to train); its
metrics module needs only numpy and the service."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "training"))
from cgtrain.calcium_eval import CATEGORIES, icc_absolute, linear_weighted_kappa


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
