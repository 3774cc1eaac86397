"""The out-of-distribution check: hand-made profiles, fitting, and the card's ``ood`` key."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from cardiogate.inference.card import CardError, read_card
from cardiogate.inference.engine import load_model
from cardiogate.inference.ood import (
    FeatureSpec,
    FeatureStats,
    OODCalibration,
    OODProfile,
    assess,
    fit_profile,
    flag_rate,
)
from tiny_model import write_model

CALIBRATION = OODCalibration(
    data="hand-made", fit_cases=100, threshold_rule="chosen by hand", held_out_flag_rate=0.01
)
NOISE = FeatureStats(
    name="noise_hu", label="image noise", unit="HU", min_scale=1.0, decimals=0,
    centre=17.0, scale=4.0, low=8.2, high=25.6,
)  # fmt: skip
THICKNESS = FeatureStats(
    name="slice_thickness_mm", label="slice thickness", unit="mm", min_scale=0.15,
    decimals=1, centre=3.0, scale=0.15, low=3.0, high=3.0,
)  # fmt: skip
SOFT = FeatureStats(
    name="soft_tissue_hu", label="median soft-tissue value", unit="HU", min_scale=3.0,
    decimals=0, centre=15.0, scale=10.0, low=-7.0, high=32.0,
)  # fmt: skip


def profile(covariance: list[list[float]] | None = None, threshold: float = 4.0) -> OODProfile:
    return OODProfile(
        features=[NOISE, THICKNESS, SOFT],
        covariance=covariance,
        threshold=threshold,
        calibration=CALIBRATION,
    )


def test_an_input_in_range_is_not_flagged() -> None:
    verdict = assess(profile(), {"noise_hu": 19.0, "slice_thickness_mm": 3.0, "soft_tissue_hu": 9})
    assert not verdict.flagged
    assert verdict.reason is None
    assert verdict.distance == pytest.approx(np.hypot(0.5, 0.6), abs=1e-9)
    assert verdict.missing == []


def test_far_out_input_is_flagged_naming_features_values_units_and_ranges() -> None:
    verdict = assess(profile(), {"noise_hu": 41.0, "slice_thickness_mm": 0.6, "soft_tissue_hu": 14})
    assert verdict.flagged
    assert verdict.reason == (
        "input unlike the model's training data: slice thickness 0.6 mm (training 3 mm), "
        "image noise 41 HU (training 8-26 HU)"
    )  # most unusual first; the soft-tissue value, in range, is not named
    assert [d.feature.name for d in verdict.deviations][:2] == ["slice_thickness_mm", "noise_hu"]
    assert verdict.deviations[0].z == pytest.approx(-16.0)


def test_a_negative_range_reads_with_to() -> None:
    verdict = assess(profile(), {"soft_tissue_hu": 95.0})
    assert verdict.reason == (
        "input unlike the model's training data: median soft-tissue value 95 HU "
        "(training -7 to 32 HU)"
    )
    assert verdict.missing == ["noise_hu", "slice_thickness_mm"]  # not counted, not flagged


def test_missing_and_unknown_features_do_not_flag() -> None:
    verdict = assess(profile(), {"noise_hu": float("nan"), "something_else": 1e9})
    assert not verdict.flagged
    assert verdict.distance == 0.0
    assert verdict.missing == ["noise_hu", "slice_thickness_mm", "soft_tissue_hu"]


def test_mahalanobis_flags_an_unusual_combination_of_ordinary_values() -> None:
    # noise and soft-tissue value strongly correlated in training; here they part ways
    covariance = [[1.0, 0.0, 0.95], [0.0, 1.0, 0.0], [0.95, 0.0, 1.0]]
    features = {"noise_hu": 17.0 + 2.5 * 4, "slice_thickness_mm": 3.0, "soft_tissue_hu": -10.0}
    euclidean = assess(profile(), features)
    assert not euclidean.flagged  # each within 2.5 scales of its centre
    verdict = assess(profile(covariance), features)
    assert verdict.distance == pytest.approx(np.sqrt(2 * 2.5**2 / 0.05), rel=1e-6)
    assert verdict.flagged
    assert verdict.reason is not None
    assert "an unusual combination of image noise 27 HU (training 8-26 HU) and median " in (
        verdict.reason
    )


@pytest.mark.parametrize(
    ("unit", "decimals", "value", "shown"),
    [
        ("HU", 0, 41.4, "41 HU"),
        ("mm", 1, 3.0, "3 mm"),
        ("%", 2, 0.125, "0.12%"),
        ("% of full scale", 2, 1.0, "1% of full scale"),
        ("", 0, 30.0, "30"),
        ("HU", 0, -0.3, "0 HU"),
    ],
)
def test_values_read_with_their_units(unit: str, decimals: int, value: float, shown: str) -> None:
    spec = FeatureSpec(name="x", label="x", unit=unit, min_scale=1.0, decimals=decimals)
    assert spec.show(value) == shown


def test_a_covariance_that_does_not_fit_is_refused() -> None:
    with pytest.raises(ValidationError, match="3 x 3"):
        profile([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValidationError, match="positive definite"):
        profile([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def cases(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[dict[str, float]]:
    noise = rng.normal(17.0 + shift, 4.0, n)
    soft = 15.0 + 2.0 * (noise - 17.0 - shift) + rng.normal(0, 3.0, n)  # correlated
    return [
        {"noise_hu": float(a), "slice_thickness_mm": 3.0, "soft_tissue_hu": float(b)}
        for a, b in zip(noise, soft, strict=True)
    ]


def test_fit_profile_flags_about_one_percent_in_family_and_most_of_a_shifted_family() -> None:
    rng = np.random.default_rng(7)
    specs = [FeatureSpec(**f.model_dump(include=set(FeatureSpec.model_fields))) for f in (
        NOISE, THICKNESS, SOFT)]  # fmt: skip
    fitted = fit_profile(specs, cases(rng, 2000), calibration=CALIBRATION, quantile=0.99)
    noise, thickness, _ = fitted.features
    assert noise.centre == pytest.approx(17.0, abs=0.4)
    assert noise.scale == pytest.approx(4.0, rel=0.1)
    assert thickness.scale == 0.15  # constant in family: the floor
    assert (thickness.low, thickness.high) == (3.0, 3.0)
    assert fitted.covariance is not None
    assert fitted.covariance[0][2] > 0.5  # the correlation was learnt
    assert flag_rate(fitted, cases(rng, 2000)) == pytest.approx(0.01, abs=0.01)
    assert flag_rate(fitted, cases(rng, 200, shift=25.0)) > 0.9
    thin = assess(fitted, {**cases(rng, 1)[0], "slice_thickness_mm": 0.6})
    assert thin.flagged
    assert thin.reason is not None
    assert "slice thickness 0.6 mm (training 3 mm)" in thin.reason


def as_card_ood(p: OODProfile) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(p.model_dump_json())
    return data


def test_a_card_loads_with_and_without_an_ood_section(tmp_path: Path) -> None:
    plain = read_card(write_model(tmp_path / "plain"))
    assert plain.ood is None
    folder = write_model(tmp_path / "checked", ood=as_card_ood(profile()))
    card = read_card(folder)
    assert card.ood == profile()
    model = load_model(folder, ["CPUExecutionProvider"])
    assert model.card.ood is not None
    assert assess(model.card.ood, {"noise_hu": 60.0}).flagged


def test_a_card_with_a_malformed_ood_section_is_refused(tmp_path: Path) -> None:
    broken = {**as_card_ood(profile()), "threshold": -1.0}
    with pytest.raises(CardError, match="not a valid model card"):
        read_card(write_model(tmp_path / "broken", ood=broken))


def test_calibration_writes_only_the_ood_key_of_a_card(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "models" / "training"))
    from calibrate_ood import write_card

    shipped = Path(__file__).resolve().parents[3] / "models" / "calcium" / "card.json"
    path = tmp_path / "card.json"
    path.write_text(shipped.read_text())
    before = {k: v for k, v in json.loads(path.read_text()).items() if k != "ood"}
    path.write_text(json.dumps(before, indent=2) + "\n")
    write_card(path, profile())
    write_card(path, profile(threshold=5.0))  # a second run replaces, never duplicates
    text = path.read_text()
    after = json.loads(text)
    assert list(after) == [*before, "ood"]
    assert {k: v for k, v in after.items() if k != "ood"} == before
    assert after["ood"]["threshold"] == 5.0
    assert text == json.dumps(after, indent=2) + "\n"  # the cards' own formatting
