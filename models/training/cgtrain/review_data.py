"""Training volumes from reviewed cases (a ``cardiogate review export --dataset`` folder)
and from synthetic family-A phantoms (replay), on the model's pixel grid.

A dataset folder holds ``manifest.jsonl`` (one settled case a line: the judged ``result``,
the ``fused`` labels, ``series_dir``) and ``series/<SeriesInstanceUID>/*.dcm``. Targets
follow the analysis: every 8-connected region of pixels at or above the card's
``candidate_hu`` on one slice is a candidate; a reviewed lesion (``lesion/<i>``) takes its
fused class, ``none`` meaning background; an added lesion (``added/<n>``, a fused cluster,
with its (slice, row, column) in the series' order) labels the candidate under it; every
other candidate is background. A lesion whose fusion is unresolved is left out of the loss.
Slices are read as the service reads them (``load_ct_series``), normalised and resampled
to the card's ``pixel_spacing_mm`` as ``pixel_probabilities`` does, and each native
pixel's target lands on the model pixel it is read from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from cardiogate.analyses.ct_volume import CTVolume, load_ct_series
from cardiogate.analyses.resample import resample_linear
from cardiogate.tasks.calcium.analysis import model_grid, model_inputs
from cgtrain.calcium_data import look_alike_centres
from cgtrain.families import ct_phantom

MANIFEST = "manifest.jsonl"
NONE = "none"
_LESION_KEY = re.compile(r"^lesion/(\d+)$")
_ADDED_KEY = re.compile(r"^added(/\d+)?$")  # one review's "added"; fused clusters "added/<n>"
_EIGHT = ndimage.generate_binary_structure(2, 2)


class ReviewDataError(ValueError):
    """A dataset folder that cannot be trained on (missing files, another task)."""


@dataclass
class Volume:
    """One scan on the model's grid: normalised slices (float16, one channel each: the
    model's context channels are stacked at crop time), targets, the pixels the loss
    counts, the slices worth drawing and per slice the centres of look-alikes."""

    x: np.ndarray[Any, Any]  # (slices, rows, columns) float16
    y: np.ndarray[Any, Any]  # (slices, rows, columns) uint8 class indices of the card
    weight: np.ndarray[Any, Any]  # (slices, rows, columns) uint8
    slices: np.ndarray[Any, Any]  # indices of slices with a counted pixel
    hard: dict[int, np.ndarray[Any, Any]]  # slice -> (m, 2) row/column
    source: str  # "reviewed <SeriesInstanceUID>" or "synthetic a <seed>"


@dataclass
class ReviewedCase:
    series_instance_uid: str
    result: dict[str, Any]
    labels: list[dict[str, Any]]  # fused labels: key, kind, value, weight, position
    unresolved: list[str]
    series_dir: Path


def read_manifest(dataset: Path, task: str = "calcium") -> list[ReviewedCase]:
    """The settled cases of ``task`` in ``dataset``; refuses a folder without any."""
    path = dataset / MANIFEST
    if not path.is_file():
        raise ReviewDataError(f"{dataset} has no {MANIFEST}: not a review export dataset")
    cases = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry.get("task") != task:
            continue
        fused = entry.get("fused") or {}
        uid = str(entry["SeriesInstanceUID"])
        folder = dataset / entry.get("series_dir", f"series/{uid}")
        if not folder.is_dir():
            raise ReviewDataError(f"{path} line {number}: series folder for {uid} is missing")
        cases.append(
            ReviewedCase(
                uid, entry["result"], fused.get("labels", []), fused.get("unresolved", []), folder
            )
        )
    if not cases:
        raise ReviewDataError(f"{path} holds no settled {task} case")
    return cases


def lesion_pixel(lesion: dict[str, Any], volume: CTVolume) -> tuple[float, float]:
    """A result lesion's (row, column): its own, else from ``position_mm`` through the
    series' Image Plane geometry (PS3.3 C.7.6.2.1.1)."""
    if "row" in lesion and "col" in lesion:
        return float(lesion["row"]), float(lesion["col"])
    z = int(lesion["slice_index"])
    offset = np.asarray(lesion["position_mm"], dtype=np.float64) - volume.positions_mm[z]
    row_dir, col_dir = volume.orientation[:3], volume.orientation[3:]
    return (
        float(offset @ col_dir) / volume.pixel_spacing_mm[0],
        float(offset @ row_dir) / volume.pixel_spacing_mm[1],
    )


def _component_at(components: np.ndarray[Any, Any], row: float, col: float) -> int:
    """The component under (row, col), else the nearest within 3 pixels, else 0."""
    r, c = round(row), round(col)
    r0, c0 = max(r - 3, 0), max(c - 3, 0)
    window = components[r0 : r + 4, c0 : c + 4]
    found = np.argwhere(window > 0)
    if not len(found):
        return 0
    distance = np.hypot(found[:, 0] + r0 - row, found[:, 1] + c0 - col)
    nearest = found[np.argmin(distance)]
    return int(window[nearest[0], nearest[1]])


