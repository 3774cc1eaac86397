"""Promotion and rollback of a task's serving model: explicit commands, recorded with who,
what and when (``model_promotions``); a running service picks the change up at restart.

``promote``: the serving folder goes to ``<archive>/<task>/<version>/`` and the candidate
(``<candidates>/<task>/``, its card's checksum verified first) becomes the serving folder.
``rollback``: the serving folder is archived and the version the latest promotion not yet
rolled back replaced comes back from the archive (promotions form a stack: two rollbacks
undo two promotions).

Folders move safely: every copy is made in ``<models_dir>/.staging/`` (two levels down, so
the engine's ``*/card.json`` never loads it) and verified before two renames swap it in; a
failed swap puts the serving folder back, so the task is never left without a model.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Table, select

from cardiogate.errors import CardiogateError
from cardiogate.inference.card import CARD_FILE, CardError, ModelCard, read_card
from cardiogate.store import Store
from cardiogate.store.store import utcnow
from cardiogate.store.tables import ModelPromotion

Action = Literal["promote", "rollback"]
_promotions: Table = ModelPromotion.__table__  # type: ignore[assignment]
_REVIEWER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MAX_NOTE = 2000
STAGING = ".staging"


class PromotionError(CardiogateError):
    """A promotion or rollback that cannot be done; nothing was changed."""


@dataclass(frozen=True, slots=True)
class ModelFolders:
    """Where the serving models, the candidates and the archive live."""

    models_dir: Path
    candidates_dir: Path
    archive_dir: Path


@dataclass(frozen=True, slots=True)
class PromotionRecord:
    task: str
    action: str
    from_version: str | None
    to_version: str
    by: str
    note: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Done:
    """What a command did: the record, and where the replaced model was archived."""

    record: PromotionRecord
    model_name: str
    archived: Path | None


def _card(folder: Path) -> dict[str, object]:
    """A model folder's card as JSON, tolerantly (a damaged card reads as empty)."""
    try:
        card = json.loads((folder / CARD_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return card if isinstance(card, dict) else {}


def _card_version(folder: Path) -> str | None:
    """The version a (possibly damaged) model folder's card names, if readable."""
    version = _card(folder).get("version")
    return version if isinstance(version, str) and version else None


def serving_folder(folders: ModelFolders, task: str) -> Path | None:
    """The serving model folder of ``task`` (``<models_dir>/*/card.json`` naming it)."""
    for card in sorted(folders.models_dir.glob(f"*/{CARD_FILE}")):
        if _card(card.parent).get("task") == task:
            return card.parent
    return None


def _verified(folder: Path, task: str, what: str) -> ModelCard:
    try:
        card = read_card(folder)
    except CardError as e:
        raise PromotionError(f"{what} for task {task} refused: {e}") from e
    if card.task != task:
        raise PromotionError(f"{what} in {folder} is for task {card.task}, not {task}")
    return card


def _check(by: str, note: str) -> None:
    if not _REVIEWER_ID.match(by):
        raise PromotionError(
            "--by: a pseudonymous id of 1-64 letters, digits, '.', '_', '@' or '-'"
        )
    if len(note) > MAX_NOTE:
        raise PromotionError(f"--note: at most {MAX_NOTE} characters ({len(note)} given)")


def _copy(source: Path, staging: Path, name: str) -> Path:
    """A verified copy of ``source`` under ``staging``."""
    target = staging / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target


def _archive(folders: ModelFolders, task: str, serving: Path, staging: Path) -> Path:
    """``serving`` copied to ``<archive>/<task>/<version>/`` (kept when an identical copy
    is there already); refused when a different model holds that version there."""
    version = _card_version(serving) or "unknown"
    target = folders.archive_dir / task / version
    if target.exists():
        if _card(target).get("sha256") == _card(serving).get("sha256"):
            return target
        raise PromotionError(
            f"the archive already holds a different model as {target}; move it away first"
        )
    copy = _copy(serving, staging, f"archive-{task}")
    target.parent.mkdir(parents=True, exist_ok=True)
    copy.rename(target)
    return target


def _swap(new: Path, serving: Path, staging: Path) -> None:
    """Put the verified copy ``new`` in place of ``serving`` with two renames; if the
    second fails, the first is undone."""
    old = staging / f"old-{serving.name}"
    if old.exists():
        shutil.rmtree(old)
    had = serving.exists()
    if had:
        serving.rename(old)
    try:
        new.rename(serving)
    except OSError as e:
        if had:
            old.rename(serving)
        raise PromotionError(f"could not put the new model in {serving}: the old one stays") from e
    if had:
        shutil.rmtree(old)


def _record(conn: Connection, record: PromotionRecord) -> None:
    conn.execute(
        _promotions.insert().values(
            task=record.task,
            action=record.action,
            from_version=record.from_version,
            to_version=record.to_version,
            by=record.by,
            note=record.note,
            created_at=record.created_at,
        )
    )


def promote(store: Store, folders: ModelFolders, task: str, by: str, note: str = "") -> Done:
    """The candidate of ``task`` becomes its serving model; the serving one is archived."""
    _check(by, note)
    candidate = folders.candidates_dir / task
    if not (candidate / CARD_FILE).is_file():
        raise PromotionError(f"no candidate model for task {task}: {candidate} has no {CARD_FILE}")
    card = _verified(candidate, task, "the candidate model")
    serving = serving_folder(folders, task)
    current = None if serving is None else _card_version(serving)
    if serving is not None and current == card.version:
        raise PromotionError(
            f"the candidate for task {task} is version {card.version}, which is serving already"
        )
    staging = folders.models_dir / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    target = serving or folders.models_dir / task
    record = PromotionRecord(task, "promote", current, card.version, by, note, utcnow())
    with store.transaction() as conn:
        _record(conn, record)  # rolled back if a move below fails
        new = _copy(candidate, staging, f"new-{task}")
        _verified(new, task, "the copied candidate model")
        archived = None if serving is None else _archive(folders, task, serving, staging)
        _swap(new, target, staging)
    shutil.rmtree(candidate)  # promoted: no longer a candidate
    return Done(record, card.name, archived)


def history(store: Store, task: str | None = None) -> list[PromotionRecord]:
    """Every promotion and rollback (of ``task``), oldest first."""
    query = select(_promotions).order_by(_promotions.c.id)
    if task is not None:
        query = query.where(_promotions.c.task == task)
    with store.transaction() as conn:
        return [
            PromotionRecord(
                r.task, r.action, r.from_version, r.to_version, r.by, r.note, r.created_at
            )
            for r in conn.execute(query)
        ]


def rollback_target(records: list[PromotionRecord]) -> str | None:
    """The version the latest promotion not yet rolled back replaced (None: nothing)."""
    stack: list[str | None] = []
    for record in records:
        if record.action == "promote":
            stack.append(record.from_version)
        elif stack:
            stack.pop()
    return stack[-1] if stack else None


def rollback(store: Store, folders: ModelFolders, task: str, by: str, note: str = "") -> Done:
    """The serving model of ``task`` is archived and the one it replaced comes back."""
    _check(by, note)
    serving = serving_folder(folders, task)
    if serving is None:
        raise PromotionError(f"no serving model for task {task} in {folders.models_dir}")
    version = rollback_target(history(store, task))
    if version is None:
        raise PromotionError(f"nothing to roll back to for task {task}: no promotion to undo")
    restored = folders.archive_dir / task / version
    if not (restored / CARD_FILE).is_file():
        raise PromotionError(
            f"cannot roll task {task} back to version {version}: {restored} has no {CARD_FILE}"
        )
    card = _verified(restored, task, "the archived model")
    staging = folders.models_dir / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    current = _card_version(serving)
    record = PromotionRecord(task, "rollback", current, version, by, note, utcnow())
    with store.transaction() as conn:
        _record(conn, record)
        new = _copy(restored, staging, f"new-{task}")
        _verified(new, task, "the copied archived model")
        archived = _archive(folders, task, serving, staging)
        _swap(new, serving, staging)
    return Done(record, card.name, archived)
