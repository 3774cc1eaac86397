"""Review routes under ``/api/v1``: the queue of flagged results without a verdict, and
recording a reviewer's verdict (the active-learning loop)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status

from cardiogate.api.deps import JobIdPath, Limit, Offset, StoreDep, TasksDep, require_token
from cardiogate.api.errors import error_responses
from cardiogate.api.schemas import ReviewItemOut, ReviewOut, ReviewPage, VerdictIn
from cardiogate.errors import StoreError
from cardiogate.store.jobs import JobQueue
from cardiogate.store.reviews import flagged, get_review, record_review, review_queue
from cardiogate.tasks import Tasks

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_token)],
    tags=["review"],
    responses=error_responses(401, 422, 503),
)


@router.get("/review", response_model=ReviewPage)
def list_review(
    store: StoreDep,
    tasks: TasksDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> ReviewPage:
    """Reported or delivered jobs whose current result needs review and has no verdict yet
    (a re-run flagged again is back, whatever was said of its earlier result), newest result
    first, with the total."""
    waiting, total = review_queue(store, limit, offset)
    items = [
        ReviewItemOut(
            job_id=f.job.id,
            SeriesInstanceUID=f.job.SeriesInstanceUID,
            StudyInstanceUID=f.job.StudyInstanceUID,
            task=f.job.task,
            model_name=f.job.model_name,
            model_version=f.job.model_version,
            result_digest=f.job.result_digest,
            reason=f.reason,
            summary=_summary(tasks, f.job.task, f.result),
        )
        for f in waiting
    ]
    return ReviewPage(total=total, limit=limit, offset=offset, items=items)


def _summary(tasks: Tasks, task: str | None, result: Mapping[str, Any]) -> dict[str, Any]:
    """The task's review summary of a result; empty for a task no longer installed."""
    found = tasks.get(task or "")
    return {} if found is None else found.review_summary(result)


@router.post("/review/{job_id}", response_model=ReviewOut, responses=error_responses(400, 404, 409))
def post_verdict(job_id: JobIdPath, body: VerdictIn, store: StoreDep) -> ReviewOut:
    """Record ``agree`` or ``disagree`` (and a note) on a flagged job's current result; 409
    when the job does not need review, its result already has a verdict, or its result is
    not the one ``result_digest`` names."""
    job = JobQueue(store).get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job")
    if flagged(job) is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"job {job_id} does not need review: only a reported or delivered job whose "
            "result is flagged can be reviewed",
        )
    if body.result_digest is not None and body.result_digest != job.result_digest:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"job {job_id} has a new result since it was listed: review that one",
        )
    if not record_review(store, job, body.verdict, body.note):
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"job {job_id} already has a verdict on this result"
        )
    review = get_review(store, job_id, job.result_digest)
    if review is None:  # recorded a moment ago: only a store in trouble loses it
        raise StoreError("the verdict could not be read back after it was recorded")
    return ReviewOut(
        job_id=job_id,
        verdict=review.verdict,
        note=review.note,
        model_name=review.model_name,
        model_version=review.model_version,
        result_digest=review.result_digest,
        reviewed_at=review.created_at,
    )
