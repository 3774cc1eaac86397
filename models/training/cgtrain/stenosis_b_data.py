"""Training images for the stenosis model from whole cines of either phantom family.

The curriculum (``cardiogate_phantoms.curriculum_sample``) draws family A's image model
only. To train on family B, the whole-tree level is replaced by frames of seeded cines
(``make_xa_cine_b``; family A's ``make_xa_cine`` works the same way): each cine is loaded and
its frames picked as the service does (``load_xa_cine``, ``select_frames``), a few of them
taken at random and prepared exactly as the analysis prepares them (``model_input``: scaled
by the bit depth, resampled to the model's input size). Targets come from the truth's
per-frame lesion positions, mapped to the resized frame, and are built by
:func:`lesion_targets`, the arithmetic the curriculum pool uses: a gaussian heatmap peak
(sigma 1 cell) at each lesion of at least 50%, and the lesion's %DS on the cells within
1.5 cells of its centre, which are the cells the percent loss counts.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from cardiogate.analyses.xa_cine import load_xa_cine, select_frames
from cardiogate.tasks.stenosis.analysis import model_input
from cgtrain.families import is_normal, xa_cine

STRIDE = 4
SIGNIFICANT = 50.0
FRAMES_PER_CINE = 4


def lesion_targets(
    points: np.ndarray[Any, Any], cells: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """``(heat, percent, mask)`` maps of ``cells`` x ``cells`` for lesions given as rows
    ``(x, y, percent)`` in input pixels (x = column; cell k covers pixels 4k..4k+3)."""
    heat = np.zeros((cells, cells), dtype=np.float16)
    percent = np.zeros((cells, cells), dtype=np.float16)
    mask = np.zeros((cells, cells), dtype=np.bool_)
    rr, cc = np.mgrid[0:cells, 0:cells].astype(np.float32)
    for x, y, p in points:
        r, c = (y + 0.5) / STRIDE - 0.5, (x + 0.5) / STRIDE - 0.5
        d2 = (rr - r) ** 2 + (cc - c) ** 2
        if p >= SIGNIFICANT:
            np.maximum(heat, np.exp(-d2 / 2.0), out=heat)
        near = d2 <= 2.25
        percent[near] = p
        mask |= near
    return heat, percent, mask


@dataclass(frozen=True)
class Frames:
    """Model inputs and targets of many frames."""

    x: np.ndarray[Any, Any]  # (n, 1, size, size) float16, 0-1, vessels dark
    heat: np.ndarray[Any, Any]  # (n, 1, cells, cells) float16
    percent: np.ndarray[Any, Any]  # (n, 1, cells, cells) float16
    mask: np.ndarray[Any, Any]  # (n, 1, cells, cells) bool
    label: np.ndarray[Any, Any]  # (n,) float32: 1 when the frame holds a >= 50% lesion
    frame: np.ndarray[Any, Any]  # (n,) int: the frame's 0-based index in its cine


def cine_frames(family: str, size: int, frames: int, seed: int) -> Frames:
    """Up to ``frames`` frames the service would pick of the cine of ``seed`` (odd seeds
    with lesions, even normal), at ``size`` pixels square, with their targets."""
    cine = xa_cine(family, seed, normal=is_normal(seed))
    loaded = load_xa_cine(cine.datasets)
    chosen = select_frames(loaded, max_frames=8)
    rng = np.random.default_rng([seed, size])
    picks = np.sort(rng.choice(chosen, size=min(frames, len(chosen)), replace=False))
    x = model_input(loaded.frames[picks], loaded.bits_stored, size).astype(np.float16)
    rows, cols = loaded.frames.shape[1:]
    cells = size // STRIDE
    maps = []
    labels = []
    for index in picks:
        points = np.array(
            [
                (
                    (t["positions_px"][index][0] + 0.5) * size / cols - 0.5,
                    (t["positions_px"][index][1] + 0.5) * size / rows - 0.5,
                    float(t["percent_stenosis"]),
                )
                for t in cine.truth["lesions"]
            ],
            dtype=np.float32,
        ).reshape(-1, 3)
        maps.append(lesion_targets(points, cells))
        labels.append(float((points[:, 2] >= SIGNIFICANT).any()))
    heat, percent, mask = (np.stack([m[i] for m in maps])[:, None] for i in range(3))
    return Frames(x, heat, percent, mask, np.array(labels, dtype=np.float32), picks)


def build(
    family: str, seeds: range, size: int, *, frames: int = FRAMES_PER_CINE, workers: int = 2
) -> Frames:
    """:func:`cine_frames` of every seed (in ``workers`` processes), stacked."""
    make = partial(cine_frames, family, size, frames)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(make, seeds, chunksize=4))
    else:
        parts = [make(seed) for seed in seeds]
    return Frames(
        *(np.concatenate([getattr(p, name) for p in parts]) for name in Frames.__dataclass_fields__)
    )
