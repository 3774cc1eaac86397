"""Reviewers' verdicts on job results, and the jobs still waiting for one.

A job is flagged in the transaction that records its result (``jobs.needs_review``,
from its task's :meth:`~cardiogate.tasks.Task.review_reason`). A verdict is about one
result, named by its ``result_digest``: a re-run whose different result is flagged again
waits for new verdicts, and the earlier verdicts stay, each with the result it judged.
Several reviewers (pseudonymous ids) may judge one result, each once; the case is
*settled* when an adjudicator has judged it, or when enough reviews agree (the caller
decides, :func:`is_settled`), and the review that settles it is marked ``settles``: the
queue lists flagged jobs whose current result is not settled. Rows from before the review
columns were filled by migrations ``0005_review_backfill`` and ``0006_several_reviewers``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
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
Role = Literal["reviewer", "adjudicator"]
ANONYMOUS = "anonymous"  # the reviewer of a client that names none (and of older verdicts)
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
    reviewer: str = ANONYMOUS
    role: str = "reviewer"
    corrections: str | None = None  # JSON
    settles: bool = False

    def corrections_json(self) -> dict[str, Any] | None:
        """The corrections, parsed; None without any (or unreadable)."""
        parsed = _parse(self.corrections) if self.corrections else None
        return parsed or None


def is_settled(reviews: Sequence[ReviewRecord], required: int, unresolved: Sequence[str]) -> bool:
    """A case is settled when an adjudicator has judged it, or when at least ``required``
    reviews exist and their fusion leaves nothing ``unresolved`` (a tie of verdicts or
    labels is unresolved)."""
    if any(r.role == "adjudicator" for r in reviews):
        return True
    return len(reviews) >= required and not unresolved


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


def _of_current(*where: ColumnElement[bool]) -> ColumnElement[bool]:
    """A review of the job's current result exists (meeting ``where``)."""
    return exists().where(
        _reviews.c.job_id == _jobs.c.id,
        _reviews.c.result_digest == _jobs.c.result_digest,
        *where,
    )


def _waiting(reviewer: str | None = None) -> tuple[ColumnElement[bool], ...]:
    """Flagged, reported or delivered, its current result not settled (and not judged by
    ``reviewer``)."""
    where: tuple[ColumnElement[bool], ...] = (
        _jobs.c.needs_review == true(),
        _jobs.c.state.in_(REVIEWABLE),
        ~_of_current(_reviews.c.settles == true()),
    )
    if reviewer is not None:
        where += (~_of_current(_reviews.c.reviewer == reviewer),)
    return where


def review_queue(
    store: Store, limit: int, offset: int, reviewer: str | None = None
) -> tuple[list[Flagged], int]:
    """Flagged jobs whose current result is not settled (with ``reviewer``: that reviewer
    has not judged), newest result first, and how many there are in all."""
    where = _waiting(reviewer)
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


def _of_result(job_id: int, digest: str | None) -> tuple[ColumnElement[bool], ...]:
    where: tuple[ColumnElement[bool], ...] = (
        _reviews.c.job_id == job_id,
        _reviews.c.result_digest == digest,
    )
    return where


def get_review(
    store: Store, job_id: int, digest: str | None, reviewer: str | None = None
) -> ReviewRecord | None:
    """The verdict on the job's result named by ``digest``: ``reviewer``'s, or the first."""
    where: tuple[ColumnElement[bool], ...] = _of_result(job_id, digest)
    if reviewer is not None:
        where += (_reviews.c.reviewer == reviewer,)
    query = select(_reviews).where(*where).order_by(_reviews.c.id)
    with store.transaction() as conn:
        row = conn.execute(query).first()
    return None if row is None else _review(row)


def reviews_of(store: Store, job_id: int, digest: str | None) -> list[ReviewRecord]:
    """Every verdict on the job's result named by ``digest``, oldest first."""
    query = select(_reviews).where(*_of_result(job_id, digest)).order_by(_reviews.c.id)
    with store.transaction() as conn:
        rows = conn.execute(query).all()
    return [_review(r) for r in rows]


def record_review(
    store: Store,
    job: JobRecord,
    verdict: Verdict,
    note: str = "",
    *,
    reviewer: str = ANONYMOUS,
    role: Role = "reviewer",
    corrections: str | None = None,
    settles: Callable[[list[ReviewRecord]], bool] | None = None,
) -> bool:
    """Record ``reviewer``'s verdict (and corrections, JSON) on ``job``'s result (as read)
    with the model that produced it; False when this reviewer already judged that result,
    also when their other verdict landed between the check and the insert (the unique job,
    result digest and reviewer refuse it). ``settles`` is asked, with all verdicts on the
    result (this one last), whether they settle it (without it: any verdict does, one
    reviewer per result as before); if so this verdict is marked as the one that did."""
    try:
        with store.transaction() as conn:
            where = (*_of_result(job.id, job.result_digest), _reviews.c.reviewer == reviewer)
            if conn.execute(select(_reviews.c.id).where(*where)).first():
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
                    reviewer=reviewer,
                    role=role,
                    corrections=corrections,
                )
            )
            query = select(_reviews).where(*_of_result(job.id, job.result_digest))
            everyone = [_review(r) for r in conn.execute(query.order_by(_reviews.c.id)).all()]
            if settles is None or settles(everyone):
                conn.execute(_reviews.update().where(*where).values(settles=True))
    except StoreError as e:
        if isinstance(e.__cause__, IntegrityError):
            return False
        raise
    return True


def settled_cases(store: Store) -> list[tuple[JobRecord, list[ReviewRecord]]]:
    """Every settled result (the current or an earlier one of its job) with its job as it
    is now and all verdicts on it, oldest settlement first."""
    settled = (
        select(_reviews.c.job_id, _reviews.c.result_digest)
        .where(_reviews.c.settles == true())
        .order_by(_reviews.c.id)
    )
    with store.transaction() as conn:
        keys = conn.execute(settled).all()
    out = []
    seen: set[tuple[int, str | None]] = set()
    for job_id, digest in keys:
        if (job_id, digest) in seen:
            continue
        seen.add((job_id, digest))
        with store.transaction() as conn:
            row = conn.execute(select(_jobs).where(_jobs.c.id == job_id)).first()
        if row is not None:
            out.append((job_record(row), reviews_of(store, job_id, digest)))
    return out


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
        reviewer=m[f"{prefix}reviewer"],
        role=m[f"{prefix}role"],
        corrections=m[f"{prefix}corrections"],
        settles=bool(m[f"{prefix}settles"]),
    )
