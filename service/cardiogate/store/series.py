"""The ``series`` table: assembly (``receiving`` to ``complete``), the attributes routing
looks at, and the summaries the API shows (with their instances counted)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, select, update

from cardiogate.store.instances import counts_by_series, instance_count
from cardiogate.store.records import SeriesAttributes, SeriesSummary, StudySeries
from cardiogate.store.tables import Job, Series

_series: Table = Series.__table__  # type: ignore[assignment]
_jobs: Table = Job.__table__  # type: ignore[assignment]


def complete_quiet(conn: Connection, cutoff: datetime, now: datetime) -> list[str]:
    """Mark ``receiving`` series with nothing new since ``cutoff`` as complete. Replicas
    assembling at once each complete a series at most once: on PostgreSQL the rows
    another replica is completing (or a listener is updating) are skipped this round."""
    quiet = select(_series.c.series_instance_uid).where(
        _series.c.state == "receiving", _series.c.last_received_at < cutoff
    )
    if conn.dialect.name == "postgresql":
        quiet = quiet.with_for_update(skip_locked=True)
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


def first_received(conn: Connection, SeriesInstanceUIDs: Collection[str]) -> dict[str, datetime]:
    """When the first instance of each series was received (the start of its turnaround)."""
    rows = conn.execute(
        select(_series.c.series_instance_uid, _series.c.first_received_at).where(
            _series.c.series_instance_uid.in_(list(SeriesInstanceUIDs))
        )
    )
    return {uid: received for uid, received in rows}


def unrouted_complete(conn: Connection) -> list[str]:
    """Complete series with no job row (completed just before a crash, say)."""
    return list(
        conn.execute(
            select(_series.c.series_instance_uid)
            .outerjoin(_jobs, _jobs.c.series_instance_uid == _series.c.series_instance_uid)
            .where(_series.c.state == "complete", _jobs.c.id.is_(None))
        ).scalars()
    )


# -- routing --------------------------------------------------------------------------------


def _attributes(m: Any) -> SeriesAttributes:
    """The routing attributes of a series row selected with :func:`.instance_count`."""
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


def attributes(conn: Connection, SeriesInstanceUID: str) -> SeriesAttributes | None:
    row = conn.execute(
        select(_series, instance_count()).where(_series.c.series_instance_uid == SeriesInstanceUID)
    ).first()
    return None if row is None else _attributes(row._mapping)


def of_study_with_jobs(conn: Connection, StudyInstanceUID: str) -> list[StudySeries]:
    """Every series of a study with its routing attributes and its job, if any (one
    query): what the choice of one reconstruction per study compares."""
    rows = conn.execute(
        select(
            _series,
            instance_count(),
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
            _attributes(m),
            m["series_number"],
            m["task"],
            m["job_state"],
            m["job_reason"],
        )
        for m in (row._mapping for row in rows)
    ]


# -- summaries (API) ------------------------------------------------------------------------


def summary_query() -> Any:
    """Series rows with their instance, frame and byte counts (the last three columns)."""
    counts = counts_by_series()
    return select(
        _series,
        func.coalesce(counts.c.n, 0),
        func.coalesce(counts.c.frames, 0),
        func.coalesce(counts.c.bytes, 0),
    ).outerjoin(counts, counts.c.uid == _series.c.series_instance_uid)


def summary(row: Any) -> SeriesSummary:
    """A row of :func:`summary_query` as a record."""
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


def get(conn: Connection, SeriesInstanceUID: str) -> SeriesSummary | None:
    row = conn.execute(
        summary_query().where(_series.c.series_instance_uid == SeriesInstanceUID)
    ).first()
    return None if row is None else summary(row)


def of_studies(conn: Connection, StudyInstanceUIDs: Collection[str]) -> list[SeriesSummary]:
    """The series of the studies, by SeriesNumber then first received."""
    if not StudyInstanceUIDs:
        return []
    rows = conn.execute(
        summary_query()
        .where(_series.c.study_instance_uid.in_(list(StudyInstanceUIDs)))
        .order_by(_series.c.series_number, _series.c.first_received_at)
    ).all()
    return [summary(r) for r in rows]
