"""The series the stenosis task's objects go in: Series Number and Series Description (which
:func:`~cardiogate.reports.common.object_identity` ends with the AI notice, within LO)."""

from __future__ import annotations

from collections.abc import Mapping

from cardiogate.tasks.contract import OutputSeries

OUTPUT_SERIES: Mapping[str, OutputSeries] = {
    "sr": OutputSeries(9601, "Coronary stenosis SR"),
    "key": OutputSeries(9603, "Coronary stenosis key image"),
    "summary": OutputSeries(9604, "Coronary stenosis results summary"),
}
