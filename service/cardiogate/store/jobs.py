"""The job queue: one row per complete series, claimed by workers.

Every state change is one row update in one transaction, so a restart resumes from the
rows: queued jobs wait, and jobs this replica left ``running`` (a crash) are queued again.
A claim is a lease that the worker renews while the job runs; a claim that expired (its
replica died or hung) may be taken over by any replica that can read the job's input (see
:mod:`.replicas`). Each claim increments ``attempts``, and only the claim with the latest
count may finish the job, so a job is never reported twice. On PostgreSQL replicas claim
with ``FOR UPDATE SKIP LOCKED``; SQLite has one writer.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cardiogate.store import events
from cardiogate.store.job_reads import JobReads
from cardiogate.store.records import (
    DELIVERED,
    FAILED,
    IGNORED,
    QUEUED,
    REPORTED,
    RUNNING,
    SENT,
    STATES,
    DeliveredJob,
    JobRecord,
    job_record,
)
from cardiogate.store.reviews import MAX_REVIEW_REASON, result_digest
from cardiogate.store.series import first_received
from cardiogate.store.store import Store, utcnow
from cardiogate.store.tables import Job, OutboxItem, Series

__all__ = [
    "DELIVERED",
    "FAILED",
    "IGNORED",
    "QUEUED",
    "REPORTED",
    "RUNNING",
    "STATES",
    "JobQueue",
    "JobRecord",
    "deliver",
    "job_record",
]

_jobs: Table = Job.__table__  # type: ignore[assignment]
_series: Table = Series.__table__  # type: ignore[assignment]
_outbox: Table = OutboxItem.__table__  # type: ignore[assignment]

_NO_RESULT = {"result": None, "result_digest": None, "needs_review": False, "review_reason": None}


class JobQueue(JobReads):
    """Job rows and their state changes, for the store's replica; a claim lasts
    ``lease_seconds`` unless renewed (``clock`` is injectable for tests). Reads are
    :class:`~.job_reads.JobReads`'."""

    def __init__(
        self, store: Store, lease_seconds: float = 60.0, clock: Callable[[], datetime] = utcnow
    ) -> None:
        super().__init__(store)
        self.replica = store.replica
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock

    def _upsert(
        self,
        SeriesInstanceUID: str,
        StudyInstanceUID: str,
        only_new: bool,
        event: tuple[str, str | None, str],
        **values: Any,
    ) -> None:
        """Insert the series' job or reset it to ``values``, in one statement (replicas
        routing the same series at once cannot both insert), and add ``event`` (name,
        detail, why again) to its timeline; a job that existed is ``re-queued`` rather than
        ``queued``, its detail prefixed with why. The job belongs to the replica that holds
        the series' instances."""
        now = self.clock()
        owner = (
            select(_series.c.replica_id)
            .where(_series.c.series_instance_uid == SeriesInstanceUID)
            .scalar_subquery()
        )
        values = {
            "updated_at": now,
            "started_at": None,
            "finished_at": None,
            "claimed_by": None,
            "claim_expires_at": None,
            "replica_id": owner,
            **values,
        }
        dialect = postgresql if self.store.engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(_jobs).values(
            series_instance_uid=SeriesInstanceUID,
            study_instance_uid=StudyInstanceUID,
            attempts=0,
            created_at=now,
            **values,
        )
        stmt = (
            stmt.on_conflict_do_nothing(index_elements=["series_instance_uid"])
            if only_new
            else stmt.on_conflict_do_update(index_elements=["series_instance_uid"], set_=values)
        ).returning(_jobs.c.id)
        name, detail, again = event
        with self.store.transaction() as conn:
            existed = conn.execute(
                select(_jobs.c.id).where(_jobs.c.series_instance_uid == SeriesInstanceUID)
            ).first()
            job_id = conn.execute(stmt).scalar()
            if job_id is None:  # only_new, and the job was there
                return
            if existed is not None and name == events.QUEUED:
                name = events.REQUEUED
                detail = f"{again}; {detail}" if detail else again
            events.record(conn, job_id, name, now, detail=detail)

    def enqueue(
        self,
        SeriesInstanceUID: str,
        StudyInstanceUID: str,
        task: str,
        *,
        only_new: bool = False,
        detail: str | None = None,
        again: str = "series completed again",
    ) -> None:
        """Queue (or re-queue, for a series completed again) the analysis of a series;
        ``only_new`` leaves an existing job alone; ``detail`` (the routing rule that
        matched) goes on the timeline, after ``again`` (why) for a job queued again."""
        self._upsert(
            SeriesInstanceUID,
            StudyInstanceUID,
            only_new,
            (events.QUEUED, detail, again),
            task=task,
            state=QUEUED,
            reason=None,
            **_NO_RESULT,
        )

    def ignore(
        self, SeriesInstanceUID: str, StudyInstanceUID: str, reason: str, *, only_new: bool = False
    ) -> None:
        self._upsert(
            SeriesInstanceUID,
            StudyInstanceUID,
            only_new,
            (events.IGNORED, reason, ""),
            task=None,
            state=IGNORED,
            reason=reason,
            finished_at=self.clock(),
            **_NO_RESULT,
        )

    def _claimable(self, now: datetime) -> ColumnElement[bool]:
        expired = and_(_jobs.c.state == RUNNING, _jobs.c.claim_expires_at < now)
        return and_(or_(_jobs.c.state == QUEUED, expired), self.replica.may_use(_jobs.c.replica_id))

    def claim(self) -> JobRecord | None:
        """Take the oldest queued job, or a running one whose claim expired, that this
        replica can run; mark it running, leased to this replica (one transaction)."""
        now = self.clock()
        oldest = (
            select(_jobs.c.id)
            .where(self._claimable(now))
            .order_by(_jobs.c.updated_at, _jobs.c.id)
            .limit(1)
        )
        if self.store.engine.dialect.name == "postgresql":
            oldest = oldest.with_for_update(skip_locked=True)
        stmt = (
            update(_jobs)
            .where(_jobs.c.id == oldest.scalar_subquery(), self._claimable(now))
            .values(
                state=RUNNING,
                started_at=now,
                updated_at=now,
                attempts=_jobs.c.attempts + 1,
                claimed_by=self.replica.id,
                claim_expires_at=now + self.lease,
            )
            .returning(*_jobs.c)
        )
        with self.store.transaction() as conn:
            row = conn.execute(stmt).first()
            if row is not None:
                # read the clock again: ``now`` predates any wait for the write lock, during
                # which the job's ``queued`` event may have been written with a later time
                started = max(now, self.clock())
                events.record(conn, row.id, events.STARTED, started, attempt=row.attempts)
        return None if row is None else job_record(row)

    def _held(self, job: JobRecord) -> ColumnElement[bool]:
        """The job is still running under this claim (nobody re-queued or took it over)."""
        return and_(
            _jobs.c.id == job.id,
            _jobs.c.state == RUNNING,
            _jobs.c.claimed_by == self.replica.id,
            _jobs.c.attempts == job.attempts,
        )

    def renew(self, jobs: Collection[JobRecord]) -> set[int]:
        """Extend the lease of claims still held; returns the ids of those."""
        if not jobs:
            return set()
        now = self.clock()
        with self.store.transaction() as conn:
            return set(
                conn.execute(
                    update(_jobs)
                    .where(or_(*(self._held(j) for j in jobs)))
                    .values(claim_expires_at=now + self.lease)
                    .returning(_jobs.c.id)
                ).scalars()
            )

    def finish(
        self,
        job: int | JobRecord,
        result_json: str,
        model_name: str,
        model_version: str,
        provider: str,
        *,
        review_reason: str | None = None,
        also: Callable[[Connection], None] | None = None,
        warnings: Sequence[str] = (),
    ) -> bool:
        """Mark a running job reported with its result, flagged ``needs_review`` when a
        ``review_reason`` is given; ``also`` runs in the same transaction (staging its
        outbox rows), only if the job was still running (under this claim, when given the
        claimed record); ``warnings`` (repairs made on the way) go on its timeline. False
        when it was not (the series was completed again meanwhile
        and the job re-queued, or the claim expired and another replica took it over)."""
        now = self.clock()
        detail = f"{model_name} {model_version} on {provider}"
        if review_reason is not None:
            detail += "; needs review"

        def record(conn: Connection, job_id: int) -> None:
            events.record_many(conn, job_id, events.WARNING, now, warnings)
            events.record(conn, job_id, events.REPORTED, now, detail=detail)
            if also is not None:
                also(conn)

        return self._set(
            job,
            record,
            state=REPORTED,
            reason=None,
            result=result_json,
            result_digest=result_digest(result_json),
            needs_review=review_reason is not None,
            review_reason=None if review_reason is None else review_reason[:MAX_REVIEW_REASON],
            model_name=model_name,
            model_version=model_version,
            provider=provider,
            finished_at=now,
        )

    def fail(self, job: int | JobRecord, reason: str) -> bool:
        """Mark a running job failed for ``reason`` (kept on its timeline too)."""
        return self._end(job, FAILED, reason)

    def not_analysable(self, job: int | JobRecord, reason: str) -> bool:
        """Mark a running job ignored: its series is valid but not what its task is made
        for (``NotAnalysableError``); ``reason`` says what it is."""
        return self._end(job, IGNORED, reason)

    def _end(self, job: int | JobRecord, state: str, reason: str) -> bool:
        now = self.clock()
        reason = reason[:2000]

        def record(conn: Connection, job_id: int) -> None:
            events.record(conn, job_id, state, now, detail=reason)

        return self._set(job, record, state=state, reason=reason, finished_at=now)

    def _set(
        self,
        job: int | JobRecord,
        also: Callable[[Connection, int], None] | None,
        **values: Any,
    ) -> bool:
        job_id = job.id if isinstance(job, JobRecord) else job
        held = (
            self._held(job)
            if isinstance(job, JobRecord)
            else and_(_jobs.c.id == job, _jobs.c.state == RUNNING)
        )
        values |= {"updated_at": self.clock(), "claim_expires_at": None}
        with self.store.transaction() as conn:
            updated = conn.execute(update(_jobs).where(held).values(**values)).rowcount
            if updated and also is not None:
                also(conn, job_id)
        return bool(updated)

    def ignore_queued(self, SeriesInstanceUID: str, reason: str) -> bool:
        """Turn the series' job ``ignored`` for ``reason`` if it is still queued (another
        reconstruction of its study is scored, say). One conditional update: a job that a
        worker claimed meanwhile is left alone (False)."""
        now = self.clock()
        reason = reason[:2000]
        with self.store.transaction() as conn:
            job_id = conn.execute(
                update(_jobs)
                .where(_jobs.c.series_instance_uid == SeriesInstanceUID, _jobs.c.state == QUEUED)
                .values(state=IGNORED, task=None, reason=reason, finished_at=now, updated_at=now)
                .returning(_jobs.c.id)
            ).scalar()
            if job_id is None:
                return False
            events.record(conn, job_id, events.IGNORED, now, detail=reason)
        return True

    def requeue(self, job_ids: list[int]) -> int:
        """Queue reported jobs again (their outbox must be rebuilt); returns how many."""
        if not job_ids:
            return 0
        now = self.clock()
        with self.store.transaction() as conn:
            ids = conn.execute(
                update(_jobs)
                .where(_jobs.c.id.in_(job_ids), _jobs.c.state == REPORTED)
                .values(state=QUEUED, started_at=None, updated_at=now)
                .returning(_jobs.c.id)
            ).scalars()
            requeued = list(ids)
            events.record(
                conn, requeued, events.REQUEUED, now, detail="its result objects are rebuilt"
            )
        return len(requeued)

    def requeue_interrupted(self) -> int:
        """Jobs this replica left running (a crash or kill) go back to the queue at once,
        without waiting for their claims to expire; returns how many."""
        mine = or_(_jobs.c.claimed_by == self.replica.id, _jobs.c.claimed_by.is_(None))
        now = self.clock()
        with self.store.transaction() as conn:
            ids = conn.execute(
                update(_jobs)
                .where(_jobs.c.state == RUNNING, mine)
                .values(
                    state=QUEUED,
                    started_at=None,
                    claimed_by=None,
                    claim_expires_at=None,
                    updated_at=now,
                )
                .returning(_jobs.c.id)
            ).scalars()
            requeued = list(ids)
            events.record(conn, requeued, events.REQUEUED, now, detail="interrupted by a restart")
        return len(requeued)

    def retry_failed(self, job_id: int) -> bool:
        """Queue a failed job again (the worker polls the queue); False if it was not failed."""
        now = self.clock()
        with self.store.transaction() as conn:
            updated = conn.execute(
                update(_jobs)
                .where(_jobs.c.id == job_id, _jobs.c.state == FAILED)
                .values(
                    state=QUEUED,
                    reason=None,
                    started_at=None,
                    finished_at=None,
                    updated_at=now,
                )
            ).rowcount
            if updated:
                events.record(conn, job_id, events.REQUEUED, now, detail="retried by an operator")
        return bool(updated)


def deliver(conn: Connection, job_ids: list[int], now: datetime) -> list[DeliveredJob]:
    """Reported jobs among ``job_ids`` whose outbox rows are all sent become delivered (in
    the transaction that marked their last row sent); returns them with their turnaround."""
    if not job_ids:
        return []
    unsent = exists().where(_outbox.c.job_id == _jobs.c.id, _outbox.c.state != SENT)
    rows = conn.execute(
        update(_jobs)
        .where(_jobs.c.id.in_(job_ids), _jobs.c.state == REPORTED, ~unsent)
        .values(state=DELIVERED, updated_at=now)
        .returning(_jobs.c.id, _jobs.c.task, _jobs.c.series_instance_uid)
    ).all()
    events.record(conn, [job_id for job_id, _, _ in rows], events.DELIVERED, now)
    received = first_received(conn, {series for _, _, series in rows})
    delivered = []
    for job_id, task, series in sorted(rows):
        start = received.get(series)
        seconds = None if start is None else max(0.0, (now - start).total_seconds())
        delivered.append(DeliveredJob(job_id, task, seconds))
    return delivered
