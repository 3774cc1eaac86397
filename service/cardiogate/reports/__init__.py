"""The DICOM objects a PACS stores for a job: SR (TID 1500), SEG and key images, built with
highdicom from a result and its source datasets. Delivery is not done here."""

from cardiogate.reports.build import build_calcium_objects, build_stenosis_objects
from cardiogate.reports.common import NOT_FOR_DIAGNOSTIC_USE, Predecessor, ReportError

__all__ = [
    "NOT_FOR_DIAGNOSTIC_USE",
    "Predecessor",
    "ReportError",
    "build_calcium_objects",
    "build_stenosis_objects",
]