def native_targets(
    case: ReviewedCase, volume: CTVolume, classes: list[str], candidate_hu: float
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(targets, counted) on the series' own pixels: class indices of ``classes`` and
    the candidate pixels the loss counts (all but unresolved lesions')."""
    bright = volume.hu >= candidate_hu
    targets = np.zeros(volume.hu.shape, dtype=np.uint8)
    counted = bright.copy()
    components: dict[int, np.ndarray[Any, Any]] = {}

    def mark(z: int, row: float, col: float, value: int | None) -> None:
        if not 0 <= z < len(bright):
            return
        if z not in components:
            components[z] = ndimage.label(bright[z], structure=_EIGHT)[0]
        k = _component_at(components[z], row, col)
        if not k:
            return
        where = components[z] == k
        if value is None:
            counted[z][where] = False
        else:
            targets[z][where] = value

    def index_of(value: Any) -> int:
        return classes.index(value) if value in classes[1:] else 0  # none, AV unknown: 0

    unresolved = set(case.unresolved)
    lesions = case.result.get("lesions", [])
    for label in case.labels:
        key, value = str(label["key"]), label.get("value")
        found = _LESION_KEY.match(key)
        if found and int(found.group(1)) < len(lesions):
            lesion = lesions[int(found.group(1))]
            row, col = lesion_pixel(lesion, volume)
            z = int(lesion["slice_index"])
            mark(z, row, col, None if key in unresolved else index_of(value))
        elif _ADDED_KEY.match(key) and label.get("position") is not None and value != NONE:
            z, row, col = (float(v) for v in label["position"])
            mark(round(z), row, col, index_of(value))
    for key in unresolved:
        found = _LESION_KEY.match(key)
        if found and int(found.group(1)) < len(lesions):
            lesion = lesions[int(found.group(1))]
            mark(int(lesion["slice_index"]), *lesion_pixel(lesion, volume), None)
    return targets, counted


def _hard_centres(y: np.ndarray[Any, Any], w: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Centres of the counted background pieces of a slice: what must stay background."""
    pieces, n = ndimage.label((w > 0) & (y == 0))
    if not n:
        return np.zeros((0, 2), dtype=np.int64)
    centres = ndimage.center_of_mass(pieces > 0, pieces, range(1, n + 1))
    return np.array(centres, dtype=np.float64).round().astype(np.int64).reshape(-1, 2)


def reviewed_volume(
    case: ReviewedCase, classes: list[str], preprocessing: dict[str, Any]
) -> Volume:
    """One reviewed series as a training :class:`Volume` on the model's grid."""
    files = sorted(case.series_dir.glob("*.dcm")) or sorted(case.series_dir.iterdir())
    volume = load_ct_series(files)
    candidate_hu = float(preprocessing.get("candidate_hu", 130.0))
    targets, counted = native_targets(case, volume, classes, candidate_hu)
    n, rows, cols = volume.hu.shape
    grid = model_grid(volume, preprocessing)
    flat = model_inputs(volume.hu, np.arange(n), {**preprocessing, "context_slices": 0})[:, 0]
    x = resample_linear(flat, grid).astype(np.float16)
    back_r = np.minimum(((np.arange(rows) + 0.5) * grid[0] / rows).astype(int), grid[0] - 1)
    back_c = np.minimum(((np.arange(cols) + 0.5) * grid[1] / cols).astype(int), grid[1] - 1)
    y = np.zeros((n, *grid), dtype=np.uint8)
    weight = np.zeros((n, *grid), dtype=np.uint8)
    bright = volume.hu >= candidate_hu
    z, r, c = np.nonzero(bright)
    np.maximum.at(y, (z, back_r[r], back_c[c]), targets[z, r, c])  # coronary wins a pixel
    weight[z, back_r[r], back_c[c]] = 1
    z, r, c = np.nonzero(bright & ~counted)
    weight[z, back_r[r], back_c[c]] = 0
    slices = np.flatnonzero(weight.any(axis=(1, 2)))
    hard = {int(k): _hard_centres(y[k], weight[k]) for k in slices}
    return Volume(x, y, weight, slices, hard, f"reviewed {case.series_instance_uid}")


def synthetic_volume(seed: int, size: int, n_slices: int, preprocessing: dict[str, Any]) -> Volume:
    """A family-A training phantom (replay) at the model's spacing, labelled by its truth
    (the four arteries; any valve class is background here, as in a model without AV)."""
    spacing = float(preprocessing.get("pixel_spacing_mm", 1.0))
    phantom = ct_phantom("a", seed, n_slices=n_slices, rows=size, pixel_spacing_mm=spacing)
    hu = phantom.hu
    bright = hu >= float(preprocessing.get("candidate_hu", 130.0))
    n = len(hu)
    x = model_inputs(hu, np.arange(n), {**preprocessing, "context_slices": 0})[:, 0]
    slices = np.flatnonzero(bright.any(axis=(1, 2)))
    centres = look_alike_centres(phantom, slices)
    return Volume(
        x.astype(np.float16),
        np.where(bright, phantom.labels, 0).astype(np.uint8),
        bright.astype(np.uint8),
        slices,
        {int(k): h for k, h in zip(slices, centres, strict=True)},
        f"synthetic a {seed}",
    )
