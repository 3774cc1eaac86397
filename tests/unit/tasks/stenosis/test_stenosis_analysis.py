"""The stenosis analysis around a real ONNX session (a fixed dark-spot rule)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cardiogate.inference.engine import LoadedModel, load_model
from cardiogate.tasks.stenosis.analysis import analyze_xa
from tiny_model import write_dark_spot_model
from xa_datasets import multiframe_xa

MM_PER_PX = 0.2 * 800 / 1000  # classic_geometry(): detector 0.2 mm, SOD 800, SID 1000


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
    assert (lesion.percent_stenosis, lesion.cad_rads) == (75.0, "4A")
    assert lesion.grade == "70-99% (severe)"
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
