"""The queries the rest of the service uses, over SQLAlchemy 2 Core.

SQLite runs in WAL mode with ``synchronous=FULL``: a committed row survives a crash of the
process and of the machine, which is what lets the SCP acknowledge an instance.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    case,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from cardiogate.errors import StoreError
from cardiogate.store.records import (
    InstanceRecord,
    SeriesSummary,
    StoredInstance,
    StudySummary,
)
from cardiogate.store.tables import Base, Instance, Series, Study

log = logging.getLogger(__name__)

_studies: Table = Study.__table__  # type: ignore[assignment]
_series: Table = Series.__table__  # type: ignore[assignment]
_instances: Table = Instance.__table__  # type: ignore[assignment]


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
    """Database access for studies, series and instances."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, **kwargs)
        self._dialect = self.engine.dialect.name
        if self._dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def create_schema(self) -> None:
        try:
            Base.metadata.create_all(self.engine)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot create the database schema: {type(e).__name__}") from e

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StoreError(f"database error: {type(e).__name__}: {e.args[0]!s:.200}") from e

    def _insert(self, table: Any) -> Any:
        dialect = sqlite if self._dialect == "sqlite" else postgresql
        return dialect.insert(table)

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    # -- ingest ---------------------------------------------------------------------------

    def get_instance(self, SOPInstanceUID: str) -> StoredInstance | None:
        with self._begin() as conn:
            row = conn.execute(
                select(
                    _instances.c.series_instance_uid,
                    _instances.c.path,
                    _instances.c.sha256,
                    _instances.c.size_bytes,
                ).where(_instances.c.sop_instance_uid == SOPInstanceUID)
            ).first()
        if row is None:
            return None
        return StoredInstance(SOPInstanceUID, row[0], row[1], row[2], row[3])

    def record_instance(self, rec: InstanceRecord, now: datetime | None = None) -> bool:
        """Upsert the study, series and instance rows in one transaction.

        Returns True when the instance re-opened a series that had been complete.
        """
        now = now or utcnow()
        study_stmt = self._insert(_studies).values(
            study_instance_uid=rec.StudyInstanceUID, first_received_at=now, last_received_at=now
        )
        study_stmt = study_stmt.on_conflict_do_update(
            index_elements=[_studies.c.study_instance_uid], set_={"last_received_at": now}
        )
        series_stmt = self._insert(_series).values(
            series_instance_uid=rec.SeriesInstanceUID,
            study_instance_uid=rec.StudyInstanceUID,
            modality=rec.Modality,
            series_number=rec.SeriesNumber,
            series_description=rec.SeriesDescription,
            sop_class_uid=rec.SOPClassUID,
            body_part_examined=rec.BodyPartExamined,
            protocol_name=rec.ProtocolName,
            image_type=rec.ImageType,
            contrast_bolus_agent=rec.ContrastBolusAgent,
            slice_thickness=rec.SliceThickness,
            state="receiving",
            first_received_at=now,
            last_received_at=now,
            reopened_count=0,
        )
        series_stmt = series_stmt.on_conflict_do_update(
            index_elements=[_series.c.series_instance_uid],
            set_={
                "last_received_at": now,
                "state": "receiving",
                "completed_at": None,
                "reopened_count": _series.c.reopened_count
                + case((_series.c.state == "complete", 1), else_=0),
            },
        ).returning(_series.c.reopened_count, _series.c.first_received_at)
        values = {
            "sop_instance_uid": rec.SOPInstanceUID,
            "series_instance_uid": rec.SeriesInstanceUID,
            "sop_class_uid": rec.SOPClassUID,
            "transfer_syntax_uid": rec.TransferSyntaxUID,
            "instance_number": rec.InstanceNumber,
            "number_of_frames": rec.NumberOfFrames,
            "path": rec.path,
            "size_bytes": rec.size_bytes,
            "sha256": rec.sha256,
            "calling_ae_title": rec.calling_ae_title,
            "received_at": now,
        }
        instance_stmt = self._insert(_instances).values(**values, replaced_count=0)
        instance_stmt = instance_stmt.on_conflict_do_update(
            index_elements=[_instances.c.sop_instance_uid],
            set_={
                **{k: v for k, v in values.items() if k != "sop_instance_uid"},
                "replaced_count": _instances.c.replaced_count + 1,
            },
        )
        with self._begin() as conn:
            conn.execute(study_stmt)
            before = conn.execute(
                select(_series.c.state).where(
                    _series.c.series_instance_uid == rec.SeriesInstanceUID
                )
            ).scalar()
            conn.execute(series_stmt)
            conn.execute(instance_stmt)
        return before == "complete"

    def known_paths(self) -> set[str]:
        """Every spool path with a row (used to find orphans after a crash)."""
        with self._begin() as conn:
            return set(conn.execute(select(_instances.c.path)).scalars())

    # -- assembly -------------------------------------------------------------------------

    def complete_quiet_series(self, cutoff: datetime, now: datetime | None = None) -> list[str]:
        """Mark ``receiving`` series with nothing new since ``cutoff`` as complete."""
        now = now or utcnow()
        with self._begin() as conn:
            stmt = (
                update(_series)
                .where(_series.c.state == "receiving", _series.c.last_received_at < cutoff)
                .values(state="complete", completed_at=now)
                .returning(_series.c.series_instance_uid)
            )
            return list(conn.execute(stmt).scalars())

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
        with self._begin() as conn:
            row = conn.execute(
                self._series_query().where(_series.c.series_instance_uid == SeriesInstanceUID)
            ).first()
        return None if row is None else self._summary(row)

    def series_of_study(self, StudyInstanceUID: str) -> list[SeriesSummary]:
        with self._begin() as conn:
            rows = conn.execute(
                self._series_query()
                .where(_series.c.study_instance_uid == StudyInstanceUID)
                .order_by(_series.c.series_number, _series.c.first_received_at)
            ).all()
        return [self._summary(r) for r in rows]

    def list_studies(self, limit: int = 100, offset: int = 0) -> tuple[list[StudySummary], int]:
        """Studies, most recently received first, and the total count."""
        with self._begin() as conn:
            total = conn.execute(select(func.count()).select_from(_studies)).scalar_one()
            uids = list(
                conn.execute(
                    select(_studies.c.study_instance_uid)
                    .order_by(_studies.c.last_received_at.desc())
                    .limit(limit)
                    .offset(offset)
                ).scalars()
            )
        studies = [self.get_study(uid) for uid in uids]
        return [s for s in studies if s is not None], int(total)

    def get_study(self, StudyInstanceUID: str) -> StudySummary | None:
        with self._begin() as conn:
            row = conn.execute(
                select(_studies).where(_studies.c.study_instance_uid == StudyInstanceUID)
            ).first()
        if row is None:
            return None
        series = self.series_of_study(StudyInstanceUID)
        return StudySummary(
            StudyInstanceUID=StudyInstanceUID,
            modalities=sorted({s.Modality for s in series if s.Modality}),
            series_count=len(series),
            instance_count=sum(s.instance_count for s in series),
            size_bytes=sum(s.size_bytes for s in series),
            first_received_at=row._mapping["first_received_at"],
            last_received_at=row._mapping["last_received_at"],
        )
