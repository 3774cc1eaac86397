"""Read-only status routes under ``/api/v1``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status

from cardiogate.api.deps import Limit, Offset, StoreDep, require_token
from cardiogate.api.errors import error_responses
from cardiogate.api.schemas import (
    JobOut,
    JobStateOut,
    SeriesDetailOut,
    SeriesOut,
    StudyDetailOut,
    StudyOut,
    StudyPage,
    StudySeriesOut,
)
from cardiogate.store.jobs import JobQueue

UIDPath = Annotated[str, Path(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)]

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_token)],
    responses=error_responses(401, 422, 503),
)


@router.get("/studies", response_model=StudyPage)
def list_studies(
    store: StoreDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> StudyPage:
    studies, total = store.list_studies(limit, offset)
    return StudyPage(
        total=total, limit=limit, offset=offset, items=[StudyOut.of(s) for s in studies]
    )


@router.get(
    "/studies/{StudyInstanceUID}", response_model=StudyDetailOut, responses=error_responses(404)
)
def get_study(StudyInstanceUID: UIDPath, store: StoreDep) -> StudyDetailOut:
    """A study with its series, each with its job's state and, when ignored or failed, the
    reason (a series not routed says why here)."""
    study = store.get_study(StudyInstanceUID)
    if study is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such study")
    jobs = {j.SeriesInstanceUID: j for j in JobQueue(store).of_study(StudyInstanceUID)}
    series = [
        StudySeriesOut(
            **SeriesOut.of(s).model_dump(),
            job=JobStateOut.of(jobs[s.SeriesInstanceUID]) if s.SeriesInstanceUID in jobs else None,
        )
        for s in store.series_of_study(StudyInstanceUID)
    ]
    return StudyDetailOut(**StudyOut.of(study).model_dump(), series=series)


@router.get(
    "/series/{SeriesInstanceUID}", response_model=SeriesDetailOut, responses=error_responses(404)
)
def get_series(SeriesInstanceUID: UIDPath, store: StoreDep) -> SeriesDetailOut:
    """A series with its job: state, the reason if ignored or failed, the result if reported."""
    series = store.get_series(SeriesInstanceUID)
    if series is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such series")
    job = JobQueue(store).for_series(SeriesInstanceUID)
    return SeriesDetailOut(
        **SeriesOut.of(series).model_dump(), job=None if job is None else JobOut.of(job)
    )
