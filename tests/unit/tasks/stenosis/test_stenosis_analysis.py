"""The stenosis analysis around a real ONNX session (a fixed dark-spot rule)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from cardiogate_phantoms import make_xa_cine

from cardiogate.inference.engine import LoadedModel, load_model
from cardiogate.tasks.stenosis.analysis import analyze_xa
from tiny_model import write_dark_spot_model
from xa_datasets import multiframe_xa

MM_PER_PX = 0.2 * 800 / 1000  # classic_geometry(): detector 0.2 mm, SOD 800, SID 1000
SHIPPED = Path(__file__).resolve().parents[4] / "models" / "stenosis"


def cine(n: int = 12, spot: tuple[int, int] | None = (300, 200), level: int = 40) -> np.ndarray:
    """Bright frames (200) with a thin dark vessel; a dark spot at (x, y) from frame 4 on,
    moving 2 px right per frame, at ``level``."""
    frames = np.full((n, 512, 512), 200, dtype=np.uint8)
    frames[:, 100:400, 250] = 120  # a vessel so that frames differ from flat
    if spot is not None:
        x, y = spot
        for k in range(4, n):
            frames[k, y - 6 : y + 6, x - 6 + 2 * k : x + 6 + 2 * k] = level
    return frames


@pytest.fixture
def model(tmp_path: Path) -> LoadedModel:
    return load_model(write_dark_spot_model(tmp_path / "dark"), ["CPUExecutionProvider"])


def test_a_dark_spot_is_reported_once_where_it_is(model: LoadedModel) -> None:
    result = analyze_xa([multiframe_xa(cine())], model, max_frames=4)
    assert result.significant
    assert result.probability > 0.99
    assert len(result.lesions) == 1  # one lesion, though seen on several frames
    lesion = result.lesions[0]
    k = lesion.frame - 1
    assert lesion.frame in result.frames_used
    assert abs(lesion.x_px - (300 + 2 * k)) <= 4
    assert abs(lesion.y_px - 200) <= 4
    assert lesion.x_mm == pytest.approx(lesion.x_px * MM_PER_PX, abs=0.01)
    # a square spot is no vessel: its lumen cannot be measured, the network's reading stays
    assert (lesion.percent_stenosis, lesion.cad_rads) == (75.0, "4A")
    assert lesion.percent_method == "network"
    assert lesion.percent_note
    assert lesion.minimal_lumen_diameter_mm is None
    assert lesion.grade == "70-99% (severe)"
    assert len(lesion.frames_seen) >= 2
    assert set(lesion.frames_seen) <= set(result.frames_used)
    assert lesion.frame in lesion.frames_seen
    assert len(lesion.polyline_px) >= 3
    assert lesion.polyline_mm is not None
    assert result.most_severe == lesion
    assert result.projection == "LAO 45 CRA 20"
    assert not result.needs_review
    assert set(result.timings_s) == {"decode", "frame_selection", "model", "post_processing"}
    assert "not for clinical use" in result.notice
    assert "convention" in result.grading_convention


def test_no_spot_no_lesion(model: LoadedModel) -> None:
    result = analyze_xa([multiframe_xa(cine(spot=None))], model)
    assert not result.significant
    assert result.lesions == []
    assert result.most_severe is None
    assert not result.needs_review


def test_an_uncertain_run_needs_review(model: LoadedModel) -> None:
    # a fainter spot (100 of 255, smoothed by the resampling) sits near the rule's cut
    result = analyze_xa([multiframe_xa(cine(level=100))], model, review_band=(0.3, 0.7))
    assert 0.3 <= result.probability < 0.7
    assert result.needs_review
    assert result.review_reason is not None
    assert "review band" in result.review_reason


def test_missing_geometry_keeps_pixels_and_flags(model: LoadedModel) -> None:
    ds = multiframe_xa(
        cine(), DistanceSourceToPatient=None, DistanceSourceToDetector=None, ImagerPixelSpacing=None
    )
    result = analyze_xa([ds], model)
    assert result.lesions
    assert result.lesions[0].x_mm is None
    assert result.geometry["mm_per_px"] is None
    assert result.geometry["flags"]
    assert result.needs_review  # a finding without a scale


def moving_heart(n: int = 12, step: tuple[int, int] = (5, 9)) -> np.ndarray:
    """Thin vessels and a dark spot on one of them moving together ``step`` (rows,
    columns) px per frame, as the heart does, over a still background."""
    frames = np.full((n, 512, 512), 200, dtype=np.uint8)
    frames[:, :, 60:90] = 185  # a still band (the spine) that the motion must not follow
    for k in range(n):
        dr, dc = step[0] * k, step[1] * k
        for r0, c0, dr1, dc1 in ((80, 100, 1, 1), (100, 380, 1, -1), (60, 240, 1, 0)):
            for t in range(280):
                frames[k, r0 + dr + dr1 * t : r0 + dr + dr1 * t + 3, c0 + dc + dc1 * t] = 150
        frames[k, 194 + dr : 206 + dr, 234 + dc : 246 + dc] = 40  # on the third vessel
    return frames


def test_a_lesion_moving_with_the_heart_is_one_finding(model: LoadedModel) -> None:
    result = analyze_xa([multiframe_xa(moving_heart())], model, max_frames=4)
    used = [f - 1 for f in result.frames_used]
    assert max(np.hypot(5 * (b - a), 9 * (b - a)) for a, b in itertools.pairwise(used)) > 24
    assert len(result.lesions) == 1
    lesion = result.lesions[0]
    assert lesion.frames_seen == result.frames_used
    k = lesion.frame - 1
    assert abs(lesion.x_px - (240 + 9 * k)) <= 4
    assert abs(lesion.y_px - (200 + 5 * k)) <= 4
    assert result.parameters["merge_distance_mm"] == 3.0


@pytest.fixture(scope="module")
def shipped() -> LoadedModel:
    return load_model(SHIPPED, ["CPUExecutionProvider"])


@pytest.mark.parametrize("seed", [7, 11])
def test_reported_angiograms_give_one_measured_finding_per_lesion(
    seed: int, shipped: LoadedModel
) -> None:
    # the users' cases: seed 7 had 5 findings for its 3 lesions, seed 11 graded an 85% D2
    # stenosis 64% (the network's reading)
    series = make_xa_cine(seed)
    truth = [t for t in series.truth["lesions"] if t["significant"]]
    result = analyze_xa(series.datasets, shipped)
    mm = result.geometry["mm_per_px"]
    assert len(result.lesions) == len(truth)
    found = set()
    for lesion in result.lesions:
        # within 3 mm of a true lesion where it lies on the frame it is reported on
        away = [
            np.hypot(lesion.x_px - x, lesion.y_px - y) * mm
            for x, y in (t["positions_px"][lesion.frame - 1] for t in truth)
        ]
        match = int(np.argmin(away))
        assert away[match] <= 3.0
        found.add(match)
        expected = truth[match]
        assert lesion.vessel == expected["vessel"]
        assert lesion.percent_method == "qca"
        assert lesion.percent_stenosis == pytest.approx(expected["percent_stenosis"], abs=10.0)
        assert lesion.cad_rads == "4A"  # every one of these is 70-99%
        assert lesion.minimal_lumen_diameter_mm is not None
        assert lesion.reference_diameter_mm is not None
        assert lesion.minimal_lumen_diameter_mm < 0.4 * lesion.reference_diameter_mm
        assert len(lesion.frames_seen) >= 2
    assert len(found) == len(truth)
    # the wash-in and wash-out frames (below 0.6 of the peak's contrast) were not read
    opacification = np.asarray(series.truth["opacification"])
    assert opacification[[f - 1 for f in result.frames_used]].min() >= 0.6 * opacification.max()
    assert result.parameters["frames_poorly_opacified"] >= np.sum(
        opacification < 0.6 * opacification.max()
    )
