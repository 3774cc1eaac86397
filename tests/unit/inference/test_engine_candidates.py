"""Candidate models (shadow mode) load beside the serving ones; a bad candidate is logged
with its folder and skipped, never stopping start-up; candidates and the archive are not
mistaken for serving models."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cardiogate.inference import InferenceEngine
from tiny_model import write_model


def _version(folder: Path, version: str) -> None:
    card = json.loads((folder / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps({**card, "version": version}))


def test_a_candidate_loads_beside_the_serving_model(tmp_path: Path) -> None:
    write_model(tmp_path / "calcium", task="calcium")
    _version(write_model(tmp_path / "candidates" / "calcium", task="calcium"), "0.0.2")
    write_model(tmp_path / "archive" / "calcium" / "0.0.0", task="calcium")
    engine = InferenceEngine.from_directory(tmp_path)
    assert set(engine.models) == {"calcium"}  # candidates/ and archive/ are not serving
    assert engine.get("calcium").card.version == "0.0.1"
    candidate = engine.candidate("calcium")
    assert candidate is not None
    assert candidate.card.version == "0.0.2"
    assert candidate.folder == tmp_path / "candidates" / "calcium"
    assert engine.candidate("stenosis") is None


def test_bad_candidates_are_skipped_with_their_folder_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_model(tmp_path / "models" / "calcium", task="calcium")
    candidates = tmp_path / "elsewhere"
    broken = write_model(candidates / "calcium", task="calcium")
    with (broken / "model.onnx").open("ab") as f:
        f.write(b"\x00")  # no longer matches its card's sha256
    write_model(candidates / "stenosis", task="stenosis")  # no serving stenosis model
    write_model(candidates / "other", task="calcium")  # folder not named after its task
    with caplog.at_level(logging.ERROR, logger="cardiogate.inference.engine"):
        engine = InferenceEngine.from_directory(tmp_path / "models", candidates_dir=candidates)
    assert set(engine.models) == {"calcium"}
    assert engine.candidates == {}
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"{candidates / 'calcium'} skipped" in m and "sha256" in m for m in messages)
    assert any(
        f"{candidates / 'stenosis'} skipped: no serving model for task stenosis" in m
        for m in messages
    )
    assert any(f"{candidates / 'other'} skipped: its card's task is calcium" in m for m in messages)


def test_no_candidates_folder_means_no_candidates(tmp_path: Path) -> None:
    write_model(tmp_path / "calcium", task="calcium")
    engine = InferenceEngine.from_directory(tmp_path, candidates_dir=tmp_path / "missing")
    assert engine.candidates == {}
