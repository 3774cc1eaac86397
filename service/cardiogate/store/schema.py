"""The schema's migrations (Alembic), applied at start-up on SQLite and PostgreSQL alike.

There is no alembic.ini: the script directory ships inside the package
(``cardiogate/store/migrations``). A database that ``create_all`` made before Alembic
arrived has the tables but no ``alembic_version``; it is stamped at the revision its
schema equals first (the baseline, or the review columns when it has them).
On PostgreSQL an advisory lock makes replicas that start together migrate one at a time;
within a process a lock does (Alembic's ``context`` and ``op`` are process globals).
"""

from __future__ import annotations

import logging
import threading

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

log = logging.getLogger(__name__)

BASELINE = "0001_baseline"
REVIEW_PER_RESULT = "0002_review_per_result"
# The schemas create_all made before migrations, newest first: the revision each equals and
# a (table, column) that only it and later ones have.
_PRE_ALEMBIC = ((REVIEW_PER_RESULT, ("jobs", "needs_review")), (BASELINE, ("studies", None)))
_SCRIPTS = "cardiogate.store:migrations"
_LOCK_KEY = 0x63617264  # pg_advisory_xact_lock key: "card"
_in_process = threading.Lock()


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPTS)
    config.attributes["connection"] = conn
    return config


def head() -> str:
    """The newest revision the code knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    if revision is None:
        raise RuntimeError("the migration scripts have no head revision")
    return revision


def current(conn: Connection) -> str | None:
    """The revision the database is at (None: not under Alembic)."""
    return MigrationContext.configure(conn).get_current_revision()


def _pre_alembic_revision(conn: Connection) -> str | None:
    """The revision a database made by ``create_all`` equals (None: not such a database)."""
    inspector = inspect(conn)
    tables = set(inspector.get_table_names())
    if "alembic_version" in tables:
        return None
    for revision, (table, column) in _PRE_ALEMBIC:
        if table in tables and (
            column is None or column in {c["name"] for c in inspector.get_columns(table)}
        ):
            return revision
    return None


def migrate(engine: Engine) -> None:
    """Bring the database to the head revision in one transaction."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # our own line says what changed
    with _in_process, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        config = _config(conn)
        found = _pre_alembic_revision(conn)
        if found is not None:
            command.stamp(config, found)
            log.warning("database schema predates migrations: stamped as %s", found)
        before = current(conn)
        command.upgrade(config, "head")
        after = current(conn)
    if before != after:
        log.info("database schema migrated from %s to %s", before or "empty", after)
