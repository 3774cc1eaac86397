"""The building blocks of the DICOM objects a PACS stores for a job: SR (TID 1500), SEG and
key images, built with highdicom from a result and its source datasets. Each task builds
its own objects with them (``cardiogate.tasks.<name>``); delivery is not done here."""

from cardiogate.reports.common import NOT_FOR_DIAGNOSTIC_USE, Predecessor, ReportError

__all__ = [
    "NOT_FOR_DIAGNOSTIC_USE",
    "Predecessor",
    "ReportError",
]
