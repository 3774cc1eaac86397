"""The calcium and stenosis out-of-distribution features, on family-A phantoms."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cardiogate_phantoms import CardiacPhantom, make_cardiac_phantom, make_xa_cine

from cardiogate.analyses.xa_cine import XACine, load_xa_cine
from cardiogate.inference.card import ModelCard, TensorSpec
from cardiogate.inference.ood import OODCalibration, OODProfile, fit_profile
from cardiogate.tasks.calcium import ood_features as calcium
from cardiogate.tasks.stenosis import ood_features as stenosis

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "models" / "training"))
from cgtrain.calcium_eval import phantom_volume

CALIBRATION = OODCalibration(data="family A, tests", fit_cases=4, threshold_rule="max")


def phantom(seed: int, **kwargs: Any) -> CardiacPhantom:
    return make_cardiac_phantom(
        seed, n_slices=10, rows=256, columns=256, pixel_spacing_mm=0.7, **kwargs
    )


def card(profile: OODProfile | None) -> ModelCard:
    spec = TensorSpec(name="image", shape=["batch", 1, 8, 8], dtype="float32")
    return ModelCard(
        name="test", version="0", task="calcium", inputs=[spec], outputs=[spec],
        training_data="phantoms", sha256="0" * 64, intended_use="tests", ood=profile,
    )  # fmt: skip


@pytest.fixture(scope="module")
def family_a() -> list[CardiacPhantom]:
    return [phantom(seed) for seed in (31, 32, 33, 34)]


def test_ct_features_measure_the_phantom(family_a: list[CardiacPhantom]) -> None:
    for p in family_a:
        features = calcium.ct_features(phantom_volume(p))
        assert set(features) == {s.name for s in calcium.FEATURES}
        assert features["noise_hu"] == pytest.approx(p.noise_sigma_hu, rel=0.15)
        assert features["slice_thickness_mm"] == 3.0
        assert features["slice_increment_mm"] == 3.0
        assert features["pixel_spacing_mm"] == 0.7
        assert -60 < features["soft_tissue_hu"] < 60
        assert 0 < features["calcium_fraction_pct"] < 20
        assert 50 < features["body_width_mm"] <= 256 * 0.7
        assert (
            calcium.ct_features(phantom_volume(p)) == features
        )  # the same input, the same numbers


def test_a_noisier_scan_has_more_noise() -> None:
    quiet = calcium.ct_features(phantom_volume(phantom(40, noise_sigma_hu=12.0)))
    noisy = calcium.ct_features(phantom_volume(phantom(40, noise_sigma_hu=40.0)))
    assert quiet["noise_hu"] == pytest.approx(12.0, rel=0.15)
    assert noisy["noise_hu"] == pytest.approx(40.0, rel=0.15)
    assert noisy["soft_tissue_hu"] == pytest.approx(quiet["soft_tissue_hu"], abs=5)


def test_thin_slices_are_named_in_the_review_reason(family_a: list[CardiacPhantom]) -> None:
    fitted = fit_profile(
        calcium.FEATURES,
        [calcium.ct_features(phantom_volume(p)) for p in family_a],
        calibration=CALIBRATION,
        quantile=1.0,
    )
    thin = phantom_volume(phantom(31, slice_increment_mm=0.6, slice_thickness_mm=0.6))
    assert calcium.ct_features(thin)["slice_thickness_mm"] == pytest.approx(0.6)
    reason = calcium.ood_review_reason(thin, card(fitted))
    assert reason is not None
    assert reason.startswith("input unlike the model's training data: ")
    assert "slice thickness 0.6 mm (training 3 mm)" in reason
    assert "slice increment 0.6 mm (training 3 mm)" in reason
    assert calcium.ood_review_reason(phantom_volume(family_a[0]), card(fitted)) is None
    assert calcium.ood_review_reason(thin, card(None)) is None  # no profile, no check


def cine(seed: int) -> XACine:
    return load_xa_cine(make_xa_cine(seed, frames=6, rows=256, columns=256).datasets)


def noisier(c: XACine, sigma: float, seed: int = 0) -> XACine:
    rng = np.random.default_rng(seed)
    top = 2**c.bits_stored - 1
    frames = np.clip(np.round(c.frames + rng.normal(0, sigma, c.frames.shape)), 0, top)
    return dataclasses.replace(c, frames=frames.astype(np.float32))


def test_cine_features_measure_the_cine() -> None:
    series = make_xa_cine(51, frames=6, rows=256, columns=256)
    c = load_xa_cine(series.datasets)
    features = stenosis.cine_features(c)
    assert set(features) == {s.name for s in stenosis.FEATURES}
    assert features["frames"] == 6
    assert features["matrix_px"] == 256
    assert features["mm_per_px"] == pytest.approx(series.truth["pixel_spacing_isocentre_mm"])
    assert 20 < features["background_pct"] < 80
    assert features["vessel_contrast_pct"] > 5  # opacified vessels are darker than the median
    assert 0 < features["noise_pct"] < 5
    assert stenosis.cine_features(c) == features


def test_a_noisier_cine_has_more_noise_and_is_flagged() -> None:
    cines = [cine(seed) for seed in (61, 62, 63, 64)]
    fitted = fit_profile(
        stenosis.FEATURES,
        [stenosis.cine_features(c) for c in cines],
        calibration=CALIBRATION,
        quantile=1.0,
    )
    base = stenosis.cine_features(cines[0])
    noisy_cine = noisier(cines[0], 12.0)
    noisy = stenosis.cine_features(noisy_cine)
    assert noisy["noise_pct"] > base["noise_pct"] + 3.0
    assert noisy["matrix_px"] == base["matrix_px"]
    reason = stenosis.ood_review_reason(noisy_cine, card(fitted))
    assert reason is not None
    assert re.search(r"image noise [\d.]+% of full scale \(training [\d.]+-[\d.]+% of full", reason)
    assert stenosis.ood_review_reason(cines[1], card(fitted)) is None
    assert stenosis.ood_review_reason(noisy_cine, card(None)) is None
