"""Fixtures for the engine tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_model import write_model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_model(tmp_path / "models" / "tiny")
