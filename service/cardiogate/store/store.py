"""The queries the rest of the service uses, over SQLAlchemy 2 Core, on SQLite or
PostgreSQL (psycopg 3) alike: the ingest upserts are ``INSERT ... ON CONFLICT``, which both
speak, and the schema comes from the migrations (:mod:`.schema`).

SQLite runs in WAL mode with ``synchronous=FULL``: a committed row survives a crash of the
process and of the machine, which is what lets the SCP acknowledge an instance.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from alembic.util import CommandError as AlembicError
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Table,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from cardiogate.errors import StoreError
from cardiogate.store import ingest_sql
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
from cardiogate.store.tables import Instance, Job, Series, Study

log = logging.getLogger(__name__)

_studies: Table = Study.__table__  # type: ignore[assignment]
_series: Table = Series.__table__  # type: ignore[assignment]
_instances: Table = Instance.__table__  # type: ignore[assignment]
_jobs: Table = Job.__table__  # type: ignore[assignment]


def _instance_count() -> Any:
    """A series row's number of instances, as the column ``instance_count``."""
    return (
        select(func.count())
        .where(_instances.c.series_instance_uid == _series.c.series_instance_uid)
        .scalar_subquery()
        .label("instance_count")
    )


def _series_attributes(m: Any) -> SeriesAttributes:
    """The routing attributes of a series row selected with :func:`_instance_count`."""
    return SeriesAttributes(
        SeriesInstanceUID=m["series_instance_uid"],
        StudyInstanceUID=m["study_instance_uid"],
        Modality=m["modality"],
        SOPClassUID=m["sop_class_uid"],
        SeriesDescription=m["series_description"],
        ProtocolName=m["protocol_name"],
        BodyPartExamined=m["body_part_examined"],
        ImageType=m["image_type"],
        ContrastBolusAgent=m["contrast_bolus_agent"],
        SliceThickness=m["slice_thickness"],
        instance_count=int(m["instance_count"]),
    )


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
        self._dialect = self.engine.dialect.name
        if self._dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._bind_datetime: Any = DateTime().bind_processor(self.engine.dialect) or (lambda v: v)
        self._get_instance_sql = self._sql(ingest_sql.GET_INSTANCE)
        self._study_sql = self._sql(ingest_sql.UPSERT_STUDY)
        self._series_state_sql = self._sql(ingest_sql.SERIES_STATE)
        self._series_sql = self._sql(ingest_sql.UPSERT_SERIES)
        self._instance_sql = self._sql(ingest_sql.UPSERT_INSTANCE)

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

    # -- ingest ---------------------------------------------------------------------------

    # The ingest path runs once per received instance, so it sends prepared SQL straight to
    # the driver: building SQLAlchemy statements per call cost more than the fsync.

    def _sql(self, statement: str) -> str:
        if self.engine.dialect.paramstyle in ("pyformat", "format"):
            return re.sub(r":(\w+)", r"%(\1)s", statement)
        return statement

    @contextmanager
    def _driver(self) -> Iterator[Any]:
        """A pooled DBAPI cursor; commits on success, rolls back on error."""
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            yield cursor
            conn.commit()
        except Exception as e:
            conn.rollback()
            if isinstance(e, self.engine.dialect.loaded_dbapi.Error):
                raise StoreError(f"database error: {type(e).__name__}: {e!s:.200}") from e
            raise
        finally:
            conn.close()

    def get_instance(self, SOPInstanceUID: str) -> StoredInstance | None:
        with self._driver() as cur:
            cur.execute(self._get_instance_sql, {"sop": SOPInstanceUID})
            row = cur.fetchone()
        if row is None:
            return None
        return StoredInstance(SOPInstanceUID, row[0], row[1], row[2])

    def record_instance(self, rec: InstanceRecord, now: datetime | None = None) -> bool:
        """Upsert the study, series and instance rows in one transaction.

        Returns True when the instance re-opened a series that had been complete.
        """
        params = {
            "study": rec.StudyInstanceUID,
            "series": rec.SeriesInstanceUID,
            "sop": rec.SOPInstanceUID,
            "now": self._bind_datetime(now or utcnow()),
            "modality": rec.Modality,
            "series_number": rec.SeriesNumber,
            "series_description": rec.SeriesDescription,
            "sop_class": rec.SOPClassUID,
            "body_part": rec.BodyPartExamined,
            "protocol": rec.ProtocolName,
            "image_type": rec.ImageType,
            "contrast": rec.ContrastBolusAgent,
            "thickness": rec.SliceThickness,
            "ts": rec.TransferSyntaxUID,
            "instance_number": rec.InstanceNumber,
            "frames": rec.NumberOfFrames,
            "path": rec.path,
            "size": rec.size_bytes,
            "calling": rec.calling_ae_title,
            "replica": self.replica.id,
        }
        with self._driver() as cur:
            cur.execute(self._study_sql, params)
            cur.execute(self._series_state_sql, params)
            before = cur.fetchone()
            cur.execute(self._series_sql, params)
            cur.execute(self._instance_sql, params)
        return before is not None and before[0] == "complete"

    def known_paths(self) -> set[str]:
        """Every spool path with a row (used to find orphans after a crash)."""
        with self.transaction() as conn:
            return set(conn.execute(select(_instances.c.path)).scalars())

    # -- assembly -------------------------------------------------------------------------

    def complete_quiet_series(self, cutoff: datetime, now: datetime | None = None) -> list[str]:
        """Mark ``receiving`` series with nothing new since ``cutoff`` as complete. Replicas
        assembling at once each complete a series at most once: on PostgreSQL the rows
        another replica is completing (or a listener is updating) are skipped this round."""
        now = now or utcnow()
        quiet = select(_series.c.series_instance_uid).where(
            _series.c.state == "receiving", _series.c.last_received_at < cutoff
        )
        if self._dialect == "postgresql":
            quiet = quiet.with_for_update(skip_locked=True)
        with self.transaction() as conn:
            stmt = (
                update(_series)
                .where(
                    _series.c.series_instance_uid.in_(quiet.scalar_subquery()),
                    _series.c.state == "receiving",
                    _series.c.last_received_at < cutoff,
                )
                .values(state="complete", completed_at=now)
                .returning(_series.c.series_instance_uid)
            )
            return list(conn.execute(stmt).scalars())

    # -- pipeline -------------------------------------------------------------------------

    def series_attributes(self, SeriesInstanceUID: str) -> SeriesAttributes | None:
        with self.transaction() as conn:
            row = conn.execute(
                select(_series, _instance_count()).where(
                    _series.c.series_instance_uid == SeriesInstanceUID
                )
            ).first()
        return None if row is None else _series_attributes(row._mapping)

    def series_of_study_with_jobs(self, StudyInstanceUID: str) -> list[StudySeries]:
        """Every series of a study with its routing attributes and its job, if any (one
        query): what the choice of one reconstruction per study compares."""
        with self.transaction() as conn:
            rows = conn.execute(
                select(
                    _series,
                    _instance_count(),
                    _jobs.c.task,
                    _jobs.c.state.label("job_state"),
                    _jobs.c.reason.label("job_reason"),
                )
                .outerjoin(_jobs, _jobs.c.series_instance_uid == _series.c.series_instance_uid)
                .where(_series.c.study_instance_uid == StudyInstanceUID)
                .order_by(_series.c.series_number, _series.c.series_instance_uid)
            ).all()
        return [
            StudySeries(
                _series_attributes(m),
                m["series_number"],
                m["task"],
                m["job_state"],
                m["job_reason"],
            )
            for m in (row._mapping for row in rows)
        ]

    def instance_paths(self, SeriesInstanceUID: str) -> list[str]:
        """Spool paths of a series' instances, in InstanceNumber order (geometry sorts later)."""
        with self.transaction() as conn:
            return list(
                conn.execute(
                    select(_instances.c.path)
                    .where(_instances.c.series_instance_uid == SeriesInstanceUID)
                    .order_by(_instances.c.instance_number, _instances.c.sop_instance_uid)
                ).scalars()
            )

    def input_digest(self, SeriesInstanceUID: str) -> str:
        """A digest of the series' instances as stored (SOP Instance UIDs and sizes): it
        changes when an instance arrives late or is replaced by different bytes."""
        with self.transaction() as conn:
            rows = conn.execute(
                select(_instances.c.sop_instance_uid, _instances.c.size_bytes)
                .where(_instances.c.series_instance_uid == SeriesInstanceUID)
                .order_by(_instances.c.sop_instance_uid)
            ).all()
        digest = hashlib.sha256()
        for uid, size in rows:
            digest.update(f"{uid}:{size};".encode())
        return digest.hexdigest()

    # -- reading (API) --------------------------------------------------------------------

    def _series_query(self) -> Any:
        counts = (
            select(
                _instances.c.series_instance_uid.label("uid"),
                func.count().label("n"),
                func.coalesce(func.sum(_instances.c.number_of_frames), 0).label("frames"),
                func.coalesce(func.sum(_instances.c.size_bytes), 0).label("bytes"),
            )
            .group_by(_instances.c.series_instance_uid)
            .subquery()
        )
        return select(
            _series,
            func.coalesce(counts.c.n, 0),
            func.coalesce(counts.c.frames, 0),
            func.coalesce(counts.c.bytes, 0),
        ).outerjoin(counts, counts.c.uid == _series.c.series_instance_uid)

    @staticmethod
    def _summary(row: Any) -> SeriesSummary:
        m = row._mapping
        n, frames, size = row[-3], row[-2], row[-1]
        return SeriesSummary(
            SeriesInstanceUID=m["series_instance_uid"],
            StudyInstanceUID=m["study_instance_uid"],
            Modality=m["modality"],
            SeriesNumber=m["series_number"],
            SeriesDescription=m["series_description"],
            SOPClassUID=m["sop_class_uid"],
            state=m["state"],
            instance_count=int(n),
            frame_count=int(frames),
            size_bytes=int(size),
            first_received_at=m["first_received_at"],
            last_received_at=m["last_received_at"],
            completed_at=m["completed_at"],
            reopened_count=m["reopened_count"],
        )

    def get_series(self, SeriesInstanceUID: str) -> SeriesSummary | None:
        with self.transaction() as conn:
            row = conn.execute(
                self._series_query().where(_series.c.series_instance_uid == SeriesInstanceUID)
            ).first()
        return None if row is None else self._summary(row)

    def series_of_study(self, StudyInstanceUID: str) -> list[SeriesSummary]:
        with self.transaction() as conn:
            rows = conn.execute(
                self._series_query()
                .where(_series.c.study_instance_uid == StudyInstanceUID)
                .order_by(_series.c.series_number, _series.c.first_received_at)
            ).all()
        return [self._summary(r) for r in rows]

    def list_studies(self, limit: int = 100, offset: int = 0) -> tuple[list[StudySummary], int]:
        """Studies, most recently received first, and the total count (three queries,
        whatever the page size)."""
        with self.transaction() as conn:
            total = conn.execute(select(func.count()).select_from(_studies)).scalar_one()
            rows = conn.execute(
                select(_studies)
                .order_by(_studies.c.last_received_at.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            uids = [r._mapping["study_instance_uid"] for r in rows]
            series_rows = (
                conn.execute(
                    self._series_query()
                    .where(_series.c.study_instance_uid.in_(uids))
                    .order_by(_series.c.series_number, _series.c.first_received_at)
                ).all()
                if uids
                else []
            )
        by_study: dict[str, list[SeriesSummary]] = {uid: [] for uid in uids}
        for r in series_rows:
            by_study[r._mapping["study_instance_uid"]].append(self._summary(r))
        return [_study_summary(r, by_study[r._mapping["study_instance_uid"]]) for r in rows], int(
            total
        )

    def get_study(self, StudyInstanceUID: str) -> StudySummary | None:
        with self.transaction() as conn:
            row = conn.execute(
                select(_studies).where(_studies.c.study_instance_uid == StudyInstanceUID)
            ).first()
        if row is None:
            return None
        return _study_summary(row, self.series_of_study(StudyInstanceUID))


def _study_summary(row: Any, series: list[SeriesSummary]) -> StudySummary:
    return StudySummary(
        StudyInstanceUID=row._mapping["study_instance_uid"],
        modalities=sorted({s.Modality for s in series if s.Modality}),
        series_count=len(series),
        instance_count=sum(s.instance_count for s in series),
        size_bytes=sum(s.size_bytes for s in series),
        first_received_at=row._mapping["first_received_at"],
        last_received_at=row._mapping["last_received_at"],
    )
