"""Bilinear resampling of images to the grid a model reads (CT slices, XA frames)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray[Any, Any], ...]:
    """Source indices and weights of a linear resampling of ``n_in`` pixels to ``n_out``.

    Pixel centres map as in ``scipy.ndimage.zoom(..., grid_mode=True, mode="nearest")``:
    ``(out + 0.5) * n_in / n_out - 0.5``, clamped to the edge pixels.
    """
    coord = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1.0)
    low = np.floor(coord).astype(np.intp)
    high = np.minimum(low + 1, n_in - 1)
    weight = (coord - low).astype(np.float32)
    return low, high, weight


def resample_linear(x: np.ndarray[Any, Any], shape: tuple[int, int]) -> np.ndarray[Any, Any]:
    """Bilinear resampling of the last two axes of ``x`` to ``shape`` (separable gathers:
    a few times faster than ``ndimage.zoom`` on the same grid, with the same result)."""
    if x.shape[-2:] == shape:
        return x
    low, high, w = _linear_taps(x.shape[-2], shape[0])
    x = x[..., low, :] * (1 - w)[:, None] + x[..., high, :] * w[:, None]
    low, high, w = _linear_taps(x.shape[-1], shape[1])
    resampled: np.ndarray[Any, Any] = x[..., low] * (1 - w) + x[..., high] * w
    return resampled
