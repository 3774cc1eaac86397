"""Response schemas, separate from the storage rows. No patient names, IDs or dates."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, field_serializer

from cardiogate.store import SeriesSummary, StudySummary


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
