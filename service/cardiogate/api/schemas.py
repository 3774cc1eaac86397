"""Response schemas, separate from the storage rows. No patient names, IDs or dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, field_serializer

from cardiogate.store import SeriesSummary, StudySummary
from cardiogate.store.jobs import JobRecord


class _Timestamps(BaseModel):
    @field_serializer("*", when_used="json")
    def _utc(self, value: object) -> object:
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC).isoformat()
        return value


class SeriesOut(_Timestamps):
    SeriesInstanceUID: str
    StudyInstanceUID: str
    Modality: str | None
    SeriesNumber: int | None
    SeriesDescription: str | None
    SOPClassUID: str | None
    state: str
    instance_count: int
    frame_count: int
    size_bytes: int
    first_received_at: datetime
    last_received_at: datetime
    completed_at: datetime | None
    reopened_count: int

    @classmethod
    def of(cls, s: SeriesSummary) -> SeriesOut:
        return cls.model_validate(s, from_attributes=True)


class JobOut(_Timestamps):
    """The analysis of a series: state, the reason when ignored or failed, the result."""

    task: str | None
    state: str
    reason: str | None
    attempts: int
    model_name: str | None
    model_version: str | None
    provider: str | None
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None

    @classmethod
    def of(cls, job: JobRecord) -> JobOut:
        return cls(
            task=job.task,
            state=job.state,
            reason=job.reason,
            attempts=job.attempts,
            model_name=job.model_name,
            model_version=job.model_version,
            provider=job.provider,
            started_at=job.started_at,
            finished_at=job.finished_at,
            result=json.loads(job.result) if job.result else None,
        )


class SeriesDetailOut(SeriesOut):
    job: JobOut | None


class StudyOut(_Timestamps):
    StudyInstanceUID: str
    modalities: list[str]
    series_count: int
    instance_count: int
    size_bytes: int
    first_received_at: datetime
    last_received_at: datetime

    @classmethod
    def of(cls, s: StudySummary) -> StudyOut:
        return cls.model_validate(s, from_attributes=True)


class StudyDetailOut(StudyOut):
    series: list[SeriesOut]


class StudyPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[StudyOut]


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]
    details: dict[str, str | int | float]
