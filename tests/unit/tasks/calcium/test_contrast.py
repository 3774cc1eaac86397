"""Image evidence of contrast: an enhanced blood pool stops the calcium analysis before the
model runs, whatever the header says; a non-contrast chest (bone included) never does."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from cardiogate_phantoms import make_ct_series, write_series

from cardiogate.analyses.ct_volume import CTVolume, load_ct_series
from cardiogate.errors import CardiogateError, NotAnalysableError
from cardiogate.inference.engine import load_model
from cardiogate.tasks.calcium.analysis import analyze_ct, analyze_ct_with_labels
from cardiogate.tasks.calcium.contrast import check_not_enhanced, measure_blood_pool
from tiny_model import write_threshold_model

HEART = {"n_slices": 16, "rows": 128, "columns": 128, "pixel_spacing_mm": 1.5}
CHEST = {"n_slices": 16, "rows": 256, "columns": 256}  # seeded 0.35-0.7 mm pixels
SIZES = [pytest.param(HEART, id="128px-1.5mm"), pytest.param(CHEST, id="256px")]


def _volume(seed: int, contrast: bool, size: dict[str, Any]) -> tuple[CTVolume, float]:
    """The series as the analysis loads it, and the phantom's true blood HU."""
    series = make_ct_series(seed, contrast=contrast, keep_phantom=False, **size)
    return load_ct_series(series.datasets), float(series.truth["phantom"]["blood_hu"])


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seed", range(8))
def test_non_contrast_chests_are_not_flagged(seed: int, size: dict[str, Any]) -> None:
    volume, _ = _volume(seed, False, size)
    pool = check_not_enhanced(volume)  # raises if flagged
    assert pool.measured
    assert pool.volume_ml < 1.0  # the limit is 5 mL: spine, ribs and calcium stay out


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seed", range(4))
def test_an_enhanced_blood_pool_is_found_at_its_density(seed: int, size: dict[str, Any]) -> None:
    volume, blood_hu = _volume(seed, True, size)
    pool = measure_blood_pool(volume)
    assert pool.enhanced
    assert pool.volume_ml >= 10.0
    assert pool.median_hu == pytest.approx(blood_hu, abs=30.0)
    with pytest.raises(NotAnalysableError, match=r"^not scored: contrast-enhanced \(blood pool"):
        check_not_enhanced(volume)


def test_pixels_too_coarse_to_see_cortex_are_not_judged() -> None:
    volume, _ = _volume(
        2, True, {"n_slices": 12, "rows": 64, "columns": 64, "pixel_spacing_mm": 6.0}
    )
    pool = check_not_enhanced(volume)
    assert (pool.measured, pool.volume_ml, pool.median_hu) == (False, 0.0, None)


def test_the_check_costs_milliseconds_on_64_slices_of_512() -> None:
    volume, _ = _volume(3, True, {"n_slices": 64, "rows": 512, "columns": 512})
    times = []
    for _ in range(5):
        started = time.perf_counter()
        pool = measure_blood_pool(volume)
        times.append(time.perf_counter() - started)
    assert pool.enhanced
    assert min(times) < 0.1  # about 0.01 s on one core


def test_the_analysis_ignores_an_enhanced_series_whatever_its_header(tmp_path: Path) -> None:
    series = make_ct_series(5, contrast=True, keep_phantom=False, **HEART)
    for ds in series.datasets:  # a header that says nothing of contrast
        del ds.ContrastBolusAgent, ds.ContrastBolusRoute, ds.ContrastBolusVolume
        ds.SeriesDescription, ds.ProtocolName = "Calcium Score 3.0mm", "Cardiac Calcium Score"
    paths = write_series(series, tmp_path / "ct")
    folder = write_threshold_model(tmp_path / "model")
    model = load_model(folder)
    with pytest.raises(NotAnalysableError) as raised:
        analyze_ct(paths, model)
    blood = series.truth["phantom"]["blood_hu"]
    reason = str(raised.value)
    assert reason.startswith("not scored: contrast-enhanced (blood pool median ")
    assert abs(float(reason.split("median ")[1].split(" HU")[0]) - blood) <= 30

    card = json.loads((folder / "card.json").read_text())
    card["labels"] = ["background", "calcium"]  # a model the analysis would refuse to run
    (folder / "card.json").write_text(json.dumps(card))
    unusable = load_model(folder)
    with pytest.raises(NotAnalysableError):  # the check comes first
        analyze_ct_with_labels(paths, unusable)
    plain = write_series(make_ct_series(5, keep_phantom=False, **HEART), tmp_path / "plain")
    with pytest.raises(CardiogateError, match=r"card labels .* unknown label\(s\) \['calcium'\]"):
        analyze_ct_with_labels(plain, unusable)
