"""Fixtures over the real peers in ``peers.py``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers import RunningSCP, ServeProcess, start_scp, start_serve, stop_serve
from postgres import postgres  # noqa: F401  (a session fixture: a PostgreSQL cluster)
from tiny_model import write_model


@pytest.fixture
def scp(tmp_path: Path) -> Iterator[RunningSCP]:
    running = start_scp(tmp_path)
    yield running
    running.listener.stop(5)
    running.store.dispose()


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[RunningSCP]:
    """A real Storage SCP, AE title PACS, as the destination that receives our results."""
    running = start_scp(tmp_path / "pacs", ae_title="PACS")
    yield running
    running.listener.stop(5)
    running.store.dispose()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    server = start_serve(tmp_path / "data")
    yield server
    try:
        stop_serve(server)
    except subprocess.TimeoutExpired:
        stop_serve(server, kill=True)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A tiny real ONNX model folder with a valid card."""
    return write_model(tmp_path / "models" / "tiny")
