"""The shipped models know when an input is unlike what they were trained on: their cards
carry a calibrated out-of-distribution profile, and an input beyond it comes back needing
review with a reason that names what is unusual, while a typical one does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from cardiogate_phantoms import make_ct_series, make_xa_cine
from cardiogate_phantoms.family_b import make_xa_cine_b

from cardiogate.inference.engine import LoadedModel, load_model
from cardiogate.inference.providers import CPU
from cardiogate.tasks.calcium.analysis import analyze_ct
from cardiogate.tasks.stenosis.analysis import analyze_xa

MODELS = Path(__file__).resolve().parents[3] / "models"
UNLIKE = "unlike the model's training data"


@pytest.fixture(scope="module")
def calcium() -> LoadedModel:
    return load_model(MODELS / "calcium", [CPU])


@pytest.fixture(scope="module")
def stenosis() -> LoadedModel:
    return load_model(MODELS / "stenosis", [CPU])


@pytest.mark.parametrize("task", ["calcium", "stenosis"])
def test_each_shipped_card_carries_a_profile_calibrated_on_both_families(task: str) -> None:
    card = load_model(MODELS / task, [CPU]).card
    assert card.ood is not None, f"models/{task}/card.json has no ood section"
    calibration = card.ood.calibration
    # few false flags in the family it learned from, most of the other family flagged
    assert calibration.held_out_flag_rate <= 0.03
    assert calibration.other_flag_rate >= 0.5
    assert calibration.held_out_cases >= 100
    assert calibration.other_cases >= 20


def test_a_very_noisy_ct_needs_review_and_the_reason_names_the_noise(
    calcium: LoadedModel,
) -> None:
    noisy = make_ct_series(900003, n_slices=16, noise_sigma_hu=90.0, keep_phantom=False)
    result = analyze_ct(noisy.datasets, calcium)
    assert result.needs_review
    assert result.review_reason is not None
    assert UNLIKE in result.review_reason
    assert "noise" in result.review_reason


def test_a_typical_ct_is_not_flagged_as_unlike_the_training_data(calcium: LoadedModel) -> None:
    typical = make_ct_series(900003, n_slices=16, keep_phantom=False)
    result = analyze_ct(typical.datasets, calcium)
    assert UNLIKE not in (result.review_reason or "")


def test_a_cine_drawn_by_the_other_family_needs_review(stenosis: LoadedModel) -> None:
    other = make_xa_cine_b(960002, frames=20, rows=512, columns=512, stenoses=[])
    result = analyze_xa(other.datasets, stenosis)
    assert result.needs_review
    assert result.review_reason is not None
    assert UNLIKE in result.review_reason
    assert "training" in result.review_reason  # the training range is quoted


def test_a_cine_like_the_training_ones_is_not_flagged(stenosis: LoadedModel) -> None:
    typical = make_xa_cine(910002, stenoses=[])
    result = analyze_xa(typical.datasets, stenosis)
    assert UNLIKE not in (result.review_reason or "")
