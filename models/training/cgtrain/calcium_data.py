"""Training samples from synthetic cardiac CT phantoms, at the model's pixel spacing.

Family A's phantoms (``make_cardiac_phantom``) or family B's (``make_ct_phantom_b``), drawn
through :func:`cgtrain.families.ct_phantom`. The look-alikes a crop is drawn around are
family A's distractors, or in family B every structure its ``noncoronary`` volume codes
(valve, aortic wall, mitral annulus, bone, metal, other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from cardiogate.tasks.calcium.analysis import model_inputs
from cgtrain.families import ct_phantom

SPACING_MM = 1.0  # the model's pixel spacing (the service resamples to it)
PREPROCESSING: dict[str, Any] = {
    "context_slices": 1,
    "clip_hu": [-200.0, 1800.0],
    "offset_hu": 130.0,
    "scale_hu": 500.0,
    "pixel_spacing_mm": SPACING_MM,
    "batch_slices": 8,
    "candidate_hu": 130.0,
}


@dataclass
class Samples:
    x: np.ndarray[Any, Any]  # (n, 3, rows, columns) float16, normalised as the service does
    y: np.ndarray[Any, Any]  # (n, rows, columns) uint8 labels
    weight: np.ndarray[Any, Any]  # (n, rows, columns) uint8: 1 where the loss counts
    hard: list[np.ndarray[Any, Any]]  # per sample, (m, 2) row/column of look-alikes


def look_alike_centres(phantom: Any, slices: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
    """Per slice, the pixel centres of the distractors it cuts (aortic wall and valve
    calcium, mitral annulus, noise spikes): the bright things most like coronary calcium."""
    x0, y0 = phantom.origin_mm
    ps = phantom.pixel_spacing_mm
    rows, columns = phantom.hu.shape[1:]
    out = []
    for k in slices:
        z = phantom.z_mm[k]
        centres = [
            ((d["center_mm"][1] - y0) / ps, (d["center_mm"][0] - x0) / ps)
            for d in phantom.distractors
            if abs(d["center_mm"][2] - z) <= max(d["semi_axes_mm"]) + 1.5
        ]
        inside = [(r, c) for r, c in centres if 0 <= r < rows and 0 <= c < columns]
        out.append(np.array(inside, dtype=np.int64).reshape(-1, 2))
    return out


def noncoronary_centres(
    noncoronary: np.ndarray[Any, Any],
    candidates: np.ndarray[Any, Any],
    slices: np.ndarray[Any, Any],
) -> list[np.ndarray[Any, Any]]:
    """Per slice, the pixel centres of the candidate parts of noncoronary structures (one
    per connected piece)."""
    out = []
    for k in slices:
        pieces, n = ndimage.label((noncoronary[k] > 0) & candidates[k])
        centres = ndimage.center_of_mass(pieces > 0, pieces, range(1, n + 1)) if n else []
        out.append(np.array(centres, dtype=np.float64).round().astype(np.int64).reshape(-1, 2))
    return out


AORTIC_VALVE_LABEL = 5  # the sixth class: aortic valve calcium (noncoronary code 1)


def scan_samples(
    seed: int, size: int, n_slices: int, family: str = "a", aortic_valve: bool = False
) -> Samples:
    """Every slice with a candidate (>= 130 HU) pixel of one phantom scan; with
    ``aortic_valve`` the valve's calcium is labelled :data:`AORTIC_VALVE_LABEL` (both
    families code it 1 in their ``noncoronary`` volume)."""
    phantom = ct_phantom(family, seed, n_slices=n_slices, rows=size, pixel_spacing_mm=SPACING_MM)
    hu = phantom.hu
    candidates = hu >= PREPROCESSING["candidate_hu"]
    slices = np.flatnonzero(candidates.any(axis=(1, 2)))
    x = model_inputs(hu, slices, PREPROCESSING).astype(np.float16)
    hard = (
        look_alike_centres(phantom, slices)
        if family == "a"
        else noncoronary_centres(phantom.noncoronary, candidates, slices)
    )
    labels = phantom.labels[slices].copy()
    if aortic_valve:
        valve = (phantom.noncoronary[slices] == 1) & candidates[slices] & (labels == 0)
        labels[valve] = AORTIC_VALVE_LABEL
    return Samples(x, labels, candidates[slices].astype(np.uint8), hard)


def build(
    seeds: range, size: int, n_slices: int, family: str = "a", aortic_valve: bool = False
) -> Samples:
    parts = [scan_samples(seed, size, n_slices, family, aortic_valve) for seed in seeds]
    return Samples(
        np.concatenate([p.x for p in parts]),
        np.concatenate([p.y for p in parts]),
        np.concatenate([p.weight for p in parts]),
        [h for p in parts for h in p.hard],
    )
