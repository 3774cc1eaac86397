"""A job's timeline: one row per thing that happened to it, oldest first.

Events are written in the transaction of the state change they record (:mod:`.jobs`,
:mod:`.outbox`), so the timeline never says more or less than the rows: a failure, the late
instance that re-queued the series and the re-run that followed all stay on it. Details are
for operators: UIDs, counts, attribute names and reasons, never a patient's values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table, insert, select

from cardiogate.store.store import Store
from cardiogate.store.tables import JobEvent

_events: Table = JobEvent.__table__  # type: ignore[assignment]

QUEUED = "queued"
REQUEUED = "re-queued"
STARTED = "started"
WARNING = "warning"
FAILED = "failed"
IGNORED = "ignored"
REPORTED = "reported"
DELIVERED = "delivered"
MAX_DETAIL = 2000


@dataclass(frozen=True, slots=True)
class JobEventRecord:
    job_id: int
    at: datetime
    event: str
    attempt: int | None
    detail: str | None


def record(
    conn: Connection,
    job_ids: int | Iterable[int],
    event: str,
    at: datetime,
    *,
    detail: str | None = None,
    attempt: int | None = None,
) -> None:
    """Add ``event`` to the timeline of each job in ``job_ids``."""
    ids = [job_ids] if isinstance(job_ids, int) else list(job_ids)
    if not ids:
        return
    text = None if detail is None else detail[:MAX_DETAIL]
    conn.execute(
        insert(_events),
        [{"job_id": i, "at": at, "event": event, "attempt": attempt, "detail": text} for i in ids],
    )


def record_many(
    conn: Connection, job_id: int, event: str, at: datetime, details: Iterable[str]
) -> None:
    """One ``event`` per detail (the warnings of one run, say)."""
    rows = [
        {"job_id": job_id, "at": at, "event": event, "attempt": None, "detail": d[:MAX_DETAIL]}
        for d in details
    ]
    if rows:
        conn.execute(insert(_events), rows)


def timeline(store: Store, job_id: int) -> list[JobEventRecord]:
    """The job's events, oldest first (ties in the order they were written)."""
    with store.transaction() as conn:
        rows = conn.execute(
            select(_events).where(_events.c.job_id == job_id).order_by(_events.c.at, _events.c.id)
        ).mappings()
        return [
            JobEventRecord(r["job_id"], r["at"], r["event"], r["attempt"], r["detail"])
            for r in rows
        ]


def timelines(store: Store, job_ids: Collection[int]) -> dict[int, list[JobEventRecord]]:
    """Each job's events, oldest first (ties in the order they were written); a job with
    none is absent (one query, whatever the number of jobs)."""
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


def warnings_of_latest_run(events: list[JobEventRecord]) -> list[str]:
    """The warnings recorded since the job last started: those of the result it has now."""
    starts = [i for i, e in enumerate(events) if e.event == STARTED]
    since = starts[-1] if starts else 0
    return [e.detail for e in events[since:] if e.event == WARNING and e.detail]
