"""The noise measurement: a CT series in, the model's per-slice noise out, with a verdict
against the site's threshold.

The model (``model/``, written by ``tests/plugins/ctqc/make_model.py``) takes slices in HU
as (batch, 1, rows, columns) and gives ``noise_hu`` (batch,): the noise standard deviation
in the central region, rows ``rows // margin_divisor`` from each edge (the card's
preprocessing), the same for columns. The series' noise is the median over its slices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel

from cardiogate.analyses.ct_volume import CTVolume, load_ct_series
from cardiogate.errors import CardiogateError

if TYPE_CHECKING:
    from cardiogate.inference import LoadedModel

NOTICE = (
    "AI-generated research output, not for clinical use: an analytic noise estimate, "
    "checked on synthetic CT only."
)
MIN_PIXELS = 16  # rows and columns: the central region is then at least 8 x 8


class ModelUsed(BaseModel):
    name: str
    version: str


class CentralRegion(BaseModel):
    """The region measured on every slice, in pixels: rows [row_start, row_end), columns
    [column_start, column_end)."""

    row_start: int
    row_end: int
    column_start: int
    column_end: int


class CTQualityResult(BaseModel):
    """The stored result of a ``ctqc`` job."""

    task: Literal["ctqc"] = "ctqc"
    noise_hu: float  # median of slice_noise_hu
    slice_noise_hu: list[float]  # in the volume's order along the slice normal
    max_noise_hu: float  # the threshold the verdict used
    verdict: Literal["acceptable", "noisy"]
    needs_review: bool
    review_reason: str | None = None
    region: CentralRegion
    model: ModelUsed
    notice: str = NOTICE


@dataclass(frozen=True)
class Measured:
    """A result and what its report draws on: the volume and its middle slice."""

    result: CTQualityResult
    volume: CTVolume
    middle: int  # index of the slice the region is drawn on


def _int_option(model: LoadedModel, key: str, default: int) -> int:
    value: Any = model.card.preprocessing.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CardiogateError(
            f"model {model.card.name}: preprocessing {key} must be a positive integer"
        )
    return value


def central_region(rows: int, columns: int, margin_divisor: int) -> CentralRegion:
    """The region the graph slices out (``make_model.py``)."""
    row_margin, column_margin = rows // margin_divisor, columns // margin_divisor
    return CentralRegion(
        row_start=row_margin,
        row_end=rows - row_margin,
        column_start=column_margin,
        column_end=columns - column_margin,
    )


def slice_noise(volume: CTVolume, model: LoadedModel) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The model's noise (HU) of every slice, run ``batch_slices`` slices at a time."""
    batch = _int_option(model, "batch_slices", 16)
    name = model.card.inputs[0].name
    found: list[np.ndarray[Any, Any]] = []
    for start in range(0, len(volume.hu), batch):
        chunk = volume.hu[start : start + batch, None].astype(np.float32)
        (noise,) = model.run({name: chunk})[:1]
        if noise.shape != (len(chunk),):
            raise CardiogateError(
                f"model {model.card.name} gave {model.card.outputs[0].name} of shape "
                f"{tuple(noise.shape)} for {len(chunk)} slices"
            )
        found.append(noise)
    values = np.concatenate(found).astype(np.float64)
    if not np.isfinite(values).all():
        raise CardiogateError(f"model {model.card.name} gave a noise that is not a number")
    return values


def measure(paths: Sequence[Path], model: LoadedModel, max_noise_hu: float) -> Measured:
    """Load the series, run the model on every slice and judge the median noise.

    Raises
    ------
    CardiogateError
        When the slices do not make one volume, are too small for the central region, or
        the model's output is not one finite value per slice.
    """
    volume = load_ct_series(paths)
    slices, rows, columns = volume.hu.shape
    if min(rows, columns) < MIN_PIXELS:
        raise CardiogateError(
            f"slices of {rows} x {columns} pixels are too small for the central region "
            f"(at least {MIN_PIXELS} x {MIN_PIXELS})"
        )
    per_slice = slice_noise(volume, model)
    noise = float(np.median(per_slice))
    noisy = noise > max_noise_hu
    result = CTQualityResult(
        noise_hu=round(noise, 2),
        slice_noise_hu=[round(float(v), 2) for v in per_slice],
        max_noise_hu=max_noise_hu,
        verdict="noisy" if noisy else "acceptable",
        needs_review=noisy,
        review_reason=(
            f"image noise {noise:.1f} HU is above the {max_noise_hu:g} HU allowed"
            if noisy
            else None
        ),
        region=central_region(rows, columns, _int_option(model, "margin_divisor", 4)),
        model=ModelUsed(name=model.card.name, version=model.card.version),
    )
    return Measured(result, volume, slices // 2)
