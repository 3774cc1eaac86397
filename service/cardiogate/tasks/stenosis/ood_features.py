"""What an angiography cine looks like, in a few numbers, for the out-of-distribution check.

The features (:data:`FEATURES`) are measured on a few frames of the loaded
:class:`~cardiogate.analyses.xa_cine.XACine` (every other pixel for the grey-level
statistics), in well under 50 ms for 30 frames of 512 x 512. Grey levels are given as a
percentage of the full scale of BitsStored (0028,0101), the scale the model input is
divided by (PS3.3 C.7.6.3.1.1); frames are vessels-dark, as the loader gives them.
:func:`ood_review_reason` compares the features with the model card's ``ood`` profile
(:mod:`cardiogate.inference.ood`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cardiogate.analyses.xa_cine import XACine
from cardiogate.inference.card import ModelCard
from cardiogate.inference.ood import FeatureSpec, assess

SAMPLED_FRAMES = 4
STRIDE = 2  # pixels between samples for the grey-level statistics
NOISE_ROW_STRIDE = 4  # rows between the rows the noise is measured on
NOISE_RUN = 16  # pixels per run of the noise estimate
VESSEL_PERCENTILE = 5.0  # the darkest few percent of a frame are the opacified vessels
RANGE_PERCENTILES = (0.1, 99.9)

FEATURES = (
    FeatureSpec(
        name="noise_pct", label="image noise", unit="% of full scale", min_scale=0.05, decimals=2
    ),
    FeatureSpec(
        name="background_pct",
        label="background level",
        unit="% of full scale",
        min_scale=1.0,
        decimals=0,
    ),
    FeatureSpec(
        name="vessel_contrast_pct",
        label="vessel contrast",  # the median minus the 5th percentile
        unit="% of full scale",
        min_scale=0.5,
        decimals=1,
    ),
    FeatureSpec(
        name="range_used_pct",
        label="share of the bit range used",  # 0.1st to 99.9th percentile
        unit="%",
        min_scale=1.0,
        decimals=0,
    ),
    FeatureSpec(
        name="mm_per_px", label="pixel size at the isocentre", unit="mm", min_scale=0.01, decimals=3
    ),
    FeatureSpec(name="frames", label="cine length", unit="frames", min_scale=10.0, decimals=0),
    FeatureSpec(name="matrix_px", label="image size", unit="px", min_scale=128.0, decimals=0),
)


def noise_grey_levels(frames: np.ndarray[Any, Any]) -> float:
    """Image noise in grey levels: the horizontal second difference ``2 x[i] - x[i-1] -
    x[i+1]`` (sqrt(6) x the noise for white noise; flat on smooth backgrounds) on every
    :data:`NOISE_ROW_STRIDE`-th row, cut in runs of :data:`NOISE_RUN` pixels; the median
    of the runs' standard deviations, so vessel edges do not count and quantised (integer)
    pixels still give a continuous value."""
    rows = frames[:, ::NOISE_ROW_STRIDE, :].astype(np.float32)
    second = 2 * rows[..., 1:-1] - rows[..., :-2] - rows[..., 2:]
    usable = second.shape[-1] // NOISE_RUN * NOISE_RUN
    if usable == 0:
        return float("nan")
    runs = second[..., :usable].reshape(-1, NOISE_RUN)
    return float(np.median(runs.std(axis=1))) / float(np.sqrt(6.0))


def cine_features(cine: XACine) -> dict[str, float]:
    """The :data:`FEATURES` of one cine (a feature the cine cannot give is absent)."""
    frames = cine.frames
    n, rows, columns = frames.shape
    full_scale = float(2 ** max(1, cine.bits_stored) - 1)
    chosen = frames[np.unique(np.linspace(0, n - 1, min(SAMPLED_FRAMES, n)).round().astype(int))]
    sample = chosen[:, ::STRIDE, ::STRIDE].reshape(len(chosen), -1)
    median = np.median(sample, axis=1)
    dark = np.percentile(sample, VESSEL_PERCENTILE, axis=1)
    low, high = np.percentile(sample, RANGE_PERCENTILES)
    features = {
        "noise_pct": 100.0 * noise_grey_levels(chosen) / full_scale,
        "background_pct": 100.0 * float(np.median(median)) / full_scale,
        "vessel_contrast_pct": 100.0 * float(np.max(median - dark)) / full_scale,
        "range_used_pct": 100.0 * float(high - low) / full_scale,
        "frames": float(n),
        "matrix_px": float(max(rows, columns)),
    }
    if cine.mm_per_px is not None:
        features["mm_per_px"] = float(cine.mm_per_px)
    return {name: value for name, value in features.items() if np.isfinite(value)}


def ood_review_reason(cine: XACine, card: ModelCard) -> str | None:
    """Why a reviewer should look at this result because the cine is unlike the model's
    training data, or None: the card has no ``ood`` profile, or the cine is in family."""
    if card.ood is None:
        return None
    return assess(card.ood, cine_features(cine)).reason
