"""Response schemas of a study's results, separate from the storage rows. No patient names,
IDs or dates."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from cardiogate.api.schemas import UtcTimestamps
from cardiogate.store.jobs import JobRecord
from cardiogate.store.outbox import OutboxRow


class DeliveryOut(UtcTimestamps):
    """One result object's delivery to one destination."""

    destination: str  # AE@host:port
    state: str  # pending, sent, dead
    attempts: int
    sent_at: datetime | None


class ResultObjectOut(BaseModel):
    """A DICOM object a job made (SR, SEG, key image), with its delivery per destination."""

    SOPClassUID: str
    SOPInstanceUID: str
    deliveries: list[DeliveryOut]


class JobResultOut(UtcTimestamps):
    """The job of one series of the study: task, state, model, review flag and the
    analysis's result as stored, with the objects it made."""

    job_id: int
    SeriesInstanceUID: str
    task: str | None
    state: str
    reason: str | None  # why it was ignored or failed
    model_name: str | None
    model_version: str | None
    provider: str | None
    finished_at: datetime | None
    needs_review: bool
    review_reason: str | None
    result: dict[str, Any] | None
    objects: list[ResultObjectOut]

    @classmethod
    def build(cls, job: JobRecord, rows: list[OutboxRow]) -> JobResultOut:
        objects: dict[str, ResultObjectOut] = {}
        for row in rows:
            obj = objects.setdefault(
                row.SOPInstanceUID,
                ResultObjectOut(
                    SOPClassUID=row.SOPClassUID, SOPInstanceUID=row.SOPInstanceUID, deliveries=[]
                ),
            )
            obj.deliveries.append(
                DeliveryOut(
                    destination=row.destination,
                    state=row.state,
                    attempts=row.attempts,
                    sent_at=row.sent_at,
                )
            )
        return cls(
            job_id=job.id,
            SeriesInstanceUID=job.SeriesInstanceUID,
            task=job.task,
            state=job.state,
            reason=job.reason,
            model_name=job.model_name,
            model_version=job.model_version,
            provider=job.provider,
            finished_at=job.finished_at,
            needs_review=job.needs_review,
            review_reason=job.review_reason,
            result=json.loads(job.result) if job.result else None,
            objects=list(objects.values()),
        )


class StudyResultsOut(BaseModel):
    StudyInstanceUID: str
    jobs: list[JobResultOut]
