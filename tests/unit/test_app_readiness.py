"""Readiness says whether models are loaded: an empty models directory is not ready, and
the reason names that directory (/readyz answers 503)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cardiogate.api import create_api
from cardiogate.app import Application
from cardiogate.config import load_settings
from cardiogate.inference import InferenceEngine
from tiny_model import write_model


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Application]:
    models = tmp_path / "models"
    models.mkdir()
    application = Application(load_settings(data_dir=tmp_path / "data", models_dir=models))
    yield application
    application.store.dispose()


def _readyz(app: Application) -> tuple[int, Any]:
    app.engine = InferenceEngine.from_directory(app.settings.models_dir, ["CPUExecutionProvider"])
    response = TestClient(create_api(app.store, app)).get("/readyz")
    return response.status_code, response.json()


def test_an_empty_models_directory_is_not_ready_and_says_which(app: Application) -> None:
    status, body = _readyz(app)
    assert status == 503
    assert body["checks"]["models_loaded"] is False
    models_dir = str(app.settings.models_dir)
    assert body["details"]["models_loaded_reason"] == f"no model loaded from {models_dir}"


def test_before_start_up_no_model_is_loaded(app: Application) -> None:
    checks, details = app.readiness()
    assert checks["models_loaded"] is False
    assert str(app.settings.models_dir) in str(details["models_loaded_reason"])


def test_a_loaded_model_passes_the_check(app: Application) -> None:
    write_model(app.settings.models_dir / "calcium")
    _, body = _readyz(app)
    assert body["checks"]["models_loaded"] is True
    assert "models_loaded_reason" not in body["details"]
    assert body["details"]["model_calcium"] == "tiny-calcium 0.0.1 on CPUExecutionProvider"
