"""A sample received CT instance and a settable clock, for tests of the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from cardiogate.store import InstanceRecord
from cardiogate.store.store import utcnow

_CT = InstanceRecord(
    StudyInstanceUID="1.2",
    SeriesInstanceUID="1.2.1",
    SOPInstanceUID="1.2.1.1",
    SOPClassUID="1.2.840.10008.5.1.4.1.1.2",
    TransferSyntaxUID="1.2.840.10008.1.2.1",
    Modality="CT",
    InstanceNumber=1,
    NumberOfFrames=1,
    SeriesNumber=1,
    SeriesDescription=None,
    BodyPartExamined=None,
    ProtocolName=None,
    ImageType=None,
    ContrastBolusAgent=None,
    SliceThickness=None,
    path="x.dcm",
    size_bytes=1,
    calling_ae_title=None,
)


def ct_instance(study: str, series: str, sop: str | None = None, **fields: Any) -> InstanceRecord:
    """One CT instance of ``series`` in ``study`` (SOP Instance UID ``<series>.1`` unless
    given); ``fields`` override any other column."""
    return replace(
        _CT,
        StudyInstanceUID=study,
        SeriesInstanceUID=series,
        SOPInstanceUID=sop or f"{series}.1",
        **fields,
    )


def record_ct_series(
    store: Any, study: str, series: str, number: int, thickness: str, count: int = 12
) -> str:
    """``count`` axial calcium-scoring CT instances of ``series`` recorded in ``store`` as
    the listener would (SeriesNumber ``number``, SliceThickness ``thickness`` mm); returns
    ``series``."""
    for i in range(count):
        store.record_instance(
            ct_instance(
                study,
                series,
                f"{series}.{i + 1}",
                SeriesNumber=number,
                SeriesDescription=f"Calcium Score {thickness} mm",
                ImageType="ORIGINAL\\PRIMARY\\AXIAL",
                SliceThickness=thickness,
                InstanceNumber=i + 1,
                path=f"{study}/{series}/{series}.{i + 1}.dcm",
            )
        )
    return series


class Clock:
    """A clock the test sets: ``utcnow()`` plus ``offset_seconds`` until advanced."""

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self.now = utcnow() + timedelta(seconds=offset_seconds)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
