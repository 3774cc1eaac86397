"""Reading the ``jobs`` table: one job, a page of jobs, a study's jobs, counts per state.

The state changes are :mod:`.jobs` (:class:`~.jobs.JobQueue` reads through these too)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Table, func, select

from cardiogate.store import series
from cardiogate.store.records import IGNORED, JobRecord, job_record
from cardiogate.store.tables import Job

if TYPE_CHECKING:
    from cardiogate.store.store import Store

_jobs: Table = Job.__table__  # type: ignore[assignment]


class JobReads:
    """The job rows of ``store``, read."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, job_id: int) -> JobRecord | None:
        with self.store.transaction() as conn:
            row = conn.execute(select(_jobs).where(_jobs.c.id == job_id)).first()
        return None if row is None else job_record(row)

    def for_series(self, SeriesInstanceUID: str) -> JobRecord | None:
        with self.store.transaction() as conn:
            row = conn.execute(
                select(_jobs).where(_jobs.c.series_instance_uid == SeriesInstanceUID)
            ).first()
        return None if row is None else job_record(row)

    def of_study(self, StudyInstanceUID: str) -> list[JobRecord]:
        """The jobs of a study's series, oldest first."""
        with self.store.transaction() as conn:
            rows = conn.execute(
                select(_jobs)
                .where(_jobs.c.study_instance_uid == StudyInstanceUID)
                .order_by(_jobs.c.created_at, _jobs.c.id)
            )
            return [job_record(r) for r in rows]

    def page(
        self,
        limit: int,
        offset: int,
        *,
        state: str | None = None,
        task: str | None = None,
        since: datetime | None = None,
    ) -> tuple[list[JobRecord], int]:
        """Jobs newest first (by creation) with the total that match the filters;
        ``since`` keeps jobs created at or after it."""
        where = []
        if state is not None:
            where.append(_jobs.c.state == state)
        if task is not None:
            where.append(_jobs.c.task == task)
        if since is not None:
            where.append(_jobs.c.created_at >= since)
        with self.store.transaction() as conn:
            total = conn.execute(select(func.count()).select_from(_jobs).where(*where)).scalar_one()
            rows = conn.execute(
                select(_jobs)
                .where(*where)
                .order_by(_jobs.c.created_at.desc(), _jobs.c.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [job_record(r) for r in rows], int(total)

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state (states with none are absent)."""
        with self.store.transaction() as conn:
            rows = conn.execute(select(_jobs.c.state, func.count()).group_by(_jobs.c.state))
            return {state: int(n) for state, n in rows}

    def unrouted_complete_series(self) -> list[str]:
        """Complete series with no job row (completed just before a crash, say)."""
        with self.store.transaction() as conn:
            return series.unrouted_complete(conn)

    def first_received_at(self, SeriesInstanceUID: str) -> datetime | None:
        with self.store.transaction() as conn:
            return series.first_received(conn, [SeriesInstanceUID]).get(SeriesInstanceUID)


def jobs_page(store: Store, limit: int, *, ignored: bool) -> tuple[list[JobRecord], int]:
    """The newest ``limit`` jobs (by creation) that are ignored, or that are not, and how
    many there are in all (for the status page)."""
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
