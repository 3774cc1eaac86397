"""Reviewers' verdicts on job results, and the jobs still waiting for one.

Whether a result needs review is decided from its JSON (:mod:`cardiogate.analyses.review`),
so the queue reads the reported and delivered jobs without a verdict and keeps the flagged
ones in Python."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError

from cardiogate.analyses.review import review_reason
from cardiogate.errors import StoreError
from cardiogate.store.jobs import DELIVERED, REPORTED, JobRecord, job_record
from cardiogate.store.store import Store, utcnow
from cardiogate.store.tables import Job, Review

_jobs: Table = Job.__table__  # type: ignore[assignment]
_reviews: Table = Review.__table__  # type: ignore[assignment]

Verdict = Literal["agree", "disagree"]
REVIEWABLE = (REPORTED, DELIVERED)
MAX_NOTE = 2000


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    job_id: int
    verdict: str
    note: str
    model_name: str | None
    model_version: str | None
    result: str | None  # the result JSON the verdict is about
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Flagged:
    """A job whose result needs review, with the parsed result and the reason."""

    job: JobRecord
    result: dict[str, Any]
    reason: str


def _result(job: JobRecord) -> dict[str, Any]:
    try:
        parsed = json.loads(job.result or "null")
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def flagged(job: JobRecord) -> Flagged | None:
    """The job as flagged when it is reported or delivered and its result needs review."""
    if job.state not in REVIEWABLE:
        return None
    result = _result(job)
    reason = review_reason(job.task, result)
    return None if reason is None else Flagged(job, result, reason)


def _unreviewed(store: Store) -> Iterator[JobRecord]:
    """Reported and delivered jobs with no verdict, newest first."""
    stmt = (
        select(_jobs)
        .outerjoin(_reviews, _reviews.c.job_id == _jobs.c.id)
        .where(_jobs.c.state.in_(REVIEWABLE), _reviews.c.id.is_(None))
        .order_by(_jobs.c.created_at.desc(), _jobs.c.id.desc())
    )
    with store.transaction() as conn:
        rows = conn.execute(stmt).all()
    return (job_record(r) for r in rows)


def review_queue(store: Store, limit: int, offset: int) -> tuple[list[Flagged], int]:
    """Flagged jobs without a verdict, newest first, and how many there are in all."""
    waiting = [f for f in map(flagged, _unreviewed(store)) if f is not None]
    return waiting[offset : offset + limit], len(waiting)


def get_review(store: Store, job_id: int) -> ReviewRecord | None:
    with store.transaction() as conn:
        row = conn.execute(select(_reviews).where(_reviews.c.job_id == job_id)).first()
    return None if row is None else _review(row)


def record_review(store: Store, job: JobRecord, verdict: Verdict, note: str) -> bool:
    """Record the verdict on ``job`` with the model that produced its result; False when the
    job already has one, also when another reviewer's verdict landed between the check and
    the insert (the unique ``job_id`` refuses the second)."""
    try:
        with store.transaction() as conn:
            if conn.execute(select(_reviews.c.id).where(_reviews.c.job_id == job.id)).first():
                return False
            conn.execute(
                _reviews.insert().values(
                    job_id=job.id,
                    verdict=verdict,
                    note=note[:MAX_NOTE],
                    model_name=job.model_name,
                    model_version=job.model_version,
                    result=job.result,
                    created_at=utcnow(),
                )
            )
    except StoreError as e:
        if isinstance(e.__cause__, IntegrityError):
            return False
        raise
    return True


def reviewed(store: Store) -> list[tuple[JobRecord, ReviewRecord]]:
    """Every reviewed job with its verdict, oldest review first."""
    stmt = (
        select(_jobs, *(c.label(f"review_{c.name}") for c in _reviews.c))
        .join(_reviews, _reviews.c.job_id == _jobs.c.id)
        .order_by(_reviews.c.created_at, _reviews.c.id)
    )
    with store.transaction() as conn:
        rows = conn.execute(stmt).all()
    return [(job_record(r), _review(r, "review_")) for r in rows]


def _review(row: Any, prefix: str = "") -> ReviewRecord:
    m = row._mapping
    return ReviewRecord(
        job_id=m[f"{prefix}job_id"],
        verdict=m[f"{prefix}verdict"],
        note=m[f"{prefix}note"],
        model_name=m[f"{prefix}model_name"],
        model_version=m[f"{prefix}model_version"],
        result=m[f"{prefix}result"],
        created_at=m[f"{prefix}created_at"],
    )
