"""What a calcium-scoring CT looks like, in a few numbers, for the out-of-distribution check.

The features (:data:`FEATURES`) are measured on a subsample of the loaded
:class:`~cardiogate.analyses.ct_volume.CTVolume` (a few slices, every few voxels), in well
under 50 ms for a 512 x 512 x 64 volume; :func:`ood_review_reason` compares them with the
model card's ``ood`` profile (:mod:`cardiogate.inference.ood`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cardiogate.analyses.ct_volume import CTVolume
from cardiogate.inference.card import ModelCard
from cardiogate.inference.ood import FeatureSpec, assess

SOFT_TISSUE_HU = (-100.0, 150.0)  # fat, muscle, blood: where noise is measured
WATER_LIKE_HU = (-20.0, 120.0)  # blood and muscle (about 40-50 HU), centred: their median
CALCIUM_HU = 130.0  # the Agatston threshold
BODY_HU = -500.0  # tissue, not air or lung
NOISE_BLOCK_MM = 6.0  # noise is the median standard deviation of blocks this wide
SAMPLED_SLICES = 4
STRIDE = 4  # voxels between samples in a slice for the HU statistics

FEATURES = (
    FeatureSpec(name="noise_hu", label="image noise", unit="HU", min_scale=1.0, decimals=0),
    FeatureSpec(
        name="slice_thickness_mm", label="slice thickness", unit="mm", min_scale=0.15, decimals=1
    ),
    FeatureSpec(
        name="slice_increment_mm", label="slice increment", unit="mm", min_scale=0.15, decimals=1
    ),
    FeatureSpec(
        name="pixel_spacing_mm", label="pixel spacing", unit="mm", min_scale=0.02, decimals=2
    ),
    FeatureSpec(
        name="calcium_fraction_pct",
        label=f"share of voxels at or above {CALCIUM_HU:.0f} HU",
        unit="%",
        min_scale=0.05,
        decimals=2,
    ),
    FeatureSpec(
        name="soft_tissue_hu",
        label="median blood and muscle value",
        unit="HU",
        min_scale=8.0,  # unenhanced blood is 30-50 HU in people; a shift beyond is calibration
        decimals=0,
    ),
    FeatureSpec(
        name="body_width_mm",
        label="body width across the centre row",
        unit="mm",
        min_scale=10.0,
        decimals=0,
    ),
)


def _sampled_slices(hu: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """:data:`SAMPLED_SLICES` slices spread over the volume (ends left out)."""
    n = hu.shape[0]
    spread = np.linspace(0, n - 1, min(SAMPLED_SLICES, n) + 2)[1:-1]
    return np.unique(spread.round().astype(int))


def noise_hu(slices: np.ndarray[Any, Any], spacing_mm: float) -> float:
    """Image noise: the median standard deviation of the square blocks about
    :data:`NOISE_BLOCK_MM` wide that lie wholly in soft tissue; NaN when none does."""
    k = max(4, round(NOISE_BLOCK_MM / spacing_mm))
    n, rows, columns = slices.shape
    r, c = rows // k * k, columns // k * k
    if r == 0 or c == 0:
        return float("nan")
    blocks = slices[:, :r, :c].reshape(n, r // k, k, c // k, k)
    low, high = SOFT_TISSUE_HU
    inside = (blocks.min(axis=(2, 4)) >= low) & (blocks.max(axis=(2, 4)) <= high)
    if not inside.any():
        return float("nan")
    return float(np.median(blocks.std(axis=(2, 4), dtype=np.float64)[inside]))


def body_width_px(rows: np.ndarray[Any, Any]) -> float:
    """The median, over ``rows`` (one per slice), of the span in pixels from the first to the
    last voxel of tissue (above :data:`BODY_HU`); 0 for a row without tissue."""
    tissue = rows > BODY_HU
    first = np.argmax(tissue, axis=1)
    last = rows.shape[1] - 1 - np.argmax(tissue[:, ::-1], axis=1)
    return float(np.median(np.where(tissue.any(axis=1), last - first + 1, 0)))


def ct_features(volume: CTVolume) -> dict[str, float]:
    """The :data:`FEATURES` of one CT volume (a feature the volume cannot give is absent)."""
    hu = volume.hu
    row_mm, column_mm = volume.pixel_spacing_mm
    chosen = hu[_sampled_slices(hu)]
    sample = hu[:, ::STRIDE, ::STRIDE][:: max(1, hu.shape[0] // 16)]
    low, high = WATER_LIKE_HU
    soft = sample[(sample >= low) & (sample <= high)]
    centre_rows = chosen[:, hu.shape[1] // 2, :]
    features = {
        "noise_hu": noise_hu(chosen, (row_mm + column_mm) / 2),
        "slice_increment_mm": float(volume.slice_increment_mm),
        "pixel_spacing_mm": float((row_mm + column_mm) / 2),
        "calcium_fraction_pct": float(100.0 * np.mean(sample >= CALCIUM_HU)),
        "soft_tissue_hu": float(np.median(soft)) if soft.size else float("nan"),
        "body_width_mm": body_width_px(centre_rows) * column_mm,
    }
    if volume.slice_thickness_mm is not None:
        features["slice_thickness_mm"] = float(volume.slice_thickness_mm)
    return {name: value for name, value in features.items() if np.isfinite(value)}


def ood_review_reason(volume: CTVolume, card: ModelCard) -> str | None:
    """Why a reviewer should look at this result because the input is unlike the model's
    training data, or None: the card has no ``ood`` profile, or the input is in family."""
    if card.ood is None:
        return None
    return assess(card.ood, ct_features(volume)).reason
