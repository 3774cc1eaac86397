"""Plain records passed between the store and its callers (no SQLAlchemy objects leak out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """What the listener knows about one received instance, ready to be recorded."""

    StudyInstanceUID: str
    SeriesInstanceUID: str
    SOPInstanceUID: str
    SOPClassUID: str
    TransferSyntaxUID: str
    Modality: str | None
    InstanceNumber: int | None
    NumberOfFrames: int
    SeriesNumber: int | None
    SeriesDescription: str | None
    BodyPartExamined: str | None
    ProtocolName: str | None
    ImageType: str | None
    ContrastBolusAgent: str | None
    SliceThickness: str | None
    path: str
    size_bytes: int
    calling_ae_title: str | None


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """The part of an instance row the listener needs to recognise a duplicate."""

    SOPInstanceUID: str
    SeriesInstanceUID: str
    path: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class SeriesSummary:
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


@dataclass(frozen=True, slots=True)
class StudySummary:
    StudyInstanceUID: str
    modalities: list[str]
    series_count: int
    instance_count: int
    size_bytes: int
    first_received_at: datetime
    last_received_at: datetime


@dataclass(frozen=True, slots=True)
class SeriesAttributes:
    """What routing rules look at (header values of the series' first instance)."""

    SeriesInstanceUID: str
    StudyInstanceUID: str
    Modality: str | None
    SOPClassUID: str | None
    SeriesDescription: str | None
    ProtocolName: str | None
    BodyPartExamined: str | None
    ImageType: str | None
    ContrastBolusAgent: str | None
    SliceThickness: str | None
    instance_count: int


# The states of a job (:class:`~.tables.Job`).
QUEUED, RUNNING, REPORTED, FAILED, IGNORED = "queued", "running", "reported", "failed", "ignored"
DELIVERED = "delivered"
STATES = (QUEUED, RUNNING, REPORTED, DELIVERED, FAILED, IGNORED)
# The states of an outbox row (:class:`~.tables.OutboxItem`).
PENDING, SENT, DEAD = "pending", "sent", "dead"


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    SeriesInstanceUID: str
    StudyInstanceUID: str
    task: str | None
    state: str
    reason: str | None
    attempts: int
    result: str | None
    result_digest: str | None
    needs_review: bool
    review_reason: str | None
    model_name: str | None
    model_version: str | None
    provider: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    replica_id: str | None = None  # whose spool has the input
    claimed_by: str | None = None  # the replica that claimed it last


def job_record(row: Any) -> JobRecord:
    """A job row (any select of the whole jobs table) as a record."""
    m = row._mapping
    return JobRecord(
        id=m["id"],
        SeriesInstanceUID=m["series_instance_uid"],
        StudyInstanceUID=m["study_instance_uid"],
        task=m["task"],
        state=m["state"],
        reason=m["reason"],
        attempts=m["attempts"],
        result=m["result"],
        result_digest=m["result_digest"],
        needs_review=bool(m["needs_review"]),
        review_reason=m["review_reason"],
        model_name=m["model_name"],
        model_version=m["model_version"],
        provider=m["provider"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        replica_id=m["replica_id"],
        claimed_by=m["claimed_by"],
    )


@dataclass(frozen=True, slots=True)
class StudySeries:
    """A series of a study as routing compares it with the others: its attributes, its
    SeriesNumber, and its job's task, state and reason (all None before it is routed)."""

    attributes: SeriesAttributes
    SeriesNumber: int | None
    task: str | None
    job_state: str | None
    job_reason: str | None = None


@dataclass(frozen=True, slots=True)
class StagedObject:
    """A result object written to the outbox directory (``path`` relative to it)."""

    SOPClassUID: str
    SOPInstanceUID: str
    path: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    job_id: int
    destination: str
    SOPClassUID: str
    SOPInstanceUID: str
    path: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveredJob:
    """A job that became ``delivered``: its task and the seconds from the first instance of
    its series received to its last result object acknowledged (its turnaround; None if the
    series row cannot say)."""

    id: int
    task: str | None
    turnaround_seconds: float | None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What :meth:`Outbox.record` changed."""

    sent: int
    retried: int
    dead: int
    delivered: list[DeliveredJob]

    @property
    def delivered_jobs(self) -> list[int]:
        return [job.id for job in self.delivered]


@dataclass(frozen=True, slots=True)
class OutboxStats:
    oldest_pending: datetime | None
    pending: int
    dead: int
