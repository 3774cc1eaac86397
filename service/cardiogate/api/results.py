"""Results routes under ``/api/v1``: every job of a study with its result as JSON."""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter, Depends, HTTPException, status

from cardiogate.api.deps import StoreDep, require_token
from cardiogate.api.errors import error_responses
from cardiogate.api.result_schemas import JobResultOut, StudyResultsOut
from cardiogate.api.routes import UIDPath
from cardiogate.store.jobs import JobQueue
from cardiogate.store.outbox import Outbox, OutboxRow

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_token)],
    tags=["results"],
    responses=error_responses(401, 422, 503),
)


@router.get(
    "/studies/{StudyInstanceUID}/results",
    response_model=StudyResultsOut,
    responses=error_responses(404),
)
def study_results(StudyInstanceUID: UIDPath, store: StoreDep) -> StudyResultsOut:
    """Each job of the study's series, oldest first: task, state (and why, if ignored or
    failed), model, review flag, the analysis's result as stored, and the objects it made
    with their delivery to each destination. 404 for a study never received."""
    if store.get_study(StudyInstanceUID) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such study")
    jobs = JobQueue(store).of_study(StudyInstanceUID)
    rows: dict[int, list[OutboxRow]] = defaultdict(list)
    for row in Outbox(store).rows_of_jobs([job.id for job in jobs]):
        rows[row.job_id].append(row)
    return StudyResultsOut(
        StudyInstanceUID=StudyInstanceUID,
        jobs=[JobResultOut.build(job, rows[job.id]) for job in jobs],
    )
