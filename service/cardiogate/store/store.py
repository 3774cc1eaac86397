"""The store's entry point: the engine and its transactions, and the queries the rest of
the service calls on it, over SQLAlchemy 2 Core, on SQLite or PostgreSQL (psycopg 3) alike.
Each table's queries live in its own module (:mod:`.instances`, :mod:`.series`,
:mod:`.studies`, :mod:`.jobs`, :mod:`.outbox`, ...); the schema comes from the migrations
(:mod:`.schema`).

SQLite runs in WAL mode with ``synchronous=FULL``: a committed row survives a crash of the
process and of the machine, which is what lets the SCP acknowledge an instance.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from alembic.util import CommandError as AlembicError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError

from cardiogate.errors import StoreError
from cardiogate.store import instances, series, studies
from cardiogate.store.records import (
    InstanceRecord,
    SeriesAttributes,
    SeriesSummary,
    StoredInstance,
    StudySeries,
    StudySummary,
)
from cardiogate.store.replicas import Replica
from cardiogate.store.schema import migrate

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """Naive UTC now, the form every timestamp column holds."""
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """Database access for studies, series and instances, on behalf of ``replica`` (which
    owns the series it receives; see :mod:`.replicas`)."""

    def __init__(self, url: str, replica: Replica | None = None) -> None:
        self.url = url
        self.replica = replica or Replica()
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["pool_size"] = 64  # one per concurrent association thread, no waiting
        else:  # a network database can drop idle connections; keep a few, open more at peaks
            kwargs["pool_pre_ping"] = True
            kwargs["max_overflow"] = 64
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._ingest = instances.Ingest(self.engine, self.replica.id)

    def create_schema(self) -> None:
        """Create or upgrade the schema to the code's revision (:mod:`.schema`)."""
        try:
            migrate(self.engine)
        except (SQLAlchemyError, AlembicError) as e:
            raise StoreError(f"cannot migrate the database schema: {type(e).__name__}") from e

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in a transaction, committed on success; database errors become
        :class:`StoreError` (for the store's own modules, such as the job queue)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StoreError(f"database error: {type(e).__name__}: {e.args[0]!s:.200}") from e

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    # -- ingest (:mod:`.instances`) ---------------------------------------------------------

    def get_instance(self, SOPInstanceUID: str) -> StoredInstance | None:
        return self._ingest.get_instance(SOPInstanceUID)

    def record_instance(self, rec: InstanceRecord, now: datetime | None = None) -> bool:
        """Upsert the study, series and instance rows in one transaction.

        Returns True when the instance re-opened a series that had been complete.
        """
        return self._ingest.record_instance(rec, now or utcnow())

    def known_paths(self) -> set[str]:
        """Every spool path with a row (used to find orphans after a crash)."""
        with self.transaction() as conn:
            return instances.known_paths(conn)

    # -- assembly and pipeline (:mod:`.series`, :mod:`.instances`) -------------------------

    def complete_quiet_series(self, cutoff: datetime, now: datetime | None = None) -> list[str]:
        """Mark ``receiving`` series with nothing new since ``cutoff`` as complete (each
        at most once when replicas assemble at once; see :func:`.series.complete_quiet`)."""
        with self.transaction() as conn:
            return series.complete_quiet(conn, cutoff, now or utcnow())

    def series_attributes(self, SeriesInstanceUID: str) -> SeriesAttributes | None:
        with self.transaction() as conn:
            return series.attributes(conn, SeriesInstanceUID)

    def series_of_study_with_jobs(self, StudyInstanceUID: str) -> list[StudySeries]:
        """Every series of a study with its routing attributes and its job, if any (one
        query): what the choice of one reconstruction per study compares."""
        with self.transaction() as conn:
            return series.of_study_with_jobs(conn, StudyInstanceUID)

    def instance_paths(self, SeriesInstanceUID: str) -> list[str]:
        """Spool paths of a series' instances, in InstanceNumber order (geometry sorts later)."""
        with self.transaction() as conn:
            return instances.paths(conn, SeriesInstanceUID)

    def input_digest(self, SeriesInstanceUID: str) -> str:
        """A digest of the series' instances as stored (SOP Instance UIDs and sizes): it
        changes when an instance arrives late or is replaced by different bytes."""
        with self.transaction() as conn:
            return instances.input_digest(conn, SeriesInstanceUID)

    # -- reading (API; :mod:`.studies`, :mod:`.series`) -----------------------------------

    def get_series(self, SeriesInstanceUID: str) -> SeriesSummary | None:
        with self.transaction() as conn:
            return series.get(conn, SeriesInstanceUID)

    def series_of_study(self, StudyInstanceUID: str) -> list[SeriesSummary]:
        with self.transaction() as conn:
            return series.of_studies(conn, [StudyInstanceUID])

    def list_studies(self, limit: int = 100, offset: int = 0) -> tuple[list[StudySummary], int]:
        """Studies, most recently received first, and the total count (three queries,
        whatever the page size)."""
        with self.transaction() as conn:
            return studies.page(conn, limit, offset)

    def get_study(self, StudyInstanceUID: str) -> StudySummary | None:
        with self.transaction() as conn:
            return studies.get(conn, StudyInstanceUID)
