"""A calcium job and a stenosis job, analysed and reported once per test session."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cardiogate.tasks.calcium.analysis import describe
from cardiogate.tasks.calcium.objects import build_calcium_objects
from cardiogate.tasks.calcium.scoring import score_lesions
from cardiogate.tasks.stenosis.objects import build_stenosis_objects
from reporting_jobs import (
    CalciumInputs,
    StenosisInputs,
    calcium_inputs,
    stenosis_inputs,
    write_objects,
)


@pytest.fixture(scope="session")
def calcium(tmp_path_factory: pytest.TempPathFactory) -> CalciumInputs:
    return calcium_inputs(tmp_path_factory.mktemp("calcium"))


@pytest.fixture(scope="session")
def calcium_arteries(calcium: CalciumInputs) -> CalciumInputs:
    """The calcium job with the rule's labels split among three arteries by image region
    (LAD left, LCX upper right, RCA lower right), scored again, with a mass factor."""
    labels = np.where(calcium.labels > 0, 2, 0).astype(np.uint8)
    labels[:, :, 32:][labels[:, :, 32:] > 0] = 3
    labels[:, 40:, 32:][labels[:, 40:, 32:] > 0] = 4
    volume = calcium.volume
    scores, scored = score_lesions(
        volume.hu, labels, volume.pixel_spacing_mm, volume.slice_increment_mm
    )
    model = SimpleNamespace(card=calcium.result.model, provider="CPUExecutionProvider")
    times = (0.0, 0.0, 0.0, 0.0)
    result = describe(scores, volume, model, 0.8, 130.0, 1.0, times)  # type: ignore[arg-type]
    return CalciumInputs(calcium.sources, result, volume, scored)


@pytest.fixture(scope="session")
def calcium_files(
    calcium: CalciumInputs, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The calcium objects (SEG, SR, KEY, SUMMARY) as files."""
    objects = build_calcium_objects(calcium.sources, calcium.result, calcium.volume, calcium.labels)
    return write_objects(objects, tmp_path_factory.mktemp("calcium-out"))


@pytest.fixture(scope="session")
def stenosis(tmp_path_factory: pytest.TempPathFactory) -> StenosisInputs:
    return stenosis_inputs(tmp_path_factory.mktemp("stenosis"))


@pytest.fixture(scope="session")
def stenosis_files(
    stenosis: StenosisInputs, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The stenosis objects (SR, KEY, SUMMARY) as files."""
    objects = build_stenosis_objects(stenosis.sources, stenosis.result, stenosis.cine)
    return write_objects(objects, tmp_path_factory.mktemp("stenosis-out"))
