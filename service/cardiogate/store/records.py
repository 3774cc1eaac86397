"""Plain records passed between the store and its callers (no SQLAlchemy objects leak out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
