"""The ``instances`` table, and the ingest path that writes it with its study and series.

The ingest path runs once per received instance, so it sends prepared SQL
(:mod:`.ingest_sql`) straight to the driver: building SQLAlchemy statements per call cost
more than the fsync. The study, series and instance upserts are one transaction.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, DateTime, Engine, Table, func, select

from cardiogate.errors import StoreError
from cardiogate.store import ingest_sql
from cardiogate.store.records import InstanceRecord, StoredInstance
from cardiogate.store.tables import Instance, Series

if TYPE_CHECKING:
    from cardiogate.store.store import Store

_instances: Table = Instance.__table__  # type: ignore[assignment]
_series: Table = Series.__table__  # type: ignore[assignment]


class Ingest:
    """The prepared upserts of received instances, on behalf of replica ``replica_id``."""

    def __init__(self, engine: Engine, replica_id: str) -> None:
        self.engine = engine
        self.replica_id = replica_id
        self._bind_datetime: Any = DateTime().bind_processor(engine.dialect) or (lambda v: v)
        self._get_instance_sql = self._sql(ingest_sql.GET_INSTANCE)
        self._study_sql = self._sql(ingest_sql.UPSERT_STUDY)
        self._series_state_sql = self._sql(ingest_sql.SERIES_STATE)
        self._series_sql = self._sql(ingest_sql.UPSERT_SERIES)
        self._instance_sql = self._sql(ingest_sql.UPSERT_INSTANCE)

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

    def record_instance(self, rec: InstanceRecord, now: datetime) -> bool:
        """Upsert the study, series and instance rows in one transaction.

        Returns True when the instance re-opened a series that had been complete.
        """
        params = {
            "study": rec.StudyInstanceUID,
            "series": rec.SeriesInstanceUID,
            "sop": rec.SOPInstanceUID,
            "now": self._bind_datetime(now),
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
            "replica": self.replica_id,
        }
        with self._driver() as cur:
            cur.execute(self._study_sql, params)
            cur.execute(self._series_state_sql, params)
            before = cur.fetchone()
            cur.execute(self._series_sql, params)
            cur.execute(self._instance_sql, params)
        return before is not None and before[0] == "complete"


def instance_count() -> Any:
    """The number of instances of the series row in the enclosing query, as the column
    ``instance_count`` (a correlated subquery on ``series``)."""
    return (
        select(func.count())
        .where(_instances.c.series_instance_uid == _series.c.series_instance_uid)
        .scalar_subquery()
        .label("instance_count")
    )


def known_paths(conn: Connection) -> set[str]:
    """Every spool path with a row (used to find orphans after a crash)."""
    return set(conn.execute(select(_instances.c.path)).scalars())


def paths(conn: Connection, SeriesInstanceUID: str) -> list[str]:
    """Spool paths of a series' instances, in InstanceNumber order (geometry sorts later)."""
    return list(
        conn.execute(
            select(_instances.c.path)
            .where(_instances.c.series_instance_uid == SeriesInstanceUID)
            .order_by(_instances.c.instance_number, _instances.c.sop_instance_uid)
        ).scalars()
    )


def input_digest(conn: Connection, SeriesInstanceUID: str) -> str:
    """A digest of the series' instances as stored (SOP Instance UIDs and sizes): it
    changes when an instance arrives late or is replaced by different bytes."""
    rows = conn.execute(
        select(_instances.c.sop_instance_uid, _instances.c.size_bytes)
        .where(_instances.c.series_instance_uid == SeriesInstanceUID)
        .order_by(_instances.c.sop_instance_uid)
    ).all()
    digest = hashlib.sha256()
    for uid, size in rows:
        digest.update(f"{uid}:{size};".encode())
    return digest.hexdigest()


def counts_by_series() -> Any:
    """Per series: its instances, frames and bytes (columns ``uid``, ``n``, ``frames``,
    ``bytes``), as a subquery to join."""
    return (
        select(
            _instances.c.series_instance_uid.label("uid"),
            func.count().label("n"),
            func.coalesce(func.sum(_instances.c.number_of_frames), 0).label("frames"),
            func.coalesce(func.sum(_instances.c.size_bytes), 0).label("bytes"),
        )
        .group_by(_instances.c.series_instance_uid)
        .subquery()
    )


def first_instance_paths(store: Store, SeriesInstanceUIDs: Collection[str]) -> dict[str, str]:
    """The spool path of each series' first instance (lowest InstanceNumber, one without
    last, then SOPInstanceUID); a series without instances is absent."""
    if not SeriesInstanceUIDs:
        return {}
    rank = (
        func.row_number()
        .over(
            partition_by=_instances.c.series_instance_uid,
            order_by=(
                _instances.c.instance_number.is_(None),  # none last, on either database
                _instances.c.instance_number,
                _instances.c.sop_instance_uid,
            ),
        )
        .label("rank")
    )
    ranked = (
        select(_instances.c.series_instance_uid, _instances.c.path, rank)
        .where(_instances.c.series_instance_uid.in_(list(SeriesInstanceUIDs)))
        .subquery()
    )
    with store.transaction() as conn:
        rows = conn.execute(
            select(ranked.c.series_instance_uid, ranked.c.path).where(ranked.c.rank == 1)
        )
        return {uid: path for uid, path in rows}
