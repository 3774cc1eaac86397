"""Reviewers' verdicts on job results, and the jobs still waiting for one.

A job is flagged in the transaction that records its result (``jobs.needs_review``,
from its task's :meth:`~cardiogate.tasks.Task.review_reason`). A verdict is about one
result, named by its ``result_digest``: a re-run whose different result is flagged again
waits for a new verdict, and the earlier verdicts stay, each with the result it judged.
Rows from before the review columns were filled by migration ``0005_review_backfill``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Table, exists, func, select, true
from sqlalchemy.exc import IntegrityError

from cardiogate.errors import StoreError
from cardiogate.store.records import DELIVERED, REPORTED, JobRecord, job_record
from cardiogate.store.store import Store, utcnow
from cardiogate.store.tables import Job, Review

_jobs: Table = Job.__table__  # type: ignore[assignment]
_reviews: Table = Review.__table__  # type: ignore[assignment]

Verdict = Literal["agree", "disagree"]
REVIEWABLE = (REPORTED, DELIVERED)
MAX_NOTE = 2000
MAX_REVIEW_REASON = 500


def result_digest(result_json: str) -> str:
    """sha256 of a result's JSON without its ``timings_s``: two runs that say the same
    (same input, same model) share it, so a verdict on one holds for the other."""
    try:
        parsed = json.loads(result_json)
    except json.JSONDecodeError:
        parsed = result_json
    if isinstance(parsed, dict):
        parsed.pop("timings_s", None)
    canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    job_id: int
    verdict: str
    note: str
    model_name: str | None
    model_version: str | None
    result: str | None  # the result JSON the verdict is about
    result_digest: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Flagged:
    """A job whose result needs review, with the parsed result and the reason."""

    job: JobRecord
    result: dict[str, Any]
    reason: str


def _parse(result_json: str | None) -> dict[str, Any]:
    try:
        parsed = json.loads(result_json or "null")
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _flagged(job: JobRecord) -> Flagged:
    return Flagged(job, _parse(job.result), job.review_reason or "flagged for review")


def flagged(job: JobRecord) -> Flagged | None:
    """The job as flagged when it is reported or delivered and its result needs review."""
    if job.state not in REVIEWABLE or not job.needs_review:
        return None
    return _flagged(job)


def _waiting() -> tuple[ColumnElement[bool], ...]:
    """Flagged, reported or delivered, and no verdict on the current result."""
    judged = exists().where(
        _reviews.c.job_id == _jobs.c.id, _reviews.c.result_digest == _jobs.c.result_digest
    )
    return (_jobs.c.needs_review == true(), _jobs.c.state.in_(REVIEWABLE), ~judged)


def review_queue(store: Store, limit: int, offset: int) -> tuple[list[Flagged], int]:
    """Flagged jobs whose current result has no verdict, newest result first, and how many
    there are in all."""
    where = _waiting()
    page = (
        select(_jobs)
        .where(*where)
        .order_by(_jobs.c.finished_at.desc(), _jobs.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with store.transaction() as conn:
        total = conn.execute(select(func.count()).select_from(_jobs).where(*where)).scalar_one()
        rows = conn.execute(page).all()
    return [_flagged(job_record(r)) for r in rows], int(total)


def get_review(store: Store, job_id: int, digest: str | None) -> ReviewRecord | None:
    """The verdict on the job's result named by ``digest``."""
    query = select(_reviews).where(_reviews.c.job_id == job_id, _reviews.c.result_digest == digest)
    with store.transaction() as conn:
        row = conn.execute(query).first()
    return None if row is None else _review(row)


def record_review(store: Store, job: JobRecord, verdict: Verdict, note: str) -> bool:
    """Record the verdict on ``job``'s result (as read) with the model that produced it;
    False when that result already has one, also when another reviewer's verdict landed
    between the check and the insert (the unique job and result digest refuse it)."""
    try:
        with store.transaction() as conn:
            if conn.execute(
                select(_reviews.c.id).where(
                    _reviews.c.job_id == job.id, _reviews.c.result_digest == job.result_digest
                )
            ).first():
                return False
            conn.execute(
                _reviews.insert().values(
                    job_id=job.id,
                    result_digest=job.result_digest,
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
    """Every verdict with its job (as it is now), oldest verdict first."""
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
        result_digest=m[f"{prefix}result_digest"],
        created_at=m[f"{prefix}created_at"],
    )
