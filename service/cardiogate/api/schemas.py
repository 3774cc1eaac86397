"""Response schemas, separate from the storage rows. No patient names, IDs or dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_serializer

from cardiogate.config import Destination, viewer_url
from cardiogate.inference.engine import LoadedModel
from cardiogate.store import SeriesSummary, StudySummary
from cardiogate.store.events import JobEventRecord, warnings_of_latest_run
from cardiogate.store.jobs import DELIVERED, FAILED, REPORTED, JobRecord
from cardiogate.store.outbox import DEAD, PENDING, SENT, OutboxRow
from cardiogate.store.versions import VersionRecord


class UtcTimestamps(BaseModel):
    """Naive datetimes (the store keeps UTC) written as ISO 8601 with +00:00 in JSON."""

    @field_serializer("*", when_used="json")
    def _utc(self, value: object) -> object:
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC).isoformat()
        return value


class SeriesOut(UtcTimestamps):
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


class JobOut(UtcTimestamps):
    """The analysis of a series: its id (for ``/jobs/{id}``), state, the reason when ignored
    or failed, the result, and which replica holds its input and which claimed it last
    (``CARDIOGATE_REPLICA_ID``; the pod name under the Helm chart)."""

    id: int
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
    replica_id: str | None = None
    claimed_by: str | None = None

    @classmethod
    def of(cls, job: JobRecord) -> JobOut:
        return cls(
            id=job.id,
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
            replica_id=job.replica_id,
            claimed_by=job.claimed_by,
        )


class JobSummaryOut(UtcTimestamps):
    """One job in a page of jobs; ``viewer_url`` opens its study in the reader's viewer
    once its results are written (reported or delivered), when
    ``CARDIOGATE_VIEWER_URL_TEMPLATE`` is set."""

    id: int
    SeriesInstanceUID: str
    StudyInstanceUID: str
    task: str | None
    state: str
    reason: str | None
    attempts: int
    model_name: str | None
    model_version: str | None
    created_at: datetime
    finished_at: datetime | None
    viewer_url: str | None = Field(
        default=None, description="the job's study in the viewer; null when not configured"
    )

    @classmethod
    def of(cls, job: JobRecord, viewer_url_template: str | None = None) -> JobSummaryOut:
        summary = cls.model_validate(job, from_attributes=True)
        if job.state in (REPORTED, DELIVERED):
            summary.viewer_url = viewer_url(viewer_url_template, job.StudyInstanceUID)
        return summary


class JobPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[JobSummaryOut]


class TimelineEvent(UtcTimestamps):
    """One thing that happened to a job. ``event`` is one of queued, re-queued, started,
    warning, failed, ignored, reported, delivered; ``attempt`` counts the claims (on
    started), ``detail`` says why (a reason, a repair, the routing rule, the model)."""

    event: str
    at: datetime
    attempt: int | None = None
    detail: str | None = None


class DeliveredObjectOut(UtcTimestamps):
    """One result object for one destination (an outbox row)."""

    destination: str
    SOPClassUID: str
    SOPInstanceUID: str
    state: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None

    @classmethod
    def of(cls, row: OutboxRow) -> DeliveredObjectOut:
        return cls.model_validate(row, from_attributes=True)


class ReportVersionOut(UtcTimestamps):
    version_index: int
    model_version: str
    StudyInstanceUID: str
    SeriesInstanceUID: str
    SOPInstanceUID: str
    SOPClassUID: str
    created_at: datetime

    @classmethod
    def of(cls, version: VersionRecord) -> ReportVersionOut:
        return cls.model_validate(version, from_attributes=True)


class JobDetailOut(JobSummaryOut):
    """A job with its timeline (every event, oldest first: earlier failures and re-runs
    stay), result, delivered objects, report versions and errors, the warnings of its
    latest run (repairs made to build its objects), and the replicas involved:
    ``replica_id`` holds its input, ``claimed_by`` claimed it last."""

    provider: str | None
    started_at: datetime | None
    replica_id: str | None
    claimed_by: str | None
    timeline: list[TimelineEvent]
    result: dict[str, Any] | None
    objects: list[DeliveredObjectOut]
    report_versions: list[ReportVersionOut]
    errors: list[str]
    warnings: list[str]

    @classmethod
    def build(
        cls,
        job: JobRecord,
        rows: list[OutboxRow],
        versions: list[VersionRecord],
        events: list[JobEventRecord],
        viewer_url_template: str | None = None,
    ) -> JobDetailOut:
        errors = [job.reason] if job.state == FAILED and job.reason else []
        errors += [
            f"{r.destination} {r.SOPInstanceUID}: {r.last_error}"
            for r in rows
            if r.last_error and r.state != SENT
        ]
        return cls(
            **JobSummaryOut.of(job, viewer_url_template).model_dump(),
            provider=job.provider,
            started_at=job.started_at,
            replica_id=job.replica_id,
            claimed_by=job.claimed_by,
            timeline=[
                TimelineEvent(event=e.event, at=e.at, attempt=e.attempt, detail=e.detail)
                for e in events
            ],
            result=json.loads(job.result) if job.result else None,
            objects=[DeliveredObjectOut.of(r) for r in rows],
            report_versions=[ReportVersionOut.of(v) for v in versions],
            errors=errors,
            warnings=warnings_of_latest_run(events),
        )


class RetryOut(BaseModel):
    """What a retry did: ``requeued`` the failed job, or ``redelivering`` its dead rows."""

    job_id: int
    action: str
    outbox_rows_reset: int


class SeriesDetailOut(SeriesOut):
    job: JobOut | None


class JobStateOut(BaseModel):
    """A series' job in brief: its id (for ``/jobs/{id}``), task, state, and the reason when
    ignored (not routed, or another reconstruction is scored) or failed."""

    id: int
    task: str | None
    state: str
    reason: str | None

    @classmethod
    def of(cls, job: JobRecord) -> JobStateOut:
        return cls(id=job.id, task=job.task, state=job.state, reason=job.reason)


class StudySeriesOut(SeriesOut):
    """A series of a study with its job: null until the series is complete and routed."""

    job: JobStateOut | None


class StudyOut(UtcTimestamps):
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
    series: list[StudySeriesOut]


class StudyPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[StudyOut]


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]
    details: dict[str, str | int | float]


class ModelOut(BaseModel):
    """A loaded model: what it is, where it runs and what its card says about it."""

    task: str
    name: str
    version: str
    provider: str
    warmup_seconds: float
    training_data: str
    intended_use: str
    clinical_use: str
    metrics: dict[str, str | int | float | bool]  # the card's top-level figures

    @classmethod
    def of(cls, task: str, model: LoadedModel) -> ModelOut:
        card = model.card
        figures = {k: v for k, v in card.metrics.items() if isinstance(v, str | int | float | bool)}
        return cls(
            task=task,
            name=card.name,
            version=card.version,
            provider=model.provider,
            warmup_seconds=round(model.warmup_seconds, 3),
            training_data=card.training_data,
            intended_use=card.intended_use,
            clinical_use=card.clinical_use,
            metrics=figures,
        )


class DestinationOut(BaseModel):
    """A configured destination with its outbox rows counted by state."""

    ae_title: str
    host: str
    port: int
    tls: bool
    pending: int
    sent: int
    dead: int

    @classmethod
    def of(cls, destination: Destination, counts: dict[str, int]) -> DestinationOut:
        return cls(
            ae_title=destination.ae_title,
            host=destination.host,
            port=destination.port,
            tls=destination.tls,
            pending=counts.get(PENDING, 0),
            sent=counts.get(SENT, 0),
            dead=counts.get(DEAD, 0),
        )


class EchoOut(BaseModel):
    ae_title: str
    success: bool
    round_trip_ms: float | None
    reason: str | None
