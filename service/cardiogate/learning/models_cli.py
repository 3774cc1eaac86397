"""``cardiogate models promote | rollback | history``: the commands of
:mod:`cardiogate.learning.promotion`, over the service's settings and database."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardiogate.config import ENV_PREFIX, load_settings
from cardiogate.errors import ConfigurationError
from cardiogate.logs import setup_logging

if TYPE_CHECKING:
    from cardiogate.learning.promotion import Done

RESTART = "a running service picks the change up at restart"


def add_models_parser(sub: Any) -> None:
    """The ``models`` command group on the CLI's subparsers ``sub``."""
    models = sub.add_parser("models", help="promote a candidate model, roll back, the history")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    promote_cmd = models_sub.add_parser(
        "promote", help="the task's candidate model becomes its serving model (archived before)"
    )
    rollback_cmd = models_sub.add_parser(
        "rollback", help="the model the latest promotion replaced comes back from the archive"
    )
    for cmd in (promote_cmd, rollback_cmd):
        cmd.add_argument("task", help="the task, e.g. calcium")
        cmd.add_argument("--by", required=True, help="who does it: a pseudonymous id")
        cmd.add_argument("--note", default="", help="why, for the history")
    history_cmd = models_sub.add_parser("history", help="every promotion and rollback")
    history_cmd.add_argument("task", nargs="?", default=None, help="only this task's")
    history_cmd.add_argument("--json", action="store_true", help="as JSON lines")
    for cmd in (promote_cmd, rollback_cmd, history_cmd):
        cmd.add_argument(
            "--models-dir", type=Path, default=None, help=f"the models ({ENV_PREFIX}MODELS_DIR)"
        )
        cmd.add_argument(
            "--data-dir", type=Path, default=None, help=f"the service's data ({ENV_PREFIX}DATA_DIR)"
        )
        cmd.add_argument(
            "--database-url",
            default=None,
            help=f"the service's database ({ENV_PREFIX}DATABASE_URL)",
        )


def _done(done: Done) -> str:
    r = done.record
    verb = "promoted" if r.action == "promote" else "rolled back"
    archived = f"; version {r.from_version} archived in {done.archived}" if done.archived else ""
    return (
        f"{verb} {r.task}: {done.model_name} {r.from_version or '(none)'} -> {r.to_version} "
        f"by {r.by}{archived}; {RESTART}\n"
    )


def run_models(args: argparse.Namespace) -> int:
    """Run a ``models`` command; the outcome on stdout."""
    from cardiogate.learning.promotion import ModelFolders, history, promote, rollback
    from cardiogate.store import Store

    settings = load_settings(
        models_dir=args.models_dir, data_dir=args.data_dir, database_url=args.database_url
    )
    setup_logging("WARNING", settings.log_format)
    if not settings.database_url and not (settings.data_dir / "cardiogate.db").is_file():
        raise ConfigurationError(f"no database in {settings.data_dir}")
    store = Store(settings.effective_database_url)
    folders = ModelFolders(settings.models_dir, settings.candidates_path, settings.archive_path)
    try:
        store.create_schema()
        if args.models_command == "history":
            records = history(store, args.task)
            for r in records:
                if args.json:
                    line = json.dumps({**asdict(r), "created_at": r.created_at.isoformat()})
                else:
                    line = (
                        f"{r.created_at:%Y-%m-%d %H:%M:%S}  {r.task:<10} {r.action:<9}"
                        f"{r.from_version or '(none)'} -> {r.to_version}  by {r.by}"
                        + (f"  ({r.note})" if r.note else "")
                    )
                sys.stdout.write(line + "\n")
            if not records and not args.json:
                sys.stdout.write("no promotion or rollback recorded\n")
            return 0
        act = promote if args.models_command == "promote" else rollback
        sys.stdout.write(_done(act(store, folders, args.task, args.by, args.note)))
    finally:
        store.dispose()
    return 0
