"""A calcium job and a stenosis job, analysed and reported once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from cardiogate.reports import build_calcium_objects, build_stenosis_objects
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
def calcium_files(
    calcium: CalciumInputs, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The calcium objects (SEG, SR, OT) as files."""
    objects = build_calcium_objects(calcium.sources, calcium.result, calcium.volume, calcium.labels)
    return write_objects(objects, tmp_path_factory.mktemp("calcium-out"))


@pytest.fixture(scope="session")
def stenosis(tmp_path_factory: pytest.TempPathFactory) -> StenosisInputs:
    return stenosis_inputs(tmp_path_factory.mktemp("stenosis"))


@pytest.fixture(scope="session")
def stenosis_files(
    stenosis: StenosisInputs, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The stenosis objects (SR, OT) as files."""
    objects = build_stenosis_objects(stenosis.sources, stenosis.result, stenosis.cine)
    return write_objects(objects, tmp_path_factory.mktemp("stenosis-out"))
