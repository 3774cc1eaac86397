"""Frame selection on cines built here with numpy (wash-in, blur and spread) and on a
phantom run whose truth gives each frame's opacification."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from cardiogate_phantoms import make_xa_cine
from scipy import ndimage

from cardiogate.analyses.xa_cine import load_xa_cine
from cardiogate.analyses.xa_frames import MIN_SHARPNESS, score_frames, select_frames
from xa_datasets import multiframe_xa

Frames = np.ndarray[Any, Any]


def _cine(
    n: int = 24, size: int = 256, wash_in: int = 8, blurred: tuple[int, ...] = ()
) -> tuple[Frames, Frames]:
    """Three dark vessels on a bright sloped background, moving a little, with noise.

    Vessel contrast ramps from 0 at frame 0 to full at frame *wash_in*; *blurred* frames
    are smoothed (sigma 3 px) before the noise, as motion blur is. Returns (frames, ramp).
    """
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    background = 170 + 20 * xx / size - 15 * yy / size
    ramp = np.clip(np.arange(n) / wash_in, 0, 1)
    frames = np.empty((n, size, size), dtype=np.float32)
    for k in range(n):
        shift = 3 * np.sin(k / 2) * size / 256
        path = np.zeros_like(xx)
        for x0, y0, angle, width in (
            (0.3, 0.1, 1.2, 4.0),
            (0.5, 0.4, 0.5, 3.0),
            (0.4, 0.5, 2.2, 2.5),
        ):
            w = width * size / 256
            dx, dy = xx - x0 * size - shift, yy - y0 * size
            along = dx * np.cos(angle) + dy * np.sin(angle)
            across = dy * np.cos(angle) - dx * np.sin(angle)
            chord = 2 * np.sqrt(np.clip(w * w - across**2, 0, None))
            np.maximum(path, np.where((along > 0) & (along < 0.6 * size), chord, 0), out=path)
        image = background * np.exp(-0.12 * ramp[k] * path * 256 / size)
        if k in blurred:
            image = ndimage.gaussian_filter(image, 3.0 * size / 256)
        frames[k] = np.clip(np.rint(image + rng.normal(0, 4.0, image.shape)), 0, 255)
    return frames, ramp


def test_selection_avoids_wash_in_and_blurred_frames() -> None:
    frames, ramp = _cine(blurred=(12, 17))
    chosen = select_frames(frames, max_frames=8)
    assert chosen == sorted(chosen)
    assert len(chosen) == 8
    assert all(ramp[i] >= 0.75 for i in chosen), chosen
    assert not {12, 17} & set(chosen)


def test_scores_say_why() -> None:
    frames, _ = _cine(blurred=(12,))
    scores = score_frames(frames)
    relative = scores.relative_opacification
    assert np.all(np.diff(relative[:8]) > 0)  # rises with the wash-in
    assert relative[0] == pytest.approx(0.0)
    plateau = np.delete(np.arange(len(frames)), 12)[8:]
    assert relative[plateau].min() > 0.9
    assert relative[12] < relative[plateau].min()  # blur spreads vessels past the element
    assert scores.relative_sharpness[12] < MIN_SHARPNESS
    assert scores.relative_sharpness[plateau].min() >= MIN_SHARPNESS
    assert not scores.eligible[:5].any()
    assert not scores.eligible[12]


def test_picks_spread_over_the_run() -> None:
    frames, _ = _cine(n=40, wash_in=1)
    chosen = select_frames(frames, max_frames=4)
    assert len(chosen) == 4
    assert min(np.diff(chosen)) >= 40 // 4 - 1  # about a quarter of the run apart


def test_fewer_eligible_frames_than_asked_are_all_returned() -> None:
    frames, ramp = _cine(n=12, wash_in=10)
    chosen = select_frames(frames, max_frames=8)
    assert chosen == np.flatnonzero(score_frames(frames).eligible).tolist()
    assert 1 <= len(chosen) < 8
    assert chosen[-1] == 11
    assert all(ramp[i] >= 0.7 for i in chosen)


def test_a_cine_without_wash_in_still_gives_frames() -> None:
    frames = np.full((5, 64, 64), 100.0, dtype=np.float32)
    assert select_frames(frames, max_frames=3) == [0, 2, 4]
    assert select_frames(frames[:1]) == [0]


def test_loaded_cine_is_accepted() -> None:
    frames, ramp = _cine(n=12, size=128, wash_in=4)
    cine = load_xa_cine([multiframe_xa(frames.astype(np.uint8))])
    chosen = select_frames(cine, max_frames=3)
    assert chosen == select_frames(cine.frames, max_frames=3)
    assert all(ramp[i] >= 0.75 for i in chosen)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_frames"):
        select_frames(np.zeros((2, 8, 8), dtype=np.float32), max_frames=0)
    with pytest.raises(ValueError, match="frames, rows, columns"):
        score_frames(np.zeros((8, 8), dtype=np.float32))


def test_poorly_opacified_frames_of_a_phantom_run_are_not_read() -> None:
    # the phantom's truth: the tree's mean opacification in each frame (wash-in, wash-out)
    series = make_xa_cine(7)
    truth = np.asarray(series.truth["opacification"])
    scores = score_frames(load_xa_cine(series.datasets))
    chosen = select_frames(load_xa_cine(series.datasets), max_frames=8, scores=scores)
    assert len(chosen) == 8
    assert truth[chosen].min() >= 0.6 * truth.max()
    below = int(np.sum(truth < 0.6 * truth.max()))
    assert scores.poorly_opacified >= below  # every one of them is counted out
