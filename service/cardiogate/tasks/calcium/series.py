"""The series the calcium task's objects go in: Series Number and Series Description (which
:func:`~cardiogate.reports.common.object_identity` ends with the AI notice, within LO)."""

from __future__ import annotations

from collections.abc import Mapping

from cardiogate.tasks.contract import OutputSeries

OUTPUT_SERIES: Mapping[str, OutputSeries] = {
    "sr": OutputSeries(9501, "Coronary calcium score SR"),
    "seg": OutputSeries(9502, "Coronary calcium segmentation"),
    "key": OutputSeries(9503, "Coronary calcium key images"),
    "summary": OutputSeries(9504, "Coronary calcium results summary"),
}
