"""Promotion and rollback on real model folders (copies of models/calcium): the folders
move, the card checksum is verified first, every action is recorded, refusals change
nothing, and the engine loads what was promoted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from cardiogate.inference import InferenceEngine
from cardiogate.inference.card import file_sha256
from cardiogate.learning.promotion import (
    ModelFolders,
    PromotionError,
    history,
    promote,
    rollback,
    rollback_target,
)
from cardiogate.store import Store

CALCIUM = Path(__file__).resolve().parents[3] / "models" / "calcium"


def _candidate(folder: Path, version: str) -> Path:
    """A copy of the calcium model as version ``version`` (same weights, its own card)."""
    shutil.copytree(CALCIUM, folder)
    card = json.loads((folder / "card.json").read_text())
    card["version"] = version
    (folder / "card.json").write_text(json.dumps(card))
    return folder


@pytest.fixture
def folders(tmp_path: Path) -> ModelFolders:
    models = tmp_path / "models"
    _candidate(models / "calcium", "0.2.0")  # serving, pinned so the versions below hold
    return ModelFolders(models, models / "candidates", models / "archive")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'cardiogate.db'}")
    store.create_schema()
    return store


def _version(folder: Path) -> str:
    return str(json.loads((folder / "card.json").read_text())["version"])


def test_promote_archives_serving_and_puts_the_candidate_in_its_place(
    folders: ModelFolders, store: Store
) -> None:
    _candidate(folders.candidates_dir / "calcium", "0.2.0-ft.1")
    done = promote(store, folders, "calcium", "reviewer-7", "fine-tuned on 40 reviewed cases")
    serving = folders.models_dir / "calcium"
    assert _version(serving) == "0.2.0-ft.1"
    assert _version(folders.archive_dir / "calcium" / "0.2.0") == "0.2.0"
    assert done.archived == folders.archive_dir / "calcium" / "0.2.0"
    assert not (folders.candidates_dir / "calcium").exists()  # promoted: no longer a candidate
    assert not list((folders.models_dir / ".staging").iterdir())  # nothing left half-moved
    [record] = history(store, "calcium")
    assert (record.action, record.from_version, record.to_version, record.by) == (
        "promote",
        "0.2.0",
        "0.2.0-ft.1",
        "reviewer-7",
    )
    assert record.note == "fine-tuned on 40 reviewed cases"
    engine = InferenceEngine.from_directory(folders.models_dir)  # staging/archive not loaded
    assert engine.get("calcium").card.version == "0.2.0-ft.1"
    assert engine.candidates == {}


def test_a_candidate_whose_model_does_not_match_its_card_is_refused(
    folders: ModelFolders, store: Store
) -> None:
    candidate = _candidate(folders.candidates_dir / "calcium", "0.2.0-ft.1")
    with (candidate / "model.onnx").open("ab") as f:
        f.write(b"\x00")
    with pytest.raises(PromotionError, match="does not match its card"):
        promote(store, folders, "calcium", "reviewer-7")
    assert _version(folders.models_dir / "calcium") == "0.2.0"
    assert history(store) == []


def test_refusals_name_what_is_missing(folders: ModelFolders, store: Store) -> None:
    with pytest.raises(PromotionError, match="no candidate model for task calcium"):
        promote(store, folders, "calcium", "reviewer-7")
    with pytest.raises(PromotionError, match="nothing to roll back to for task calcium"):
        rollback(store, folders, "calcium", "reviewer-7")
    with pytest.raises(PromotionError, match="no serving model for task stenosis"):
        rollback(store, folders, "stenosis", "reviewer-7")
    _candidate(folders.candidates_dir / "calcium", "0.2.0")
    with pytest.raises(PromotionError, match="which is serving already"):
        promote(store, folders, "calcium", "reviewer-7")
    with pytest.raises(PromotionError, match="--by"):
        promote(store, folders, "calcium", "Jane Doe; drop table")
    assert history(store) == []


def test_rollbacks_undo_promotions_in_turn(folders: ModelFolders, store: Store) -> None:
    serving = folders.models_dir / "calcium"
    original = file_sha256(serving / "model.onnx")
    _candidate(folders.candidates_dir / "calcium", "0.3.0")
    promote(store, folders, "calcium", "a")
    _candidate(folders.candidates_dir / "calcium", "0.4.0")
    promote(store, folders, "calcium", "a")
    first = rollback(store, folders, "calcium", "b", "0.4.0 misses small lesions")
    assert (first.record.from_version, first.record.to_version) == ("0.4.0", "0.3.0")
    assert _version(serving) == "0.3.0"
    assert _version(folders.archive_dir / "calcium" / "0.4.0") == "0.4.0"
    rollback(store, folders, "calcium", "b")
    assert _version(serving) == "0.2.0"
    assert file_sha256(serving / "model.onnx") == original
    with pytest.raises(PromotionError, match="nothing to roll back to"):
        rollback(store, folders, "calcium", "b")
    assert [r.action for r in history(store)] == ["promote", "promote", "rollback", "rollback"]
    assert rollback_target(history(store)) is None


def _cli(*args: str, data_dir: Path, models_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cardiogate", "models", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "CARDIOGATE_DATA_DIR": str(data_dir),
            "CARDIOGATE_MODELS_DIR": str(models_dir),
        },
        check=False,
    )


@pytest.mark.slow
def test_the_cli_promotes_rolls_back_and_shows_the_history(
    tmp_path: Path, folders: ModelFolders
) -> None:
    Store(f"sqlite:///{tmp_path / 'cardiogate.db'}").create_schema()
    _candidate(folders.candidates_dir / "calcium", "0.2.0-ft.1")
    cli = partial(_cli, data_dir=tmp_path, models_dir=folders.models_dir)
    promoted = cli("promote", "calcium", "--by", "reviewer-7", "--note", "ok")
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout == (
        "promoted calcium: cardiogate-calcium-unet 0.2.0 -> 0.2.0-ft.1 by reviewer-7; version "
        f"0.2.0 archived in {folders.archive_dir / 'calcium' / '0.2.0'}; a running service "
        "picks the change up at restart\n"
    )
    again = cli("promote", "calcium", "--by", "reviewer-7")
    assert again.returncode == 1
    assert "no candidate model for task calcium" in again.stderr
    rolled = cli("rollback", "calcium", "--by", "reviewer-8")
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back calcium: cardiogate-calcium-unet 0.2.0-ft.1 -> 0.2.0" in rolled.stdout
    shown = cli("history", "calcium")
    assert shown.returncode == 0, shown.stderr
    assert [line[21:] for line in shown.stdout.splitlines()] == [
        "calcium    promote  0.2.0 -> 0.2.0-ft.1  by reviewer-7  (ok)",
        "calcium    rollback 0.2.0-ft.1 -> 0.2.0  by reviewer-8",
    ]
