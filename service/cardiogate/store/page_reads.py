"""Batched reads for the status page: a page of jobs with ignored ones apart, the first
instance of each series, and the timelines of many jobs, each in one query whatever the
number of jobs on the page."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from sqlalchemy import Table, func, select

from cardiogate.store.events import JobEventRecord
from cardiogate.store.jobs import IGNORED
from cardiogate.store.records import JobRecord, job_record
from cardiogate.store.store import Store
from cardiogate.store.tables import Instance, Job, JobEvent

_jobs: Table = Job.__table__  # type: ignore[assignment]
_instances: Table = Instance.__table__  # type: ignore[assignment]
_events: Table = JobEvent.__table__  # type: ignore[assignment]


def jobs_page(store: Store, limit: int, *, ignored: bool) -> tuple[list[JobRecord], int]:
    """The newest ``limit`` jobs (by creation) that are ignored, or that are not, and how
    many there are in all."""
    where = _jobs.c.state == IGNORED if ignored else _jobs.c.state != IGNORED
    with store.transaction() as conn:
        total = conn.execute(select(func.count()).select_from(_jobs).where(where)).scalar_one()
        rows = conn.execute(
            select(_jobs)
            .where(where)
            .order_by(_jobs.c.created_at.desc(), _jobs.c.id.desc())
            .limit(limit)
        )
        return [job_record(r) for r in rows], int(total)


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


def timelines(store: Store, job_ids: Collection[int]) -> dict[int, list[JobEventRecord]]:
    """Each job's events, oldest first (ties in the order they were written); a job with
    none is absent."""
    if not job_ids:
        return {}
    with store.transaction() as conn:
        rows = conn.execute(
            select(_events)
            .where(_events.c.job_id.in_(list(job_ids)))
            .order_by(_events.c.job_id, _events.c.at, _events.c.id)
        ).mappings()
        out: dict[int, list[JobEventRecord]] = defaultdict(list)
        for r in rows:
            out[r["job_id"]].append(
                JobEventRecord(r["job_id"], r["at"], r["event"], r["attempt"], r["detail"])
            )
        return dict(out)
