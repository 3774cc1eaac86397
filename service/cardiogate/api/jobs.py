"""Job routes under ``/api/v1``: pages of jobs, one job in full, and retrying one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BeforeValidator

from cardiogate.api.deps import JobIdPath, Limit, Offset, SettingsDep, StoreDep, require_token
from cardiogate.api.errors import error_responses
from cardiogate.api.schemas import JobDetailOut, JobPage, JobSummaryOut, RetryOut
from cardiogate.config import Settings
from cardiogate.store.events import timeline
from cardiogate.store.jobs import JobQueue
from cardiogate.store.outbox import Outbox, reset_dead
from cardiogate.store.versions import versions_of_job


def _not_a_number(value: object) -> object:
    """Refuse a Unix timestamp: the schema promises an ISO 8601 date-time, and pydantic
    would otherwise read ``since=0.5`` as half a second after 1970."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("an ISO 8601 date-time is needed, e.g. 2024-05-01T00:00:00Z")
    return value


Since = Annotated[
    datetime | None,
    BeforeValidator(_not_a_number),
    Query(description="created at or after (UTC unless the value has an offset)"),
]
JobState = Literal["queued", "running", "reported", "delivered", "failed", "ignored"]
TaskName = Annotated[
    str | None,
    Query(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="an installed task's name"),
]

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_token)],
    tags=["jobs"],
    responses=error_responses(401, 422, 503),
)


@router.get("/jobs", response_model=JobPage)
def list_jobs(
    store: StoreDep,
    settings: SettingsDep,
    state: JobState | None = None,
    task: TaskName = None,
    since: Since = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JobPage:
    """Jobs newest first, with the total that match; each reported or delivered job with a
    link to its study in the viewer when ``CARDIOGATE_VIEWER_URL_TEMPLATE`` is set."""
    if since is not None and since.tzinfo is not None:
        since = since.astimezone(UTC).replace(tzinfo=None)  # the store keeps naive UTC
    jobs, total = JobQueue(store).page(limit, offset, state=state, task=task, since=since)
    template = _viewer_template(settings)
    items = [JobSummaryOut.of(j, template) for j in jobs]
    return JobPage(total=total, limit=limit, offset=offset, items=items)


@router.get("/jobs/{job_id}", response_model=JobDetailOut, responses=error_responses(404))
def get_job(job_id: JobIdPath, store: StoreDep, settings: SettingsDep) -> JobDetailOut:
    """A job in full: timeline, result, delivered objects, report versions, errors, and
    the link to its study in the viewer when it has results and the viewer is configured."""
    job = JobQueue(store).get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job")
    return JobDetailOut.build(
        job,
        Outbox(store).rows_of_job(job_id),
        versions_of_job(store, job_id),
        timeline(store, job_id),
        _viewer_template(settings),
    )


def _viewer_template(settings: Settings | None) -> str | None:
    return None if settings is None else settings.viewer_url_template


@router.post("/jobs/{job_id}/retry", response_model=RetryOut, responses=error_responses(404, 409))
def retry_job(job_id: JobIdPath, store: StoreDep) -> RetryOut:
    """Queue a failed job again, or put a job's dead outbox rows back to pending (attempts
    0, due now). The worker and the sender poll, so nothing needs waking. 409 otherwise."""
    queue = JobQueue(store)
    job = queue.get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job")
    if queue.retry_failed(job_id):
        return RetryOut(job_id=job_id, action="requeued", outbox_rows_reset=0)
    reset = reset_dead(store, job_id)
    if reset:
        return RetryOut(job_id=job_id, action="redelivering", outbox_rows_reset=reset)
    raise HTTPException(
        status.HTTP_409_CONFLICT,
        f"job {job_id} is {job.state} with no dead outbox rows: only a failed job or one "
        "with dead deliveries can be retried",
    )
