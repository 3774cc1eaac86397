"""Calcium and stenosis jobs for the reporting tests: synthetic series written to files,
read back as the worker would read them from the spool, and analysed with the fixed-rule
models of ``tiny_model`` (fast and deterministic). Built objects are written to files and
read back before anything is asserted on them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from cardiogate_phantoms import make_ct_series, make_xa_cine, write_series
from pydicom.dataset import Dataset

from cardiogate.analyses.ct_volume import CTVolume
from cardiogate.analyses.xa_cine import XACine, load_xa_cine
from cardiogate.inference.engine import load_model
from cardiogate.tasks import task_classes
from cardiogate.tasks.calcium.analysis import CalciumResult, analyze_ct_with_labels
from cardiogate.tasks.stenosis.analysis import StenosisResult, analyze_xa
from tiny_model import write_dark_spot_model, write_threshold_model

CT_SEED = 3
XA_SEED = 1
PROVIDERS = ["CPUExecutionProvider"]


@dataclass(frozen=True)
class CalciumInputs:
    sources: list[Dataset]
    result: CalciumResult
    volume: CTVolume
    labels: np.ndarray[Any, Any]


@dataclass(frozen=True)
class StenosisInputs:
    sources: list[Dataset]
    result: StenosisResult
    cine: XACine
    truth: dict[str, Any]


def _read_all(paths: Sequence[Path]) -> list[Dataset]:
    return [pydicom.dcmread(path) for path in paths]


def calcium_inputs(
    folder: Path, *, above_hu: float = 150.0, mass_factor: float | None = None
) -> CalciumInputs:
    """A small synthetic calcium CT scored by the threshold rule (every pixel above
    ``above_hu`` is LAD), with a calibration factor in the headers when given."""
    series = make_ct_series(CT_SEED, n_slices=6, rows=64, columns=64, pixel_spacing_mm=6.0)
    if mass_factor is not None:
        for ds in series.datasets:
            ds.CalciumScoringMassFactorPatient = mass_factor
    sources = _read_all(write_series(series, folder / "ct"))
    model = load_model(write_threshold_model(folder / "model", above_hu=above_hu), PROVIDERS)
    result, volume, labels = analyze_ct_with_labels(sources, model)
    return CalciumInputs(sources, result, volume, labels)


def stenosis_inputs(folder: Path) -> StenosisInputs:
    """A synthetic LAD cine with one explicit 75% stenosis, read by the dark-spot rule."""
    series = make_xa_cine(
        XA_SEED,
        frames=8,
        rows=256,
        columns=256,
        stenoses=[{"vessel": "LAD", "position": 0.4, "percent": 75.0}],
    )
    sources = _read_all(write_series(series, folder / "xa"))
    model = load_model(write_dark_spot_model(folder / "model"), PROVIDERS)
    return StenosisInputs(
        sources, analyze_xa(sources, model), load_xa_cine(sources), dict(series.truth)
    )


def write_objects(objects: Sequence[Dataset], folder: Path) -> dict[str, Path]:
    """Each object to a Part 10 file named by its kind: SEG, SR, KEY, SUMMARY; a second
    object of a kind gets ``-2`` (``KEY-2``: the second artery's key image), and so on."""
    kind_of_series = {
        series.number: kind
        for task in task_classes()
        for kind, series in task.output_series.items()
    }
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for ds in objects:
        kind = kind_of_series[int(ds.SeriesNumber)].upper()
        before = sum(1 for name in paths if name.split("-")[0] == kind)
        name = f"{kind}-{before + 1}" if before else kind
        paths[name] = folder / f"{name}.dcm"
        ds.save_as(paths[name], enforce_file_format=True)
    return paths


def content_items(ds: Dataset) -> Iterator[Dataset]:
    """Every SR content item below ``ds``, depth first."""
    for item in ds.get("ContentSequence", []):
        yield item
        yield from content_items(item)


def texts(ds: Dataset) -> list[str]:
    """The values of the TEXT and UIDREF items of an SR tree."""
    return [
        str(item.get("TextValue", item.get("UID", "")))
        for item in content_items(ds)
        if item.ValueType in ("TEXT", "UIDREF")
    ]
